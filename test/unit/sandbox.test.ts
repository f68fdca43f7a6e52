/**
 * Covers src/harness/sandbox.ts with the real bubblewrap: a session's command cannot see the data
 * dir (pai.db, admin-token) nor the operator's credentials, cannot write anywhere but its working
 * folder (and its private /tmp), sees its own PID namespace, has no capabilities when run as root,
 * and has no network unless the spec allows it. Without bwrap, processes are refused unless the
 * operator allowed running them unsandboxed.
 *
 * The data dir lives under node_modules/.cache, not /tmp: the sandbox covers /tmp as a whole, so a
 * data dir there would be hidden even if `hidden` did nothing.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BWRAP_MISSING, createSandbox, type Sandbox, type SandboxOptions } from "../../src/harness/sandbox";
import { bashTool } from "../../src/harness/tools/bash";
import { ProcessRefused, runProcess, type RunResult } from "../../src/harness/tools/process";
import type { ToolContext } from "../../src/harness/tools/types";
import { ROOT, removeDir, tempDir } from "../helpers";

const SCRATCH = join(ROOT, "node_modules", ".cache");

/** Why the bubblewrap tests cannot run here, or null when they can. */
function bwrapProblem(): string | null {
  if (process.platform !== "linux") return "not Linux";
  const bwrap = Bun.which("bwrap");
  if (!bwrap) return "bubblewrap (bwrap) is not installed (apt-get install bubblewrap)";
  const dir = tempDir("pai-bwrap-probe-");
  try {
    const argv = createSandbox({ cwd: dir, hidden: [], network: false, allowUnsandboxed: false }).wrap(["true"]);
    const r = Bun.spawnSync(argv, { stdout: "ignore", stderr: "pipe" });
    return r.exitCode === 0 ? null : `bwrap is installed but cannot make a sandbox here: ${r.stderr.toString().trim()}`;
  } finally {
    removeDir(dir);
  }
}

const problem = bwrapProblem();
const sandboxed = problem ? test.skip : test;
if (problem)
  console.warn(
    `\n*** SKIPPED: the bubblewrap tests of test/unit/sandbox.test.ts (data dir hidden, writes confined, private /tmp, PID namespace, no capabilities, network on/off): ${problem} ***\n`,
  );

interface Rig {
  dataDir: string;
  cwd: string;
  /** A file beside the data dir, outside it and outside /tmp. */
  sibling: string;
}

let rig: Rig;
const made: string[] = [];

beforeAll(() => {
  mkdirSync(SCRATCH, { recursive: true });
  const dataDir = mkdtempSync(join(SCRATCH, "pai-sandbox-data-"));
  const cwd = join(dataDir, "sessions", "default", "s1");
  mkdirSync(cwd, { recursive: true });
  writeFileSync(join(dataDir, "pai.db"), "SECRET-DATABASE");
  writeFileSync(join(dataDir, "admin-token"), "SECRET-ADMIN-TOKEN");
  mkdirSync(join(dataDir, "sessions", "default", "other"));
  writeFileSync(join(dataDir, "sessions", "default", "other", "notes.txt"), "SECRET-OTHER-SESSION");
  const sibling = `${dataDir}-sibling.txt`;
  writeFileSync(sibling, "ORIGINAL");
  made.push(dataDir, sibling);
  rig = { dataDir, cwd, sibling };
});

afterAll(() => {
  for (const p of made) removeDir(p);
});

const sandbox = (o: Partial<SandboxOptions> = {}): Sandbox => createSandbox({ cwd: rig.cwd, hidden: [rig.dataDir], network: false, allowUnsandboxed: false, ...o });

const sh = (script: string, sb: Sandbox = sandbox(), env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin" }): Promise<RunResult> =>
  runProcess(["bash", "-c", script], { cwd: rig.cwd, env, sandbox: sb, timeoutMs: 20_000 });

describe("bubblewrap", () => {
  sandboxed("is found on PATH and wraps the command in bwrap", () => {
    const sb = sandbox();
    expect(sb.kind).toBe("bubblewrap");
    expect(sb.refusal).toBeUndefined();
    const argv = sb.wrap(["echo", "hi"]);
    expect(argv[0]).toEndWith("bwrap");
    expect(argv.slice(-3)).toEqual(["--", "echo", "hi"]);
    // The data dir is covered before the working folder inside it is bound back in.
    expect(argv.indexOf(rig.dataDir)).toBeLessThan(argv.indexOf("--bind"));
  });

  sandboxed("the command runs in the working folder and can write there; the file is visible outside", async () => {
    const r = await sh("pwd; echo made-inside > made.txt");
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim()).toBe(rig.cwd);
    expect(readFileSync(join(rig.cwd, "made.txt"), "utf8")).toBe("made-inside\n");
  });

  sandboxed("the data dir is hidden: pai.db, admin-token and other sessions cannot be read", async () => {
    const r = await sh(
      `cat ${rig.dataDir}/pai.db; cat ${rig.dataDir}/admin-token; cat ../../../pai.db; cat ../other/notes.txt; ls -a ${rig.dataDir}; ls -a ${rig.dataDir}/sessions/default`,
    );
    const seen = r.stdout + r.stderr;
    expect(seen).not.toContain("SECRET");
    expect(r.stderr).toContain("No such file or directory");
    // Only the path down to the working folder exists in the covered data dir.
    expect(r.stdout).not.toContain("pai.db");
    expect(r.stdout).not.toContain("admin-token");
    expect(r.stdout).not.toContain("other");
    expect(r.stdout).toContain("s1");
  });

  sandboxed("nothing outside the working folder can be written: the data dir, /etc, a file beside the data dir", async () => {
    const etc = `/etc/pai-sandbox-test-${process.pid}`;
    const r = await sh(
      [
        `echo x > ${rig.dataDir}/pai.db`,
        `echo x > ${rig.dataDir}/new-file`,
        `echo x > ${rig.sibling}`,
        `echo x > ${etc}`,
        `rm -f ${rig.sibling}`,
        `echo x > ../escaped.txt`,
        `mkdir ${SCRATCH}/pai-sandbox-made-${process.pid}`,
      ].join("; "),
    );
    expect(r.stderr).toMatch(/Read-only file system/);
    // What matters is the host's view afterwards.
    expect(readFileSync(join(rig.dataDir, "pai.db"), "utf8")).toBe("SECRET-DATABASE");
    expect(existsSync(join(rig.dataDir, "new-file"))).toBe(false);
    expect(readFileSync(rig.sibling, "utf8")).toBe("ORIGINAL");
    expect(existsSync(etc)).toBe(false);
    expect(existsSync(join(rig.dataDir, "sessions", "default", "escaped.txt"))).toBe(false);
    expect(existsSync(join(SCRATCH, `pai-sandbox-made-${process.pid}`))).toBe(false);
  });

  sandboxed("/tmp is private: the host's /tmp is not seen and what is written there stays inside", async () => {
    const hostTmp = tempDir("pai-host-visible-");
    made.push(hostTmp);
    writeFileSync(join(hostTmp, "host.txt"), "HOST-TMP");
    const inner = `/tmp/pai-inner-${process.pid}.txt`;
    const r = await sh(`ls /tmp; cat ${hostTmp}/host.txt; echo inner > ${inner} && cat ${inner}`);
    expect(r.stdout).not.toContain("pai-host-visible-");
    expect(r.stdout + r.stderr).not.toContain("HOST-TMP");
    expect(r.stdout).toContain("inner");
    expect(existsSync(inner)).toBe(false);
  });

  sandboxed("the command has its own PID namespace: a low PID, and the host's processes are not in /proc", async () => {
    const r = await sh(`echo $$; test -e /proc/${process.pid} && echo host-visible || echo host-hidden; ls /proc | grep -c '^[0-9]'`);
    const [pid, visible, count] = r.stdout.trim().split("\n");
    expect(Number(pid)).toBeLessThan(10);
    expect(visible).toBe("host-hidden");
    expect(Number(count)).toBeLessThan(10);
  });

  sandboxed("the server's environment is not passed: only the env given to the process", async () => {
    process.env.PAI_SANDBOX_TEST_LEAK = "leaked";
    try {
      const r = await sh("env", sandbox(), { PATH: process.env.PATH ?? "/usr/bin:/bin", GIVEN: "yes" });
      expect(r.stdout).toContain("GIVEN=yes");
      expect(r.stdout).not.toContain("PAI_SANDBOX_TEST_LEAK");
    } finally {
      delete process.env.PAI_SANDBOX_TEST_LEAK;
    }
  });

  sandboxed("credentials in the operator's home are hidden", async () => {
    const home = mkdtempSync(join(SCRATCH, "pai-sandbox-home-"));
    made.push(home);
    mkdirSync(join(home, ".ssh"));
    writeFileSync(join(home, ".ssh", "id_ed25519"), "SECRET-SSH-KEY");
    writeFileSync(join(home, ".netrc"), "machine x password SECRET-NETRC");
    writeFileSync(join(home, "notes.txt"), "plain file");
    const before = process.env.HOME;
    process.env.HOME = home;
    let sb: Sandbox;
    try {
      // A home is usually in view (read-only); this one is shown so wherever the checkout lives
      // (under /tmp it would be covered anyway), and its credentials must still be hidden.
      sb = sandbox({ readOnly: [home] });
    } finally {
      process.env.HOME = before;
    }
    const r = await sh(`cat ${home}/.ssh/id_ed25519; cat ${home}/.netrc; cat ${home}/notes.txt`, sb);
    expect(r.stdout + r.stderr).not.toContain("SECRET");
    expect(r.stdout).toContain("plain file");
  });

  sandboxed("--sandbox-read-only shows a path under /tmp, read-only, and a hidden path inside it stays hidden", async () => {
    const shown = mkdtempSync(join(tmpdir(), "pai-sandbox-shown-"));
    made.push(shown);
    writeFileSync(join(shown, "tool.sh"), "echo from-tmp");
    mkdirSync(join(shown, "secret"));
    writeFileSync(join(shown, "secret", "key"), "SECRET-IN-SHOWN");
    const hiddenToo = sandbox({ readOnly: [shown], hidden: [rig.dataDir, join(shown, "secret")] });
    const r = await sh(`bash ${shown}/tool.sh; cat ${shown}/secret/key; echo x > ${shown}/new && echo wrote`, hiddenToo);
    expect(r.stdout).toContain("from-tmp");
    expect(r.stdout + r.stderr).not.toContain("SECRET-IN-SHOWN");
    expect(r.stdout).not.toContain("wrote");
    expect(existsSync(join(shown, "new"))).toBe(false);
    // Without it, the host's /tmp is not there at all.
    const plain = await sh(`cat ${shown}/tool.sh`, sandbox());
    expect(plain.stdout).not.toContain("from-tmp");
  });

  sandboxed("run as root, the command keeps no capabilities (so it cannot remount / read-write)", async () => {
    if (process.getuid?.() !== 0) return void console.warn("(not root: bwrap gives no capabilities anyway; capability check not applicable)");
    const marker = `/pai-root-test-${process.pid}`;
    try {
      const r = await sh(`grep CapEff /proc/self/status; mount -o remount,rw / && echo REMOUNTED; touch ${marker} && echo WROTE-ROOT`);
      expect(r.stdout).toMatch(/CapEff:\s+0+\n/);
      expect(r.stdout).not.toContain("REMOUNTED");
      expect(r.stdout).not.toContain("WROTE-ROOT");
      expect(existsSync(marker)).toBe(false);
    } finally {
      // With capabilities the remount really reaches the host's root filesystem: clean up if so.
      removeDir(marker);
    }
  });

  describe("network", () => {
    let server: ReturnType<typeof Bun.serve>;
    let hits = 0;
    beforeAll(() => {
      server = Bun.serve({
        hostname: "127.0.0.1",
        port: 0,
        fetch() {
          hits++;
          return new Response("pong-from-host");
        },
      });
    });
    afterAll(() => server.stop(true));

    const request = (port: number) =>
      `exec 3<>/dev/tcp/127.0.0.1/${port} && printf 'GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' >&3 && cat <&3`;

    sandboxed("with network: false, only loopback exists and the host's 127.0.0.1 server cannot be reached", async () => {
      const before = hits;
      const r = await sh(`cat /proc/net/dev; ${request(server.port!)}; echo "rc=$?"`);
      const interfaces = r.stdout
        .split("\n")
        .filter((l) => l.includes(":") && !l.includes("|"))
        .map((l) => l.split(":")[0]!.trim());
      expect(interfaces).toEqual(["lo"]);
      expect(r.stdout).not.toContain("pong-from-host");
      expect(r.stdout).toMatch(/rc=[1-9]/);
      expect(hits).toBe(before);
    });

    sandboxed("with network: true, the host's 127.0.0.1 server is reached", async () => {
      const before = hits;
      const r = await sh(request(server.port!), sandbox({ network: true }));
      expect(r.stdout).toContain("pong-from-host");
      expect(hits).toBe(before + 1);
    });
  });
});

describe("without bubblewrap", () => {
  const ctx = (sb: Sandbox): ToolContext => ({ cwd: rig.cwd, env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }, signal: new AbortController().signal, sandbox: sb, allowPrivateFetch: false });

  test("bwrap missing and unsandboxed not allowed: refused, with the reason and the two ways out", async () => {
    const sb = sandbox({ bwrapPath: join(rig.dataDir, "no-such-bwrap") });
    expect(sb.kind).toBe("none");
    expect(sb.refusal).toBe(BWRAP_MISSING);
    expect(sb.refusal).toContain("apt-get install bubblewrap");
    expect(sb.refusal).toContain("--allow-unsandboxed-tools");
    expect(() => sb.wrap(["true"])).toThrow(BWRAP_MISSING);
    await expect(sh("touch refused-1.txt", sb)).rejects.toBeInstanceOf(ProcessRefused);
    const out = await bashTool.run({ command: "touch refused-2.txt" }, ctx(sb));
    expect(out).toEqual({ output: BWRAP_MISSING, isError: true });
    expect(existsSync(join(rig.cwd, "refused-1.txt"))).toBe(false);
    expect(existsSync(join(rig.cwd, "refused-2.txt"))).toBe(false);
  });

  test("a bwrapPath that is a folder, not an executable, counts as missing", () => {
    expect(sandbox({ bwrapPath: rig.dataDir }).refusal).toBe(BWRAP_MISSING);
  });

  test("bwrap missing and unsandboxed allowed: the command runs as it is", async () => {
    const sb = sandbox({ bwrapPath: join(rig.dataDir, "no-such-bwrap"), allowUnsandboxed: true });
    expect(sb.kind).toBe("none");
    expect(sb.refusal).toBeUndefined();
    expect(sb.wrap(["echo", "hi"])).toEqual(["echo", "hi"]);
    const out = await bashTool.run({ command: "echo unsandboxed > ran.txt; cat ran.txt" }, ctx(sb));
    expect(out).toEqual({ output: "exit code: 0\n--- stdout ---\nunsandboxed\n" });
    expect(readFileSync(join(rig.cwd, "ran.txt"), "utf8")).toBe("unsandboxed\n");
  });
});
