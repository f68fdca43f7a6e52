/**
 * Session processes started before their session (issue 12), end to end: a real server, real
 * harness children, tools in bubblewrap, the fake model server. Warm processes wait with no
 * session's environment and take each session's folder and environment from the start message;
 * each still runs one session. Agents with `spec.harness.reuse` keep a process for their next
 * sessions: never across agents, namespaces or spec versions, with nothing of one session left for
 * the next (environment, folder, files, processes), and a cancel or a crash never hands a broken
 * process on. How each session's process came to be is counted in /metrics.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startModelServer, toolScript, type FakeModelServer } from "../fakes/model-server";
import { childrenIn, eventually, processAlive, sessionPid, startServer, type TestServer } from "../helpers";

const HAVE_BWRAP = Bun.which("bwrap") !== null;
if (!HAVE_BWRAP) console.warn("\n*** SKIPPED: test/e2e/warm.test.ts needs bubblewrap (apt-get install bubblewrap); .ci/run installs it ***\n");

let server: TestServer;
let models: FakeModelServer;

type Starts = { cold: number; warm: number; reused: number };

async function apply(name: string, spec: Record<string, unknown>, namespace = "default") {
  const res = await server.api(`/apis/pai.io/v1/namespaces/${namespace}/agents/${name}`, {
    method: "PUT",
    json: { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name, namespace }, spec: { models: ["anthropic/claude-tools"], tools: ["bash"], ...spec } },
  });
  if (res.status >= 300) throw new Error(`apply ${name}: ${res.status} ${await res.text()}`);
}

async function start(agent: string, title: string, env?: { name: string; value: string }[], namespace = "default"): Promise<string> {
  const res = await server.api(`/apis/pai.io/v1/namespaces/${namespace}/sessions`, { method: "POST", json: { agentDefinition: agent, title, env } });
  const body = (await res.json()) as { session: string; message?: string };
  if (res.status !== 201) throw new Error(`start failed: ${res.status} ${body.message}`);
  return body.session;
}

type Session = { phase: string; response: string | null; error: string | null };
const get = async (name: string, namespace = "default") => (await (await server.api(`/agents/${name}?namespace=${namespace}`)).json()) as Session;
const ended = (name: string, namespace = "default", ms = 20_000) =>
  eventually(async () => {
    const s = await get(name, namespace);
    return ["Complete", "Error", "Cancelled"].includes(s.phase) ? s : undefined;
  }, ms, `session ${name} ended`);
/** Runs a session to its end and returns the bash output the fake model quotes back. */
async function run(agent: string, title: string, env?: { name: string; value: string }[], namespace = "default"): Promise<{ name: string; out: string }> {
  const name = await start(agent, title, env, namespace);
  const s = await ended(name, namespace);
  if (s.phase !== "Complete") throw new Error(`session ${name} ended ${s.phase}: ${s.error}`);
  return { name, out: s.response ?? "" };
}

async function starts(): Promise<Starts> {
  const text = await (await server.api("/metrics")).text();
  const n = (how: string) => Number(new RegExp(`^pai_session_processes_total\\{start="${how}"\\} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
  return { cold: n("cold"), warm: n("warm"), reused: n("reused") };
}
const delta = (a: Starts, b: Starts) => ({ cold: b.cold - a.cold, warm: b.warm - a.warm, reused: b.reused - a.reused });

const alive = processAlive;
const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
const environ = (pid: number) =>
  Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, "utf8")
      .split("\0")
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
  );
/** The server's children that run no session now: warm ones and idle ones kept for reuse. */
const waiting = () => childrenIn(server.proc.pid, join(server.dataDir, "sessions"));

describe.skipIf(!HAVE_BWRAP)("warm session processes", () => {
  beforeAll(async () => {
    models = startModelServer();
    server = await startServer({ env: { ANTHROPIC_API_KEY: "sk-ant-test", ANTHROPIC_BASE_URL: models.anthropicBaseUrl, PAI_SECRET_SETTING: "server-only" } });
    await apply("worker", { env: [{ name: "FROM_SPEC", value: "spec" }] });
  });
  afterAll(async () => {
    await server?.stop();
    await models?.stop();
  });
  beforeEach(() => {
    models.reset();
    models.script(toolScript());
  });

  test("after the first session, sessions run in warm processes, each in its own folder with its own environment", async () => {
    // The first session's process is spawned for it; the warm ones are started after it.
    await run("worker", "run: true");
    await eventually(() => waiting().length === 2, 10_000, "two warm processes");
    const before = await starts();
    const a = await run("worker", "run: echo a=$SECRET_A spec=$FROM_SPEC; pwd; echo mine > a.txt", [{ name: "SECRET_A", value: "alpha" }]);
    expect(a.out).toContain("a=alpha spec=spec");
    expect(a.out).toContain(`/sessions/default/${a.name}`);
    const b = await run("worker", "run: echo b=[$SECRET_A]; pwd; ls");
    expect(b.out).toContain("b=[]");
    expect(b.out).toContain(`/sessions/default/${b.name}`);
    expect(b.out).not.toContain("a.txt");
    expect(delta(before, await starts())).toEqual({ cold: 0, warm: 2, reused: 0 });
    // A warm process runs one session: the pool is refilled with new ones.
    await eventually(() => waiting().length === 2, 10_000, "the pool refilled");
  });

  test("a warm process waits with the server's environment minus secrets and model keys, and no session's", async () => {
    await run("worker", "run: true");
    const pids = await eventually(() => (waiting().length === 2 ? waiting() : undefined), 10_000, "warm processes");
    for (const pid of pids) {
      expect(cmdline(pid).slice(-2)).toEqual(["harness", "--warm"]);
      const env = environ(pid);
      for (const k of ["PAI_SECRET_SETTING", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "FROM_SPEC"]) expect(env[k]).toBeUndefined();
      expect(env.PATH).toBe(process.env.PATH!);
    }
  });

  test("a session that sets a variable read as a runtime starts (TZ) gets a process spawned with it", async () => {
    await apply("tokyo", { env: [{ name: "TZ", value: "Asia/Tokyo" }] });
    const before = await starts();
    const name = await start("tokyo", "run: sleep 1; echo tz=$TZ");
    const pid = await eventually(() => sessionPid(server, name), 5000, "the session's process");
    expect(environ(pid).TZ).toBe("Asia/Tokyo");
    expect(cmdline(pid).at(-1)).toBe("harness");
    const s = await ended(name);
    expect(s.response).toContain("tz=Asia/Tokyo");
    expect(delta(before, await starts())).toEqual({ cold: 1, warm: 0, reused: 0 });
  });

  test("a warm process killed while it waits is not handed a session; sessions go on", async () => {
    await run("worker", "run: true");
    const pids = await eventually(() => (waiting().length === 2 ? waiting() : undefined), 10_000, "warm processes");
    for (const pid of pids) process.kill(pid, "SIGKILL");
    await eventually(() => pids.every((p) => !alive(p)), 5000, "killed");
    const r = await run("worker", "run: echo still=ok");
    expect(r.out).toContain("still=ok");
    await eventually(() => waiting().length === 2, 10_000, "the pool refilled");
  });
});

describe.skipIf(!HAVE_BWRAP)("agents that reuse their process (spec.harness.reuse)", () => {
  beforeAll(async () => {
    models = startModelServer();
    // No warm processes here: every process below is one an agent kept, or one spawned for a session.
    server = await startServer({ args: ["--warm-processes", "0"], env: { ANTHROPIC_API_KEY: "sk-ant-test", ANTHROPIC_BASE_URL: models.anthropicBaseUrl } });
    await apply("keeper", { harness: { reuse: true, maxSessionsPerProcess: 3 } });
    await apply("other", { harness: { reuse: true, maxSessionsPerProcess: 3 } });
  });
  afterAll(async () => {
    await server?.stop();
    await models?.stop();
  });
  beforeEach(async () => {
    models.reset();
    models.script(toolScript());
    // Each test starts with no process kept.
    for (const pid of waiting()) process.kill(pid, "SIGKILL");
    await eventually(() => waiting().length === 0, 5000, "no kept process");
  });

  test("one process runs the agent's next sessions, with nothing of the one before: environment, folder, files", async () => {
    const before = await starts();
    const first = await run("keeper", "run: echo one=$SECRET; echo left > left.txt; pwd", [{ name: "SECRET", value: "s3cret" }]);
    expect(first.out).toContain("one=s3cret");
    const [kept] = await eventually(() => (waiting().length === 1 ? waiting() : undefined), 5000, "the kept process");
    // It waits in the sessions folder with the environment it was spawned with.
    expect(environ(kept!).SECRET).toBeUndefined();
    const second = await start("keeper", "run: sleep 1; echo two=[$SECRET]; pwd; ls -a");
    expect(await eventually(() => sessionPid(server, second), 5000, "second session's process")).toBe(kept!);
    const s = await ended(second);
    expect(s.response).toContain("two=[]");
    expect(s.response).toContain(`/sessions/default/${second}`);
    expect(s.response).not.toContain("left.txt");
    expect(delta(before, await starts())).toEqual({ cold: 1, warm: 0, reused: 1 });
  });

  test("at most maxSessionsPerProcess sessions per process; then a new one", async () => {
    const pids: number[] = [];
    for (let i = 0; i < 4; i++) {
      const name = await start("keeper", "run: sleep 0.5; echo n=" + i);
      pids.push(await eventually(() => sessionPid(server, name), 5000, `session ${i}'s process`));
      await ended(name);
    }
    expect(new Set(pids.slice(0, 3)).size).toBe(1);
    expect(pids[3]).not.toBe(pids[0]);
    await eventually(() => !alive(pids[0]!), 5000, "the process that ran 3 sessions exits");
  });

  test("never across agents, namespaces or versions of the agent's spec", async () => {
    await run("keeper", "run: true");
    const [kept] = await eventually(() => (waiting().length === 1 ? waiting() : undefined), 5000, "the kept process");
    const before = await starts();
    // Another agent with the same spec does not get it.
    await run("other", "run: true");
    // Nor the same agent's name in another namespace.
    await apply("keeper", { harness: { reuse: true, maxSessionsPerProcess: 3 } }, "elsewhere");
    await run("keeper", "run: true", undefined, "elsewhere");
    // Nor the agent once its spec changed.
    await apply("keeper", { system: "changed", harness: { reuse: true, maxSessionsPerProcess: 3 } });
    await run("keeper", "run: true");
    expect(delta(before, await starts())).toEqual({ cold: 3, warm: 0, reused: 0 });
    expect(alive(kept!)).toBe(true);
    // The new version's next session reuses the new version's process.
    const again = await start("keeper", "run: sleep 1; echo again");
    const pid = await eventually(() => sessionPid(server, again), 5000, "the session's process");
    expect(pid).not.toBe(kept!);
    await ended(again);
    expect((await starts()).reused).toBe(before.reused + 1);
    await apply("keeper", { harness: { reuse: true, maxSessionsPerProcess: 3 } });
  });

  test("a cancelled session takes its process with it; the next session gets a new one", async () => {
    await run("keeper", "run: true");
    const [kept] = await eventually(() => (waiting().length === 1 ? waiting() : undefined), 5000, "the kept process");
    const name = await start("keeper", "run: sleep 30");
    expect(await eventually(() => sessionPid(server, name), 5000, "the session's process")).toBe(kept!);
    await eventually(async () => (await server.api(`/agents/${name}?namespace=default`).then((r) => r.json() as Promise<Session>)).phase === "Running", 5000, "running");
    const res = await server.api(`/agents/${name}/cancel?namespace=default`, { method: "POST" });
    expect(res.status).toBe(200);
    expect((await ended(name)).phase).toBe("Cancelled");
    await eventually(() => !alive(kept!), 5000, "the process is gone");
    const before = await starts();
    await run("keeper", "run: echo fresh");
    expect(delta(before, await starts())).toEqual({ cold: 1, warm: 0, reused: 0 });
  });

  test("a kept process exits after idleSeconds", async () => {
    await apply("brief", { harness: { reuse: true, idleSeconds: 1 } });
    await run("brief", "run: true");
    const [kept] = await eventually(() => (waiting().length === 1 ? waiting() : undefined), 5000, "the kept process");
    await eventually(() => !alive(kept!), 5000, "exits after a second idle");
    const before = await starts();
    await run("brief", "run: true");
    expect(delta(before, await starts())).toEqual({ cold: 1, warm: 0, reused: 0 });
  });

  test("a kept process killed while idle is not handed a session", async () => {
    await run("keeper", "run: true");
    const [kept] = await eventually(() => (waiting().length === 1 ? waiting() : undefined), 5000, "the kept process");
    process.kill(kept!, "SIGKILL");
    await eventually(() => !alive(kept!), 5000, "killed");
    const r = await run("keeper", "run: echo after=kill");
    expect(r.out).toContain("after=kill");
  });

  test("spec.harness is validated: a clear 422 for a wrong type, a bound or an unknown field", async () => {
    const put = (harness: unknown) =>
      server.api("/apis/pai.io/v1/namespaces/default/agents/bad", { method: "PUT", json: { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name: "bad" }, spec: { models: ["pai/echo"], harness } } });
    for (const [harness, field] of [
      [{ reuse: "yes" }, "reuse"],
      [{ reuse: true, maxSessionsPerProcess: 0 }, "maxSessionsPerProcess"],
      [{ reuse: true, idleSeconds: 7200 }, "idleSeconds"],
      [{ reuse: true, share: "everyone" }, "share"],
    ] as const) {
      const res = await put(harness);
      expect(res.status).toBe(422);
      expect(await res.text()).toContain(field);
    }
  });

  test("the server's stop ends the processes it kept", async () => {
    await run("keeper", "run: true");
    const kept = await eventually(() => (waiting().length === 1 ? waiting() : undefined), 5000, "the kept process");
    await server.stop();
    await eventually(() => kept.every((p) => !alive(p)), 5000, "kept process gone");
    // Started again for the tests after this one.
    server = await startServer({ dataDir: server.dataDir, args: ["--warm-processes", "0"], env: { ANTHROPIC_API_KEY: "sk-ant-test", ANTHROPIC_BASE_URL: models.anthropicBaseUrl } });
  });
});
