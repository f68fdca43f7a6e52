/**
 * What survives a crash: a server killed with SIGKILL mid-session is restarted on the same data
 * dir; the interrupted session ends Error with its closing event, the queued one runs, and the
 * orphaned harness child exits by itself. Also: a missing model key.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { hang, startModelServer } from "../fakes/model-server";
import { childPids, eventually, sessionPid, startServer, type TestServer } from "../helpers";

const models = startModelServer();
afterAll(() => models.stop());

const agent = (name: string, spec: Record<string, unknown>) => ({ apiVersion: "pai.io/v1", kind: "Agent", metadata: { name }, spec });

async function start(server: TestServer, agentName: string, title: string) {
  const res = await server.api("/apis/pai.io/v1/namespaces/default/sessions", { method: "POST", json: { agentDefinition: agentName, title } });
  expect(res.status).toBe(201);
  return ((await res.json()) as { session: string }).session;
}
const get = async (server: TestServer, name: string) =>
  (await (await server.api(`/agents/${name}?namespace=default`)).json()) as { phase: string; error: string | null; response: string | null };
const events = async (server: TestServer, name: string) =>
  ((await (await server.api(`/agents/${name}/events?namespace=default`)).json()) as { events: { type: string; content: any }[] }).events;

describe("restart recovery", () => {
  test("Running sessions end Error 'interrupted by server restart'; Pending ones run; no child is left", async () => {
    const env = { ANTHROPIC_API_KEY: "k", ANTHROPIC_BASE_URL: models.anthropicBaseUrl };
    const first = await startServer({ args: ["--max-sessions", "1"], env });
    await first.api("/apis/pai.io/v1/namespaces/default/agents/stuck", { method: "PUT", json: agent("stuck", { models: ["anthropic/claude-hang"] }) });
    await first.api("/apis/pai.io/v1/namespaces/default/agents/echo", { method: "PUT", json: agent("echo", { models: ["pai/echo"] }) });
    models.script((m) => (m === "claude-hang" ? hang : undefined));
    const running = await start(first, "stuck", "never finishes");
    await eventually(async () => (await get(first, running)).phase === "Running", 5000, "running");
    const queued = await start(first, "echo", "run me after the restart");
    expect((await get(first, queued)).phase).toBe("Pending");
    const child = sessionPid(first, running);
    expect(child).toBeNumber();
    // The session's child and the warm ones started ahead of demand.
    const children = childPids(first.proc.pid);
    expect(children).toContain(child!);

    first.proc.kill("SIGKILL");
    await first.proc.exited;
    // The orphaned harness notices its supervisor is gone and exits, and so do the warm children.
    for (const pid of children) await eventually(() => !Bun.spawnSync(["kill", "-0", String(pid)]).success, 5000, `orphan ${pid} exits`);

    const second = await startServer({ dataDir: first.dataDir, env });
    try {
      const interrupted = await get(second, running);
      expect(interrupted).toMatchObject({ phase: "Error", error: "interrupted by server restart" });
      const all = await events(second, running);
      expect(all.at(-1)).toMatchObject({ type: "session.status_closed", content: { phase: "Error", reason: "interrupted by server restart" } });
      expect(all.filter((e) => e.type === "session.status_closed")).toHaveLength(1);
      const done = await eventually(async () => {
        const s = await get(second, queued);
        return s.phase === "Complete" ? s : undefined;
      }, 10_000, "queued session completes");
      expect(done.response).toBe("run me after the restart");
    } finally {
      await second.stop();
    }
  });

  test("a graceful stop ends running sessions Error, never leaving one Running", async () => {
    const env = { ANTHROPIC_API_KEY: "k", ANTHROPIC_BASE_URL: models.anthropicBaseUrl };
    const s = await startServer({ env });
    await s.api("/apis/pai.io/v1/namespaces/default/agents/stuck", { method: "PUT", json: agent("stuck", { models: ["anthropic/claude-hang"] }) });
    models.script((m) => (m === "claude-hang" ? hang : undefined));
    const name = await start(s, "stuck", "x");
    await eventually(async () => (await get(s, name)).phase === "Running", 5000, "running");
    expect(await s.stop()).toBe(0);
    const again = await startServer({ dataDir: s.dataDir, env });
    try {
      expect(await get(again, name)).toMatchObject({ phase: "Error", error: "interrupted: the server stopped" });
    } finally {
      await again.stop();
    }
  });
});

describe("model keys", () => {
  test("a missing key ends the session Error naming the variable; with a fallback model the next one runs", async () => {
    const s = await startServer({ env: { ANTHROPIC_BASE_URL: models.anthropicBaseUrl } });
    try {
      await s.api("/apis/pai.io/v1/namespaces/default/agents/nokey", { method: "PUT", json: agent("nokey", { models: ["anthropic/claude-sonnet-4-6"] }) });
      await s.api("/apis/pai.io/v1/namespaces/default/agents/withecho", { method: "PUT", json: agent("withecho", { models: ["openai/gpt-4o", "pai/echo"] }) });
      const a = await start(s, "nokey", "hi");
      const failed = await eventually(async () => {
        const x = await get(s, a);
        return x.phase === "Error" ? x : undefined;
      }, 10_000, "error");
      expect(failed.error).toBe("anthropic/claude-sonnet-4-6: ANTHROPIC_API_KEY is not set");
      const b = await start(s, "withecho", "echo me");
      const ok = await eventually(async () => {
        const x = await get(s, b);
        return x.phase === "Complete" ? x : undefined;
      }, 10_000, "complete");
      expect(ok.response).toBe("echo me");
      const fb = (await events(s, b)).find((e) => e.type === "session.model_fallback");
      expect(fb?.content.error).toBe("openai/gpt-4o: OPENAI_API_KEY is not set");
    } finally {
      await s.stop();
    }
  });
});

describe("callbacks across a restart", () => {
  test("a callback still being retried when the server stops is delivered after it starts again; an answer on the way at the stop is recorded", async () => {
    let calls = 0;
    const receiver = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      // The first answer comes late, so the server is told to stop while that POST is on the way.
      fetch: async () => {
        const n = ++calls;
        if (n === 1) await Bun.sleep(300);
        return new Response(null, { status: n === 1 ? 503 : 200 });
      },
    });
    try {
      const first = await startServer({ args: ["--allow-private-callbacks"], env: { PAI_CALLBACK_BACKOFF_MS: "60000" } });
      await first.api("/apis/pai.io/v1/namespaces/default/agents/cb", { method: "PUT", json: agent("cb", { models: ["pai/echo"], triggers: [{ webhook: {} }] }) });
      const url = await eventually(async () => ((await (await first.api("/apis/pai.io/v1/namespaces/default/agents/cb")).json()) as { status: { webhookUrl?: string } }).status.webhookUrl, 5000, "url");
      const res = await fetch(url.replace(/^http:\/\/localhost:\d+/, first.url), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ title: "report back", callbackUrl: `http://127.0.0.1:${receiver.port}/done` }),
      });
      const { session: name } = (await res.json()) as { session: string };
      // Generous waits: the machine may be busy, and only the order of events is asserted.
      await eventually(() => calls === 1, 15_000, "first attempt");
      await first.stop();
      expect(calls).toBe(1);

      const second = await startServer({ dataDir: first.dataDir, args: ["--allow-private-callbacks"] });
      try {
        await eventually(() => calls === 2, 15_000, "delivered after restart");
        const attempts = await eventually(async () => {
          const cb = (await events(second, name)).filter((e) => e.type === "session.callback");
          return cb.length === 2 ? cb : undefined;
        }, 15_000, "two attempts recorded");
        expect(attempts.map((e) => e.content.status)).toEqual([503, 200]);
      } finally {
        await second.stop();
      }
    } finally {
      receiver.stop(true);
    }
  });
});
