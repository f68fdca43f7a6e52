/**
 * Sessions for real: a server spawning harness children, the official SDKs talking to a fake model
 * server over the real wire formats, the read API with namespace tokens, SSE, and the CLI.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { parse } from "yaml";
import { EventSource } from "eventsource";
import { fail, hang, reply, startModelServer, type FakeModelServer } from "../fakes/model-server";
import { childPids, eventually, sessionPid, startServer, type TestServer } from "../helpers";

let server: TestServer;
let models: FakeModelServer;
let nsToken: string;
let otherToken: string;

const AGENTS = "/apis/pai.io/v1/namespaces/default/agents";
const agent = (name: string, spec: Record<string, unknown>) => ({ apiVersion: "pai.io/v1", kind: "Agent", metadata: { name }, spec: { models: ["pai/echo"], ...spec } });

async function apply(name: string, spec: Record<string, unknown>) {
  const res = await server.api(`${AGENTS}/${name}`, { method: "PUT", json: agent(name, spec) });
  expect(res.status).toBeLessThan(300);
}

async function start(agentName: string, title: string, env?: { name: string; value: string }[]): Promise<string> {
  const res = await server.api("/apis/pai.io/v1/namespaces/default/sessions", { method: "POST", json: { agentDefinition: agentName, title, env } });
  const body = (await res.json()) as { session: string; phase: string; message?: string };
  if (res.status !== 201) throw new Error(`start failed: ${res.status} ${body.message}`);
  return body.session;
}

const read = (path: string, token = nsToken) => fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
const session = async (name: string) => (await (await read(`/agents/${name}?namespace=default`)).json()) as { phase: string; response: string | null; error: string | null; startedAt: string | null; finishedAt: string | null };
const events = async (name: string, query = "") =>
  (await (await read(`/agents/${name}/events?namespace=default${query}`)).json()) as { events: { id: number; type: string; content: any; timestamp: string }[]; count: number };
const waitPhase = (name: string, phases: string[], ms = 10_000) =>
  eventually(async () => {
    const s = await session(name);
    return phases.includes(s.phase) ? s : undefined;
  }, ms, `session ${name} in ${phases.join("/")}`);

beforeAll(async () => {
  models = startModelServer();
  server = await startServer({
    args: ["--max-sessions", "4"],
    env: { ANTHROPIC_API_KEY: "sk-ant-test", ANTHROPIC_BASE_URL: models.anthropicBaseUrl, OPENAI_API_KEY: "sk-openai-test", OPENAI_BASE_URL: models.openaiBaseUrl, PAI_SECRET_SETTING: "hidden", PAI_SSE_KEEPALIVE_MS: "100" },
  });
  nsToken = (await server.cli(["create", "token", "-n", "default"])).stdout.trim();
  otherToken = (await server.cli(["create", "token", "-n", "other"])).stdout.trim();
  await apply("echo", {});
  await apply("claude", { models: ["anthropic/claude-sonnet-4-6"], system: "You are terse." });
  await apply("fallback", { models: ["anthropic/claude-sonnet-4-6", "openai/gpt-4o"] });
  await apply("slow", { models: ["anthropic/claude-slow"], timeoutSeconds: 1 });
  await apply("hanging", { models: ["anthropic/claude-hang"] });
});
afterAll(async () => {
  await server.stop();
  await models.stop();
});
beforeEach(() => models.reset());

describe("a pai/echo session", () => {
  test("goes Pending → Running → Complete with the reply as response and events in order", async () => {
    const name = await start("echo", "what sound does a cow make?");
    expect(name).toMatch(/^echo-run-[0-9a-f]{8}$/);
    const done = await waitPhase(name, ["Complete"]);
    expect(done.response).toBe("what sound does a cow make?");
    expect(done.error).toBeNull();
    expect(Date.parse(done.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(done.startedAt!));
    const { events: all, count } = await events(name);
    expect(count).toBe(all.length);
    expect(all.map((e) => e.type)).toEqual(["session.status_running", "agent.message", "session.status_closed"]);
    expect(all.map((e) => e.id)).toEqual([1, 2, 3]);
    expect(all[1]!.content.text).toBe("what sound does a cow make?");
    expect(all[2]!.content).toEqual({ phase: "Complete" });
    for (const e of all) expect(Object.keys(e).sort()).toEqual(["content", "id", "timestamp", "type"]);
  });

  test("event_type filters; after and limit page through", async () => {
    const name = await start("echo", "page me");
    await waitPhase(name, ["Complete"]);
    const msgs = await events(name, "&event_type=agent.message");
    expect(msgs.count).toBe(1);
    expect(msgs.events[0]!.content.text).toBe("page me");
    const first = await events(name, "&limit=2");
    expect(first.events.map((e) => e.id)).toEqual([1, 2]);
    const rest = await events(name, "&after=2");
    expect(rest.events.map((e) => e.type)).toEqual(["session.status_closed"]);
    const bad = await read(`/agents/${name}/events?namespace=default&limit=0`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toBe('limit must be a whole number from 1 to 1000 (got "0")');
  });
});

describe("models through the official SDKs", () => {
  test("anthropic/: system prompt, title and key reach the Messages API; the reply is the response", async () => {
    models.enqueue("claude-sonnet-4-6", reply("A cow says moo."));
    const name = await start("claude", "what sound does a cow make? answer in one sentence");
    const done = await waitPhase(name, ["Complete", "Error"]);
    expect(done).toMatchObject({ phase: "Complete", response: "A cow says moo." });
    const req = models.requestsFor("claude-sonnet-4-6")[0]!;
    expect(req).toMatchObject({ provider: "anthropic", stream: true, apiKey: "sk-ant-test", system: "You are terse." });
    expect(req.messages).toEqual([{ role: "user", content: "what sound does a cow make? answer in one sentence" }]);
  });

  test("thinking is reported as agent.thinking", async () => {
    models.enqueue("claude-sonnet-4-6", reply("42", { thinking: "Let me think about it." }));
    const name = await start("claude", "meaning of life?");
    await waitPhase(name, ["Complete"]);
    const types = (await events(name)).events.map((e) => e.type);
    expect(types).toEqual(["session.status_running", "session.usage", "agent.thinking", "agent.message", "session.status_closed"]);
  });

  test("an overloaded first model falls back to the next, and says so in an event", async () => {
    models.enqueue("claude-sonnet-4-6", fail(529));
    models.enqueue("gpt-4o", reply("from openai"));
    const name = await start("fallback", "hello");
    const done = await waitPhase(name, ["Complete", "Error"]);
    expect(done).toMatchObject({ phase: "Complete", response: "from openai" });
    const all = (await events(name)).events;
    const fb = all.find((e) => e.type === "session.model_fallback")!;
    expect(fb.content).toMatchObject({ from: "anthropic/claude-sonnet-4-6", to: "openai/gpt-4o" });
    expect(fb.content.error).toContain("529");
    expect(models.requestsFor("gpt-4o")[0]!.apiKey).toBe("sk-openai-test");
  });

  test("a rate limit falls back too; an auth error does not, and ends the session Error", async () => {
    models.enqueue("claude-sonnet-4-6", fail(429));
    models.enqueue("gpt-4o", fail(401));
    const name = await start("fallback", "hello");
    const done = await waitPhase(name, ["Complete", "Error"]);
    expect(done.phase).toBe("Error");
    expect(done.error).toContain("401");
    const types = (await events(name)).events.map((e) => e.type);
    expect(types).toEqual(["session.status_running", "session.model_fallback", "session.error", "session.status_closed"]);
  });
});

describe("limits, deadline and cancellation", () => {
  test("a session past spec.timeoutSeconds is stopped and ends Error with the reason", async () => {
    models.enqueue("claude-slow", hang);
    const name = await start("slow", "take forever");
    const done = await waitPhase(name, ["Error", "Complete"], 10_000);
    expect(done.phase).toBe("Error");
    expect(done.error).toBe("deadline exceeded: the session ran longer than its timeout of 1 s");
    const all = (await events(name)).events;
    expect(all.map((e) => e.type)).toEqual(["session.status_running", "session.error", "session.status_closed"]);
    expect(all[1]!.content).toEqual({ message: "deadline exceeded: the session ran longer than its timeout of 1 s" });
    expect(all.at(-1)).toMatchObject({ type: "session.status_closed", content: { phase: "Error", reason: "deadline exceeded: the session ran longer than its timeout of 1 s" } });
  });

  test("cancel ends a running session Cancelled; cancelling again is a 409", async () => {
    models.enqueue("claude-hang", hang);
    const name = await start("hanging", "wait for me");
    await waitPhase(name, ["Running"]);
    await eventually(() => models.requestsFor("claude-hang").length > 0, 5000, "model called");
    const cancel = await fetch(`${server.url}/agents/${name}/cancel?namespace=default`, { method: "POST", headers: { authorization: `Bearer ${nsToken}` } });
    expect(cancel.status).toBe(200);
    expect(((await cancel.json()) as { phase: string }).phase).toBe("Cancelled");
    const all = (await events(name)).events;
    expect(all.map((e) => e.type)).toEqual(["session.status_running", "session.status_closed"]);
    expect(all.at(-1)).toMatchObject({ type: "session.status_closed", content: { phase: "Cancelled" } });
    const again = await fetch(`${server.url}/agents/${name}/cancel?namespace=default`, { method: "POST", headers: { authorization: `Bearer ${nsToken}` } });
    expect(again.status).toBe(409);
  });

  test("pai cancel works from the CLI", async () => {
    models.enqueue("claude-hang", hang);
    const name = await start("hanging", "wait again");
    await waitPhase(name, ["Running"]);
    const r = await server.cli(["cancel", name]);
    expect(r).toMatchObject({ code: 0, stdout: `session "${name}" cancelled\n` });
  });

  test("a harness child killed with SIGKILL ends its session Error; the supervisor carries on", async () => {
    models.enqueue("claude-hang", hang);
    const name = await start("hanging", "kill me");
    await waitPhase(name, ["Running"]);
    await eventually(() => models.requestsFor("claude-hang").length > 0, 5000, "model called");
    const pid = sessionPid(server, name);
    expect(pid).toBeNumber();
    process.kill(pid!, "SIGKILL");
    const done = await waitPhase(name, ["Error"]);
    expect(done.error).toBe("harness exited unexpectedly (killed by SIGKILL)");
    const closed = (await events(name)).events.filter((e) => e.type === "session.status_closed");
    expect(closed).toHaveLength(1);
    // No zombie: the child was reaped.
    await eventually(() => !childPids(server.proc.pid).includes(pid!), 5000, "child reaped");
    const after = await start("echo", "still alive?");
    expect((await waitPhase(after, ["Complete"])).response).toBe("still alive?");
  });

  test("--max-sessions bounds how many run at once; the rest wait Pending and then run", async () => {
    models.script((model) => (model === "claude-hang" ? { delayMs: 800, text: "done" } : undefined));
    const names = await Promise.all(Array.from({ length: 6 }, (_, i) => start("hanging", `job ${i}`)));
    await eventually(async () => (await Promise.all(names.map(session))).filter((s) => s.phase === "Running").length === 4, 5000, "4 running");
    const phases = (await Promise.all(names.map(session))).map((s) => s.phase);
    expect(phases.filter((p) => p === "Pending")).toHaveLength(2);
    for (const n of names) expect((await waitPhase(n, ["Complete"], 15_000)).response).toBe("done");
  });

  test("spec.maxConcurrentSessions bounds one agent", async () => {
    await apply("single", { models: ["anthropic/claude-single"], maxConcurrentSessions: 1 });
    models.script((model) => (model === "claude-single" ? { delayMs: 500, text: "ok" } : undefined));
    const [a, b] = [await start("single", "one"), await start("single", "two")];
    await waitPhase(a, ["Running"]);
    expect((await session(b)).phase).toBe("Pending");
    await waitPhase(b, ["Complete"], 10_000);
    const sa = await session(a);
    const sb = await session(b);
    expect(Date.parse(sb.startedAt!)).toBeGreaterThanOrEqual(Date.parse(sa.finishedAt!));
  });
});

describe("the session's environment", () => {
  test("PAI_* and model keys are not in the child's environment; spec.env and overrides are", async () => {
    // pai/echo cannot print its env, so look at the child process itself while it runs. TZ is read
    // as a runtime starts, so this session gets a child spawned with its environment (a warm child
    // gets it in the start message instead: test/e2e/warm.test.ts).
    await apply("envcheck", { models: ["anthropic/claude-env"], env: [{ name: "FROM_SPEC", value: "spec" }, { name: "OVERRIDDEN", value: "spec" }, { name: "TZ", value: "Europe/Paris" }] });
    models.enqueue("claude-env", hang);
    const name = await start("envcheck", "env?", [{ name: "OVERRIDDEN", value: "session" }, { name: "BATCH_DATE", value: "2026-04-12" }]);
    await waitPhase(name, ["Running"]);
    const pid = await eventually(() => sessionPid(server, name), 5000, "child pid");
    const env = Object.fromEntries(
      (await Bun.file(`/proc/${pid}/environ`).text())
        .split("\0")
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
    );
    expect(env).toMatchObject({ FROM_SPEC: "spec", OVERRIDDEN: "session", BATCH_DATE: "2026-04-12", TZ: "Europe/Paris" });
    for (const k of ["PAI_SECRET_SETTING", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL"]) expect(env[k]).toBeUndefined();
    // Yet the model client got the key, by the IPC start message.
    await eventually(() => models.requestsFor("claude-env")[0]?.apiKey === "sk-ant-test", 5000, "key used");
    await server.cli(["cancel", name]);
  });

  test("env names that could take over the process are refused with a 400 naming them", async () => {
    const res = await server.api("/apis/pai.io/v1/namespaces/default/sessions", {
      method: "POST",
      json: { agentDefinition: "echo", title: "x", env: [{ name: "LD_PRELOAD", value: "/tmp/x.so" }, { name: "NODE_OPTIONS", value: "--require x" }, { name: "OK", value: "1" }] },
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toBe("env: these variables may not be set for a session: LD_PRELOAD, NODE_OPTIONS");
  });
});

describe("read API authentication", () => {
  test("no token 401, another namespace's token 403, unknown session 404, admin token allowed", async () => {
    const name = await start("echo", "auth");
    await waitPhase(name, ["Complete"]);
    for (const path of [`/agents/${name}?namespace=default`, `/agents/${name}/events?namespace=default`, `/agents/${name}/stream?namespace=default`]) {
      expect((await fetch(`${server.url}${path}`)).status).toBe(401);
      expect((await read(path, "pai_bogus")).status).toBe(401);
      const forbidden = await read(path, otherToken);
      expect(forbidden.status).toBe(403);
      expect(JSON.stringify(await forbidden.json())).not.toContain("auth");
      expect((await read(path, server.token)).status).toBe(200);
    }
    expect((await read(`/agents/nope-run-00000000?namespace=default`)).status).toBe(404);
    // A namespace token may start and list sessions in its namespace, and manage nothing else.
    const startWith = (token: string) =>
      fetch(`${server.url}/apis/pai.io/v1/namespaces/default/sessions`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ agentDefinition: "echo", title: "ns token" }) });
    expect((await startWith(nsToken)).status).toBe(201);
    expect((await startWith(otherToken)).status).toBe(403);
    expect((await read("/apis/pai.io/v1/namespaces/default/sessions")).status).toBe(200);
    // Its namespace's agents are readable (webhook tokens hidden); every namespace's are not.
    expect((await read("/apis/pai.io/v1/namespaces/default/agents")).status).toBe(200);
    expect((await read("/apis/pai.io/v1/agents")).status).toBe(403);
    expect((await read(`/agents/nope/events?namespace=default`)).status).toBe(404);
  });
});

describe("SSE stream", () => {
  async function readStream(res: Response): Promise<{ id: number; type: string; content: any }[]> {
    const text = await res.text();
    return text
      .split("\n\n")
      .filter((b) => b.includes("data: "))
      .map((b) => ({ id: Number(/^id: (\d+)$/m.exec(b)![1]), ...JSON.parse(/^data: (.*)$/m.exec(b)![1]!) }));
  }

  test("replays a finished session's events with ids and closes after session.status_closed", async () => {
    const name = await start("echo", "replay");
    await waitPhase(name, ["Complete"]);
    const res = await read(`/agents/${name}/stream?namespace=default`);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const got = await readStream(res);
    expect(got.map((e) => [e.id, e.type])).toEqual([
      [1, "session.status_running"],
      [2, "agent.message"],
      [3, "session.status_closed"],
    ]);
  });

  test("Last-Event-ID resumes after that id; past the end gets 204", async () => {
    const name = await start("echo", "resume");
    await waitPhase(name, ["Complete"]);
    const res = await fetch(`${server.url}/agents/${name}/stream?namespace=default`, { headers: { authorization: `Bearer ${nsToken}`, "last-event-id": "1" } });
    expect((await readStream(res)).map((e) => e.id)).toEqual([2, 3]);
    const end = await fetch(`${server.url}/agents/${name}/stream?namespace=default`, { headers: { authorization: `Bearer ${nsToken}`, "last-event-id": "3" } });
    expect(end.status).toBe(204);
  });

  test("delivers live events as they happen, then closes", async () => {
    models.enqueue("claude-hang", { delayMs: 600, text: "live reply" });
    const name = await start("hanging", "live");
    const res = await read(`/agents/${name}/stream?namespace=default`);
    const started = Date.now();
    const got = await readStream(res);
    expect(Date.now() - started).toBeGreaterThan(300);
    expect(got.map((e) => e.type)).toEqual(["session.status_running", "session.usage", "agent.message", "session.status_closed"]);
    expect(got[2]!.content.text).toBe("live reply");
    expect(got.map((e) => e.id)).toEqual([1, 2, 3, 4]);
  });

  test("sends keep-alive comments while nothing happens", async () => {
    models.enqueue("claude-hang", { delayMs: 700, text: "late" });
    const name = await start("hanging", "quiet");
    const text = await (await read(`/agents/${name}/stream?namespace=default`)).text();
    expect(text.match(/^: keep-alive$/gm)?.length ?? 0).toBeGreaterThanOrEqual(3);
    expect(text).toContain('"type":"session.status_closed"');
  });

  test("works with the eventsource npm client, which stops at the end instead of reconnecting forever", async () => {
    models.enqueue("claude-hang", { delayMs: 300, text: "for eventsource" });
    const name = await start("hanging", "es");
    const got: { id: string; type: string }[] = [];
    let requests = 0;
    const es = new EventSource(`${server.url}/agents/${name}/stream?namespace=default`, {
      fetch: (input, init) => {
        requests++;
        return fetch(input, { ...init, headers: { ...init?.headers, authorization: `Bearer ${nsToken}` } });
      },
    });
    es.onmessage = (m) => got.push({ id: m.lastEventId, type: JSON.parse(m.data).type });
    await eventually(() => es.readyState === EventSource.CLOSED, 10_000, "EventSource closed");
    expect(got).toEqual([
      { id: "1", type: "session.status_running" },
      { id: "2", type: "session.usage" },
      { id: "3", type: "agent.message" },
      { id: "4", type: "session.status_closed" },
    ]);
    // One stream, then one reconnect with Last-Event-ID: 3 that got 204 and ended it.
    expect(requests).toBe(2);
    es.close();
  });

  test("works with curl -N", async () => {
    const name = await start("echo", "curl me");
    await waitPhase(name, ["Complete"]);
    const curl = Bun.spawnSync(["curl", "-sN", "-H", `Authorization: Bearer ${nsToken}`, `${server.url}/agents/${name}/stream?namespace=default`], { timeout: 10_000 });
    const out = curl.stdout.toString();
    expect(out).toContain("id: 3\n");
    expect(out).toContain('"type":"session.status_closed"');
  });
});

describe("events under load", () => {
  test("50 concurrent sessions each store their events in order, exactly one closing event last", async () => {
    models.script((model) => (model === "claude-hang" ? { text: "chunked reply with several words", chunkDelayMs: 5 } : undefined));
    const names = await Promise.all(Array.from({ length: 50 }, (_, i) => start(i % 2 ? "echo" : "hanging", `load ${i}`)));
    for (const n of names) await waitPhase(n, ["Complete", "Error"], 60_000);
    for (const n of names) {
      const all = (await events(n)).events;
      expect(all.map((e) => e.id)).toEqual(all.map((_, i) => i + 1));
      expect(all[0]!.type).toBe("session.status_running");
      expect(all.filter((e) => e.type === "session.status_closed")).toHaveLength(1);
      expect(all.at(-1)!.type).toBe("session.status_closed");
      expect((await session(n)).phase).toBe("Complete");
    }
  }, 90_000);
});

describe("the CLI", () => {
  test("pai run --wait prints the reply and exits 0; pai get sessions, get session -o yaml, logs", async () => {
    const run = await server.cli(["run", "echo", "hello", "from", "the", "cli", "--wait"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("hello from the cli\n");
    expect(run.stdout).toContain("[closed] Complete\n");
    const name = /session (\S+)/.exec(run.stderr)![1]!;

    const list = await server.cli(["get", "sessions"]);
    expect(list.stdout).toMatch(new RegExp(`^${name}\\s+echo\\s+Complete\\s+\\d+[smhd]\\s+hello from the cli$`, "m"));
    const yaml = parse((await server.cli(["get", "session", name, "-o", "yaml"])).stdout);
    expect(yaml).toMatchObject({ kind: "Session", session: name, agentDefinition: "echo", phase: "Complete", response: "hello from the cli" });
    const logs = await server.cli(["logs", name]);
    expect(logs.stdout).toBe("[running]\nhello from the cli\n[closed] Complete\n");
    const follow = await server.cli(["logs", name, "-f"]);
    expect(follow.stdout).toBe("[running]\nhello from the cli\n[closed] Complete\n");
  });

  test("pai run without --wait prints the session name; a failing session exits 1 with --wait", async () => {
    const r = await server.cli(["run", "echo", "quick"]);
    expect(r.stdout).toMatch(/^echo-run-[0-9a-f]{8}\n$/);
    models.enqueue("claude-sonnet-4-6", fail(400));
    const failed = await server.cli(["run", "claude", "bad request", "--wait"]);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain("[closed] Error");
  });

  test("pai run --env passes overrides; a forbidden one is refused", async () => {
    const bad = await server.cli(["run", "echo", "x", "--env", "PATH=/evil"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("PATH");
    const ok = await server.cli(["run", "echo", "x", "--env", "BATCH=1"]);
    expect(ok.code).toBe(0);
  });
});

describe("cancelling a session that has not started", () => {
  test("a Pending session is cancelled without ever running", async () => {
    await apply("queued", { models: ["anthropic/claude-queued"], maxConcurrentSessions: 1 });
    models.script((model) => (model === "claude-queued" ? hang : undefined));
    const first = await start("queued", "occupies the only slot");
    await waitPhase(first, ["Running"]);
    const second = await start("queued", "never runs");
    expect((await session(second)).phase).toBe("Pending");
    const r = await server.cli(["cancel", second]);
    expect(r).toMatchObject({ code: 0, stdout: `session "${second}" cancelled\n` });
    const all = (await events(second)).events;
    expect(all.map((e) => e.type)).toEqual(["session.status_closed"]);
    expect(all[0]!.content).toEqual({ phase: "Cancelled", reason: "cancelled" });
    expect((await session(second)).startedAt).toBeNull();
    await eventually(() => models.requestsFor("claude-queued").length > 0, 5000, "model called");
    await server.cli(["cancel", first]);
    expect(models.requestsFor("claude-queued")).toHaveLength(1);
  });
});
