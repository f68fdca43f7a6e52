/**
 * Covers src/harness/tools/process.ts and the bash tool with real processes, both inside bubblewrap
 * and unsandboxed: a timeout, an abort and killAllProcesses() kill the command's whole process
 * group (grandchildren such as `sleep … &` included), background jobs do not outlive the command,
 * output is captured and capped, and the tool reports exit codes, timeouts and bad input.
 * Processes are found by scanning /proc for a command line unique to each test.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { createSandbox, type Sandbox } from "../../src/harness/sandbox";
import { bashTool, STREAM_CAP } from "../../src/harness/tools/bash";
import { killAllProcesses, liveProcessGroups, runProcess } from "../../src/harness/tools/process";
import { ToolRegistry } from "../../src/harness/tools/registry";
import { MAX_OUTPUT_CHARS, type ToolContext } from "../../src/harness/tools/types";
import { eventually, removeDir, tempDir } from "../helpers";

function bwrapProblem(): string | null {
  if (process.platform !== "linux") return "not Linux";
  if (!Bun.which("bwrap")) return "bubblewrap (bwrap) is not installed (apt-get install bubblewrap)";
  const dir = tempDir("pai-bwrap-probe-");
  try {
    const r = Bun.spawnSync(createSandbox({ cwd: dir, hidden: [], network: false, allowUnsandboxed: false }).wrap(["true"]), { stdout: "ignore", stderr: "pipe" });
    return r.exitCode === 0 ? null : `bwrap is installed but cannot make a sandbox here: ${r.stderr.toString().trim()}`;
  } finally {
    removeDir(dir);
  }
}
const problem = bwrapProblem();
if (problem)
  console.warn(`\n*** SKIPPED: the "bubblewrap" variants of the process-group tests in test/unit/bash-tool.test.ts (timeout, abort, killAllProcesses, background jobs): ${problem} ***\n`);

let cwd: string;
beforeAll(() => {
  cwd = tempDir("pai-bash-");
});
afterAll(() => removeDir(cwd));

const ENV = { PATH: process.env.PATH ?? "/usr/bin:/bin" };

/** PIDs of live processes whose argv contains `marker` (zombies have an empty command line). */
function procsWith(marker: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0").includes(marker)) pids.push(Number(d));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

/** A sleep duration no other test uses, so its processes can be told apart. */
let n = 0;
const uniqueSleep = () => `${300 + (process.pid % 1000)}.${String(++n).padStart(3, "0")}7`;

const kinds: { name: string; make: () => Sandbox; run: typeof test }[] = [
  { name: "bubblewrap", make: () => createSandbox({ cwd, hidden: [], network: false, allowUnsandboxed: false }), run: problem ? test.skip : test },
  { name: "unsandboxed", make: () => createSandbox({ cwd, hidden: [], network: false, allowUnsandboxed: true, bwrapPath: null }), run: test },
];

for (const kind of kinds) {
  describe(`process groups (${kind.name})`, () => {
    kind.run("a timeout kills the command and its background grandchildren", async () => {
      const dur = uniqueSleep();
      const pids = `pids-${dur}`;
      const r = await runProcess(["bash", "-c", `sleep ${dur} & echo $! >> ${pids}; sleep ${dur} & echo $! >> ${pids}; wait`], {
        cwd,
        env: ENV,
        sandbox: kind.make(),
        timeoutMs: 1500,
      });
      expect(r.timedOut).toBe(true);
      expect(r.aborted).toBe(false);
      expect(r.exitCode).toBeNull();
      expect(r.signal).toBe("SIGKILL");
      // Both sleeps were started before the kill...
      expect(readFileSync(join(cwd, pids), "utf8").trim().split("\n")).toHaveLength(2);
      // ...and none is left.
      expect(procsWith(dur)).toEqual([]);
      expect(liveProcessGroups()).toBe(0);
    });

    kind.run("an abort kills the command and its background grandchildren", async () => {
      const dur = uniqueSleep();
      const abort = new AbortController();
      const running = runProcess(["bash", "-c", `sleep ${dur} & sleep ${dur} & wait`], { cwd, env: ENV, sandbox: kind.make(), signal: abort.signal });
      await eventually(() => procsWith(dur).length >= 2, 10_000, "the two sleeps to start");
      abort.abort();
      const r = await running;
      expect(r.aborted).toBe(true);
      expect(r.timedOut).toBe(false);
      expect(procsWith(dur)).toEqual([]);
    });

    kind.run("killAllProcesses() kills every live group", async () => {
      const a = uniqueSleep();
      const b = uniqueSleep();
      const sb = kind.make();
      const first = runProcess(["bash", "-c", `sleep ${a} & wait`], { cwd, env: ENV, sandbox: sb });
      const second = runProcess(["bash", "-c", `sleep ${b}`], { cwd, env: ENV, sandbox: sb });
      await eventually(() => procsWith(a).length >= 1 && procsWith(b).length >= 1, 10_000, "both commands to start");
      expect(liveProcessGroups()).toBe(2);
      killAllProcesses();
      const [r1, r2] = await Promise.all([first, second]);
      expect(r1.exitCode).toBeNull();
      expect(r2.exitCode).toBeNull();
      expect(procsWith(a)).toEqual([]);
      expect(procsWith(b)).toEqual([]);
      expect(liveProcessGroups()).toBe(0);
    });

    kind.run("a background job does not outlive the command, even with its output sent elsewhere", async () => {
      const dur = uniqueSleep();
      const r = await runProcess(["bash", "-c", `sleep ${dur} >/dev/null 2>&1 & echo started $!`], { cwd, env: ENV, sandbox: kind.make(), timeoutMs: 20_000 });
      expect(r.exitCode).toBe(0);
      expect(r.timedOut).toBe(false);
      expect(r.stdout).toStartWith("started ");
      // It held no pipe, so its death is not waited for: it is SIGKILLed as the call returns.
      await eventually(() => procsWith(dur).length === 0, 5_000, "the background sleep to be gone");
    });

    kind.run("exit code, stdout and stderr are captured; stdin is empty", async () => {
      const r = await runProcess(["bash", "-c", "echo out; echo err >&2; cat; exit 3"], { cwd, env: ENV, sandbox: kind.make(), timeoutMs: 20_000 });
      expect(r).toEqual({ exitCode: 3, signal: null, stdout: "out\n", stderr: "err\n", timedOut: false, aborted: false, truncated: false });
    });

    kind.run("output past maxOutput is cut, keeping the head and saying how much was cut", async () => {
      const r = await runProcess(["bash", "-c", "head -c 100000 /dev/zero | tr '\\0' a; echo tail >&2"], { cwd, env: ENV, sandbox: kind.make(), maxOutput: 1000, timeoutMs: 20_000 });
      expect(r.exitCode).toBe(0);
      expect(r.truncated).toBe(true);
      expect(r.stdout).toBe(`${"a".repeat(1000)}\n[output cut: 99000 more bytes not shown]`);
      expect(r.stderr).toBe("tail\n");
    });
  });
}

test("an already aborted signal starts nothing", async () => {
  const abort = new AbortController();
  abort.abort();
  const r = await runProcess(["bash", "-c", "touch should-not-exist"], { cwd, env: ENV, sandbox: kinds[1]!.make(), signal: abort.signal });
  expect(r.aborted).toBe(true);
  expect(existsSync(join(cwd, "should-not-exist"))).toBe(false);
});

test("a command that cannot be started is an error, not a crash", async () => {
  await expect(runProcess(["/no/such/program"], { cwd, env: ENV, sandbox: kinds[1]!.make() })).rejects.toThrow(/could not start/);
  expect(liveProcessGroups()).toBe(0);
});

describe("the bash tool", () => {
  const tools = new ToolRegistry();
  tools.add(bashTool);
  const ctx = (o: Partial<ToolContext> = {}): ToolContext => ({
    cwd,
    env: { ...ENV, GREETING: "hello from the session" },
    signal: new AbortController().signal,
    sandbox: problem ? kinds[1]!.make() : kinds[0]!.make(),
    allowPrivateFetch: false,
    ...o,
  });
  const call = (input: unknown, o?: Partial<ToolContext>) => tools.call("bash", input, ctx(o));

  test("offers a schema with its required field and nothing else", () => {
    expect(bashTool.inputSchema).toMatchObject({ type: "object", required: ["command"], additionalProperties: false });
    expect(bashTool.description).toContain("non-zero exit code is reported as an error");
  });

  test("runs in the working folder with the session's env; exit code 0 is a normal result", async () => {
    const r = await call({ command: 'pwd; echo "$GREETING"' });
    expect(r).toEqual({ output: `exit code: 0\n--- stdout ---\n${cwd}\nhello from the session\n`, isError: false });
  });

  test("a non-zero exit code is an error result with both streams labelled", async () => {
    const r = await call({ command: "echo partial; echo broke >&2; exit 7" });
    expect(r).toEqual({ output: "exit code: 7\n--- stdout ---\npartial\n--- stderr ---\nbroke\n", isError: true });
  });

  test("a command with no output says so", async () => {
    expect(await call({ command: "true" })).toEqual({ output: "exit code: 0\n(no output)\n", isError: false });
  });

  test("a timeout is an error that says the process group was killed", async () => {
    const dur = uniqueSleep();
    const r = await call({ command: `echo before; sleep ${dur} & wait`, timeoutSeconds: 1 });
    expect(r.isError).toBe(true);
    expect(r.output).toStartWith("the command timed out after 1 s; it and every process it started were killed");
    expect(r.output).toContain("before");
    expect(procsWith(dur)).toEqual([]);
  });

  test("the session's abort stops the command", async () => {
    const dur = uniqueSleep();
    const abort = new AbortController();
    const running = call({ command: `sleep ${dur}` }, { signal: abort.signal });
    await eventually(() => procsWith(dur).length >= 1, 10_000, "the sleep to start");
    abort.abort();
    const r = await running;
    expect(r.isError).toBe(true);
    expect(r.output).toContain("cancelled");
    expect(procsWith(dur)).toEqual([]);
  });

  test("large output is capped within the tool output limit, saying what was cut", async () => {
    const r = await call({ command: "head -c 200000 /dev/zero | tr '\\0' x; head -c 50000 /dev/zero | tr '\\0' y >&2" });
    expect(r.isError).toBe(false);
    expect(r.output.length).toBeLessThanOrEqual(MAX_OUTPUT_CHARS);
    expect(r.output).toContain(`${"x".repeat(STREAM_CAP)}\n[output cut: ${200000 - STREAM_CAP} more bytes not shown]`);
    expect(r.output).toContain(`${"y".repeat(STREAM_CAP)}\n[output cut: ${50000 - STREAM_CAP} more bytes not shown]`);
    expect(r.truncated).toBeUndefined();
  });

  test("bad input is an error result that says what is wrong", async () => {
    const cases: [unknown, RegExp][] = [
      [{}, /needs "command"/],
      [{ command: 42 }, /"command" of bash must be a string/],
      [{ command: "  " }, /empty/],
      [{ command: "echo a\0b" }, /NUL/],
      [{ command: "x".repeat(100_001) }, /limit is 100000/],
      [{ command: "true", timeoutSeconds: "5" }, /"timeoutSeconds" of bash must be a number/],
      [{ command: "true", timeoutSeconds: 0 }, /more than 0 and at most 600/],
      [{ command: "true", timeoutSeconds: 601 }, /at most 600/],
      [{ command: "true", timeoutSeconds: Number.NaN }, /must be a number/],
      [{ command: "true", cwd: "/" }, /bash has no input "cwd"/],
      ["echo hi", /must be a JSON object/],
    ];
    for (const [input, message] of cases) {
      const r = await call(input);
      expect(r.isError).toBe(true);
      expect(r.output).toMatch(message);
    }
  });
});
