/**
 * Files the server writes or trusts: the manifests folder's status write-back keeps a file's mode
 * and owner and never writes through a symlink (planted at a temp name, or the manifest itself);
 * a manifest file may hold at most 500 documents nested at most 64 deep; and the data dir is kept
 * private (a loose one of ours is tightened to 0700, a shared or foreign one is refused).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { agentYaml, eventually, MAIN, ROOT, runCli, startServer, tempDir, type TestServer } from "../helpers";

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

describe("status write-back into the manifests folder", () => {
  const dir = tempDir("pai-manifests-");
  const outside = tempDir("pai-outside-");
  let server: TestServer;

  beforeAll(async () => {
    // A private manifest (it will hold the webhook URL, a credential).
    writeFileSync(join(dir, "private.yaml"), agentYaml("private-agent"), { mode: 0o600 });
    chmodSync(join(dir, "private.yaml"), 0o600);
    // A user's manifest, edited by a server that runs as root.
    writeFileSync(join(dir, "owned.yaml"), agentYaml("owned-agent"), { mode: 0o640 });
    chmodSync(join(dir, "owned.yaml"), 0o640);
    if (isRoot) chownSync(join(dir, "owned.yaml"), NOBODY, NOBODY);
    // A symlink at the name the old write-back used for its temp file, pointing at a victim.
    writeFileSync(join(outside, "victim.txt"), "the victim's data\n");
    symlinkSync(join(outside, "victim.txt"), join(dir, "trap.yaml.pai-tmp"));
    writeFileSync(join(dir, "trap.yaml"), agentYaml("trap-agent"));
    // A manifest that is itself a symlink to a file elsewhere.
    writeFileSync(join(outside, "real.yaml"), agentYaml("linked-agent"));
    symlinkSync(join(outside, "real.yaml"), join(dir, "linked.yaml"));
    server = await startServer({ manifests: dir });
  });
  afterAll(async () => {
    await server.stop();
  });

  const statusWritten = (file: string) => eventually(() => readFileSync(join(dir, file), "utf8").includes("webhookUrl:"), 8000, `status in ${file}`);

  test("a 0600 manifest is still 0600 after its status is written", async () => {
    await statusWritten("private.yaml");
    expect(statSync(join(dir, "private.yaml")).mode & 0o777).toBe(0o600);
  });

  test("the manifest keeps its mode, and its owner when the server runs as root", async () => {
    await statusWritten("owned.yaml");
    const st = statSync(join(dir, "owned.yaml"));
    expect(st.mode & 0o777).toBe(0o640);
    if (isRoot) expect({ uid: st.uid, gid: st.gid }).toEqual({ uid: NOBODY, gid: NOBODY });
  });

  test("a symlink planted at <file>.pai-tmp is not written through; the manifest stays a regular file", async () => {
    await statusWritten("trap.yaml");
    expect(readFileSync(join(outside, "victim.txt"), "utf8")).toBe("the victim's data\n");
    expect(lstatSync(join(dir, "trap.yaml")).isFile()).toBe(true);
    expect(readlinkSync(join(dir, "trap.yaml.pai-tmp"))).toBe(join(outside, "victim.txt"));
  });

  test("no temp file is left behind", async () => {
    await statusWritten("private.yaml");
    const { readdirSync } = await import("node:fs");
    expect(readdirSync(dir).filter((f) => f.endsWith(".pai-tmp") && f !== "trap.yaml.pai-tmp")).toEqual([]);
  });

  test("a symlinked manifest is applied, but its status is not written: the link and its target stay as they were", async () => {
    await eventually(() => server.logs().includes("its status is not written back"), 8000, "the log line about linked.yaml");
    const res = await server.api("/apis/pai.io/v1/namespaces/default/agents/linked-agent");
    expect(res.status).toBe(200);
    expect(((await res.json()) as { status: { webhookUrl?: string } }).status.webhookUrl).toMatch(/\/webhooks\/default\/linked-agent\//);
    expect(lstatSync(join(dir, "linked.yaml")).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(outside, "real.yaml"), "utf8")).toBe(agentYaml("linked-agent"));
    // Said once, not on every status change.
    expect(server.logs().split("its status is not written back").length - 1).toBe(1);
  });
});

describe("what a manifest file may cost", () => {
  const dir = tempDir("pai-manifests-");
  let server: TestServer;
  const deepValue = "[".repeat(70) + "]".repeat(70);

  beforeAll(async () => {
    writeFileSync(join(dir, "flood.yaml"), "---\n".repeat(600) + agentYaml("flood-agent"));
    writeFileSync(join(dir, "deep.yaml"), agentYaml("deep-agent", `  env: ${deepValue}\n`));
    writeFileSync(join(dir, "fine.yaml"), agentYaml("fine-agent"));
    server = await startServer({ manifests: dir });
  });
  afterAll(async () => {
    await server.stop();
  });

  const exists = async (name: string) => (await server.api(`/apis/pai.io/v1/namespaces/default/agents/${name}`)).status === 200;

  test("more than 500 documents: the file is refused as a whole, with its name and where", async () => {
    await eventually(() => /flood\.yaml:501:1: more than 500 YAML documents in one file; split it into smaller files/.test(server.logs()), 8000, "the flood error");
    expect(await exists("flood-agent")).toBe(false);
    expect(await exists("fine-agent")).toBe(true);
  });

  test("nesting deeper than 64: refused before parsing, with the file and line", async () => {
    await eventually(() => /deep\.yaml:\d+:1: collections are nested more than 64 levels deep/.test(server.logs()), 8000, "the depth error");
    expect(await exists("deep-agent")).toBe(false);
  });

  test("pai apply says the same about the same files", async () => {
    const deep = await runCli(["apply", "-f", join(dir, "deep.yaml")], { env: { PAI_SERVER: server.url, PAI_TOKEN: server.token } });
    expect(deep.code).toBe(1);
    expect(deep.stderr).toMatch(/deep\.yaml:\d+:1: collections are nested more than 64 levels deep/);
    const flood = await runCli(["apply", "-f", join(dir, "flood.yaml")], { env: { PAI_SERVER: server.url, PAI_TOKEN: server.token } });
    expect(flood.code).toBe(1);
    expect(flood.stderr).toContain("more than 500 YAML documents");
  });
});

/** Runs `pai serve` until it exits or `ms` pass (then kills it). */
async function serveBriefly(dataDir: string, ms = 10_000): Promise<{ code: number | null; stderr: string }> {
  const proc = Bun.spawn([process.execPath, MAIN, "serve", "--port", "0", "--host", "127.0.0.1", "--data-dir", dataDir], { cwd: ROOT, stdout: "ignore", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), ms);
  const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code: proc.signalCode ? null : code, stderr };
}

describe("the data dir is private", () => {
  test("an existing 0777 data dir of ours is tightened to 0700, and the log says so", async () => {
    const dataDir = tempDir("pai-data-");
    chmodSync(dataDir, 0o777);
    const server = await startServer({ dataDir });
    try {
      expect(statSync(dataDir).mode & 0o777).toBe(0o700);
      expect(server.logs()).toMatch(/WARN data dir had mode 0777, open to other users; changed it to 0700/);
    } finally {
      await server.stop();
    }
  });

  test("a data dir that is already private is left alone, without a warning", async () => {
    const server = await startServer();
    try {
      expect(statSync(server.dataDir).mode & 0o777).toBe(0o700);
      expect(server.logs()).not.toContain("data dir had mode");
    } finally {
      await server.stop();
    }
  });

  test("a shared sticky folder like /tmp is refused, not closed", async () => {
    const shared = tempDir("pai-shared-");
    chmodSync(shared, 0o1777);
    const r = await serveBriefly(shared);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: data dir ${shared} is a shared folder like /tmp (mode 01777), which pai will not make private: pass a folder of its own`);
    expect(statSync(shared).mode & 0o7777).toBe(0o1777);
  });

  test.skipIf(!isRoot)("a loose data dir owned by another user is refused with what to do", async () => {
    const dataDir = join(tempDir("pai-parent-"), "theirs");
    mkdirSync(dataDir);
    chmodSync(dataDir, 0o777);
    chownSync(dataDir, NOBODY, NOBODY);
    const r = await serveBriefly(dataDir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: data dir ${dataDir} has mode 0777 and belongs to another user (uid ${NOBODY})`);
    expect(r.stderr).toContain("chmod 700");
    expect(statSync(dataDir).mode & 0o777).toBe(0o777);
  });
});
