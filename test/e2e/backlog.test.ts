/**
 * A backlog against a real `pai serve`: the server-wide pending cap (`--max-pending`, 429 with
 * Retry-After on the API and webhooks alike), agents taking turns so one agent's flood does not
 * starve another (also after a restart), a session whose child cannot be started (committed, so
 * answered 201/200, then ended Error with its slot freed), and children at a lower priority.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { hang, startModelServer, type FakeModelServer } from "../fakes/model-server";
import { childPids, eventually, runCli, sessionPid, startServer, tempDir, type TestServer } from "../helpers";

let models: FakeModelServer;
beforeAll(() => {
  models = startModelServer();
  models.script((m) => (m === "claude-hang" ? hang : undefined));
});
afterAll(() => models.stop());

const env = () => ({ ANTHROPIC_API_KEY: "k", ANTHROPIC_BASE_URL: models.anthropicBaseUrl });
const agentsPath = (ns = "default") => `/apis/pai.io/v1/namespaces/${ns}/agents`;

async function apply(s: TestServer, name: string, spec: Record<string, unknown>, ns = "default") {
  const res = await s.api(`${agentsPath(ns)}/${name}`, { method: "PUT", json: { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name, namespace: ns }, spec: { models: ["pai/echo"], ...spec } } });
  expect(res.status).toBeLessThan(300);
}

const startApi = (s: TestServer, agent: string, title = "x", ns = "default") =>
  s.api(`/apis/pai.io/v1/namespaces/${ns}/sessions`, { method: "POST", json: { agentDefinition: agent, title } });

async function start(s: TestServer, agent: string, title = "x", ns = "default"): Promise<string> {
  const res = await startApi(s, agent, title, ns);
  const body = (await res.json()) as { session: string; message?: string };
  if (res.status !== 201) throw new Error(`start failed: ${res.status} ${body.message}`);
  return body.session;
}

interface SessionView {
  phase: string;
  error: string | null;
  response: string | null;
  startedAt: string | null;
}
const get = async (s: TestServer, name: string, ns = "default") => (await (await s.api(`/agents/${name}?namespace=${ns}`)).json()) as SessionView;
const inPhase = (s: TestServer, name: string, phases: string[], ns = "default") =>
  eventually(async () => {
    const v = await get(s, name, ns);
    return phases.includes(v.phase) ? v : undefined;
  }, 15_000, `${name} in ${phases.join("/")}`);
const cancel = async (s: TestServer, name: string) => expect((await s.api(`/agents/${name}/cancel?namespace=default`, { method: "POST" })).status).toBe(200);
const webhookUrl = (s: TestServer, name: string, ns = "default") =>
  eventually(async () => {
    const a = (await (await s.api(`${agentsPath(ns)}/${name}`)).json()) as { status?: { webhookUrl?: string } };
    return a.status?.webhookUrl?.replace(/^http:\/\/localhost:\d+/, s.url);
  }, 5000, "webhook url");
const metric = async (s: TestServer, name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(await (await s.api("/metrics")).text())?.[1]);

describe("a webhook trigger's maxPending", () => {
  test("100 concurrent deliveries to an agent with maxPending 2 start two sessions; the rest get 429 with Retry-After 10", async () => {
    const s = await startServer({ args: ["--max-sessions", "1"], env: env() });
    try {
      await apply(s, "limited", { models: ["anthropic/claude-hang"], triggers: [{ webhook: { maxPending: 2 } }] });
      const url = await webhookUrl(s, "limited");
      const post = (title: string) => fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ title }) });
      const first = ((await (await post("occupies the only slot")).json()) as { session: string }).session;
      await inPhase(s, first, ["Running"]);
      const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => post(`delivery ${i}`)));
      expect(answers.filter((r) => r.status === 200)).toHaveLength(2);
      const refused = answers.filter((r) => r.status === 429);
      expect(refused).toHaveLength(98);
      expect(refused.every((r) => r.headers.get("retry-after") === "10")).toBe(true);
      expect(await metric(s, "pai_sessions_pending")).toBe(2);
    } finally {
      await s.stop();
    }
  }, 30_000);
});

describe("--max-pending: the server-wide cap", () => {
  test("beyond it the API and webhooks answer 429 with Retry-After 10 and start nothing; a freed place is taken again", async () => {
    const s = await startServer({ args: ["--max-sessions", "1", "--max-pending", "2"], env: env() });
    try {
      await apply(s, "stuck", { models: ["anthropic/claude-hang"], triggers: [{ webhook: {} }] });
      const running = await start(s, "stuck", "occupies the only slot");
      await inPhase(s, running, ["Running"]);
      // Concurrent starts: exactly the two places left are taken.
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => startApi(s, "stuck", `wait ${i}`)));
      expect(answers.filter((r) => r.status === 201)).toHaveLength(2);
      const refused = answers.filter((r) => r.status === 429);
      expect(refused).toHaveLength(18);
      expect(refused[0]!.headers.get("retry-after")).toBe("10");
      expect(((await refused[0]!.json()) as { message: string }).message).toBe("the server has too many sessions waiting to run; retry later");
      const url = await webhookUrl(s, "stuck");
      const hook = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: '{"title":"one more"}' });
      expect(hook.status).toBe(429);
      expect(hook.headers.get("retry-after")).toBe("10");
      expect(await metric(s, "pai_sessions_pending")).toBe(2);
      const list = (await (await s.api("/apis/pai.io/v1/namespaces/default/sessions")).json()) as { items: { session: string; phase: string }[] };
      expect(list.items).toHaveLength(3);
      // A Pending session cancelled makes a place.
      await cancel(s, list.items.find((i) => i.phase === "Pending")!.session);
      expect((await startApi(s, "stuck", "now there is room")).status).toBe(201);
      expect((await startApi(s, "stuck", "and now there is not")).status).toBe(429);
    } finally {
      await s.stop();
    }
  }, 30_000);

  test("bad values of the new flags are usage errors", async () => {
    const cases: [string[], Record<string, string>, string][] = [
      [["--max-pending", "0"], {}, '--max-pending must be a whole number from 1 to 1000000000 (got "0")'],
      [[], { PAI_MAX_PENDING: "lots" }, '--max-pending must be a whole number from 1 to 1000000000 (got "lots")'],
      [["--session-nice", "20"], {}, '--session-nice must be a whole number from 0 to 19 (got "20")'],
      [[], { PAI_SESSION_NICE: "-5" }, '--session-nice must be a whole number from 0 to 19 (got "-5")'],
      [["--warm-processes", "65"], {}, '--warm-processes must be a whole number from 0 to 64 (got "65")'],
      [[], { PAI_WARM_PROCESSES: "two" }, '--warm-processes must be a whole number from 0 to 64 (got "two")'],
    ];
    for (const [args, vars, message] of cases) {
      const r = await runCli(["serve", "--data-dir", tempDir(), ...args], { env: vars });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(message);
    }
  }, 30_000);
});

describe("agents take turns", () => {
  test("one agent's backlog of hundreds does not keep another agent's session waiting; each agent stays in order", async () => {
    const s = await startServer({ args: ["--max-sessions", "1"], env: env() });
    try {
      await apply(s, "noisy", { models: ["anthropic/claude-hang"] });
      await apply(s, "quiet", {});
      const first = await start(s, "noisy", "n0");
      await inPhase(s, first, ["Running"]);
      const backlog = await Promise.all(Array.from({ length: 300 }, (_, i) => start(s, "noisy", `n${i + 1}`)));
      const quiet = await start(s, "quiet", "my turn?");
      expect((await get(s, quiet)).phase).toBe("Pending");
      await cancel(s, first);
      // The slot goes to the other agent, then back to the noisy one, in its own order.
      const done = await inPhase(s, quiet, ["Complete"]);
      expect(done.response).toBe("my turn?");
      const next = await inPhase(s, backlog[0]!, ["Running"]);
      expect(Date.parse(next.startedAt!)).toBeGreaterThanOrEqual(Date.parse(done.startedAt!));
      expect((await get(s, backlog[1]!)).phase).toBe("Pending");
      expect(await metric(s, "pai_sessions_pending")).toBe(299);
    } finally {
      await s.stop();
    }
  }, 30_000);

  test("also after a restart, which reads which agents wait, not their backlog", async () => {
    const dataDir = tempDir("pai-data-");
    const first = await startServer({ dataDir, args: ["--max-sessions", "1"], env: env() });
    await apply(first, "noisy", { models: ["anthropic/claude-hang"] });
    await apply(first, "quiet", {});
    const occupying = await start(first, "noisy", "n0");
    await inPhase(first, occupying, ["Running"]);
    const backlog = await Promise.all(Array.from({ length: 200 }, (_, i) => start(first, "noisy", `n${i + 1}`)));
    const quiet = await start(first, "quiet", "after the restart");
    await first.stop();

    const s = await startServer({ dataDir, args: ["--max-sessions", "1"], env: env() });
    try {
      expect(await metric(s, "pai_sessions_pending")).toBeGreaterThanOrEqual(200);
      // Whichever runs first, the quiet agent's session runs before the noisy one's second.
      const running = await eventually(async () => {
        for (const n of [backlog[0]!, quiet]) if ((await get(s, n)).phase !== "Pending") return n;
      }, 15_000, "a session started");
      if (running === backlog[0]) {
        await inPhase(s, running, ["Running"]);
        await cancel(s, running);
      }
      expect((await inPhase(s, quiet, ["Complete"])).response).toBe("after the restart");
      expect((await get(s, backlog[2]!)).phase).toBe("Pending");
    } finally {
      await s.stop();
    }
  }, 30_000);
});

describe("a child that cannot be started", () => {
  test("its session was committed, so the caller gets 201/200; it ends Error with the reason and frees its slot", async () => {
    const s = await startServer({ args: ["--max-sessions", "1"], env: env() });
    try {
      await apply(s, "walled", { maxConcurrentSessions: 1, triggers: [{ webhook: {} }] }, "blocked");
      await apply(s, "echo", {});
      // A file where the namespace's working folder should be: no session of it can get a folder.
      mkdirSync(join(s.dataDir, "sessions"), { recursive: true });
      writeFileSync(join(s.dataDir, "sessions", "blocked"), "not a folder");
      const viaApi = await start(s, "walled", "x", "blocked");
      const hook = await fetch(await webhookUrl(s, "walled", "blocked"), { method: "POST", headers: { "content-type": "application/json" }, body: '{"title":"y"}' });
      expect(hook.status).toBe(200);
      const viaHook = ((await hook.json()) as { session: string }).session;
      for (const name of [viaApi, viaHook]) {
        const failed = await inPhase(s, name, ["Error", "Complete"], "blocked");
        expect(failed).toMatchObject({ phase: "Error", error: "failed to start the harness: ENOTDIR: not a directory, mkdir", startedAt: null });
      }
      // Slots were freed: the server's only one, and the agent's.
      const other = await start(s, "echo", "still serving");
      expect((await inPhase(s, other, ["Complete"])).response).toBe("still serving");
      const cancelled = await s.api(`/agents/${viaApi}/cancel?namespace=blocked`, { method: "POST" });
      expect(cancelled.status).toBe(409);
      expect(s.logs()).toContain("failed to start a session");
    } finally {
      await s.stop();
    }
  }, 30_000);
});

describe("session processes", () => {
  test("run 10 nice levels below the server by default", async () => {
    const s = await startServer({ env: env() });
    try {
      await apply(s, "stuck", { models: ["anthropic/claude-hang"] });
      const name = await start(s, "stuck");
      await inPhase(s, name, ["Running"]);
      const child = await eventually(() => sessionPid(s, name), 5000, "child");
      const niceOf = (pid: string | number) => {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
      };
      expect(niceOf(child)).toBe(Math.min(19, niceOf(s.proc.pid) + 10));
      // The warm children started after it wait at the same priority.
      const others = await eventually(() => (childPids(s.proc.pid).length > 1 ? childPids(s.proc.pid).filter((p) => p !== child) : undefined), 5000, "warm children");
      for (const pid of others) expect(niceOf(pid)).toBe(Math.min(19, niceOf(s.proc.pid) + 10));
      await cancel(s, name);
    } finally {
      await s.stop();
    }
  }, 30_000);
});
