/**
 * Session retention in a real server: sessions run for real (pai/echo, and a model that never
 * answers for Running and Pending ones), their age is moved back in the store from here (the
 * server's SQLite file, through a second connection), and the server's own retention job, run
 * every 100 ms here (PAI_RETENTION_INTERVAL_MS), removes what finished before the cutoff and
 * nothing else. `--session-retention 0` keeps everything; bad values stop `pai serve`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startModelServer, type FakeModelServer } from "../fakes/model-server";
import { eventually, removeDir, runCli, startServer, tempDir, type TestServer } from "../helpers";

const DAY = 86_400_000;
let models: FakeModelServer;

beforeAll(() => {
  models = startModelServer();
  models.script((model) => (model === "claude-hang" ? { hang: true } : undefined));
});
afterAll(async () => {
  await models.stop();
});

const agent = (name: string, spec: Record<string, unknown>) => ({ apiVersion: "pai.io/v1", kind: "Agent", metadata: { name }, spec });

async function apply(server: TestServer, name: string, spec: Record<string, unknown>) {
  const res = await server.api(`/apis/pai.io/v1/namespaces/default/agents/${name}`, { method: "PUT", json: agent(name, spec) });
  expect(res.status).toBeLessThan(300);
}

async function run(server: TestServer, agentName: string, title: string): Promise<string> {
  const r = await server.cli(["run", agentName, title]);
  expect(r.code).toBe(0);
  return r.stdout.trim();
}

const phaseOf = async (server: TestServer, name: string) => {
  const res = await server.api(`/agents/${name}?namespace=default`);
  return res.status === 404 ? "gone" : ((await res.json()) as { phase: string }).phase;
};
const waitPhase = (server: TestServer, name: string, phase: string) => eventually(async () => (await phaseOf(server, name)) === phase, 10_000, `${name} ${phase}`);

/** Moves a session's times (and its deliveries') `days` back, through a connection of our own to the server's store. */
function age(server: TestServer, name: string, days: number, columns = ["created_at", "finished_at"]) {
  const db = new Database(join(server.dataDir, "pai.db"));
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    const at = new Date(Date.now() - days * DAY).toISOString();
    db.run(`UPDATE sessions SET ${columns.map((c) => `${c} = ?1`).join(", ")} WHERE namespace = 'default' AND name = ?2`, [at, name]);
    db.run(`UPDATE webhook_deliveries SET created_at = ?1 WHERE namespace = 'default' AND session = ?2`, [at, name]);
  } finally {
    db.close();
  }
}

function countIn(server: TestServer, query: string, ...args: string[]): number {
  const db = new Database(join(server.dataDir, "pai.db"), { readonly: true });
  try {
    return (db.query(query).get(...args) as { n: number }).n;
  } finally {
    db.close();
  }
}

describe("the default retention (30d)", () => {
  let server: TestServer;
  let hookUrl: string;
  const outside = tempDir("pai-outside-");

  beforeAll(async () => {
    server = await startServer({ env: { PAI_RETENTION_INTERVAL_MS: "100", ANTHROPIC_API_KEY: "sk-ant-test", ANTHROPIC_BASE_URL: models.anthropicBaseUrl } });
    await apply(server, "echo", { models: ["pai/echo"], triggers: [{ webhook: {} }] });
    await apply(server, "hanging", { models: ["anthropic/claude-hang"], maxConcurrentSessions: 1 });
    const url = await eventually(
      async () => ((await (await server.api("/apis/pai.io/v1/namespaces/default/agents/echo")).json()) as { status: { webhookUrl?: string } }).status.webhookUrl,
      5000,
      "webhook URL",
    );
    hookUrl = url.replace(/^http:\/\/localhost:\d+/, server.url);
  });
  afterAll(async () => {
    await server.stop();
    removeDir(outside);
  });

  const deliver = async (key: string) => {
    const res = await fetch(hookUrl, { method: "POST", headers: { "content-type": "application/json", "idempotency-key": key }, body: JSON.stringify({ title: "old news", event: { id: 1 } }) });
    expect(res.status).toBe(200);
    return ((await res.json()) as { session: string }).session;
  };

  test("removes a session finished more than 30 days ago, whole; keeps recent, Running and Pending ones", async () => {
    const old = await deliver("delivery-old");
    const recent = await run(server, "echo", "fresh");
    await waitPhase(server, old, "Complete");
    await waitPhase(server, recent, "Complete");
    const running = await run(server, "hanging", "never answered");
    await waitPhase(server, running, "Running");
    const pending = await run(server, "hanging", "waits behind it");
    await Bun.sleep(200);
    expect(await phaseOf(server, pending)).toBe("Pending");

    const oldFolder = join(server.dataDir, "sessions", "default", old);
    expect(existsSync(join(oldFolder, "webhook.json"))).toBe(true);
    mkdirSync(join(oldFolder, "out"));
    writeFileSync(join(oldFolder, "out", "result.txt"), "result");
    writeFileSync(join(outside, "precious.txt"), "keep me");
    symlinkSync(outside, join(oldFolder, "out", "link-to-outside"));
    const recentFolder = join(server.dataDir, "sessions", "default", recent);
    mkdirSync(recentFolder, { recursive: true });
    writeFileSync(join(recentFolder, "result.txt"), "recent result");
    expect(countIn(server, "SELECT count(*) AS n FROM session_events WHERE session = ?1", old)).toBeGreaterThan(0);
    expect(countIn(server, "SELECT count(*) AS n FROM webhook_deliveries WHERE session = ?1", old)).toBe(1);

    age(server, recent, 29);
    // Not finished, whatever finished_at says: the phase protects them.
    age(server, running, 400);
    age(server, pending, 400);
    age(server, old, 31);

    await eventually(async () => (await phaseOf(server, old)) === "gone", 5000, "the old session removed");
    expect((await server.api(`/agents/${old}/events?namespace=default`)).status).toBe(404);
    expect((await server.api(`/agents/${old}/files?namespace=default`)).status).toBe(404);
    expect(existsSync(oldFolder)).toBe(false);
    expect(readFileSync(join(outside, "precious.txt"), "utf8")).toBe("keep me");
    expect(countIn(server, "SELECT count(*) AS n FROM session_events WHERE session = ?1", old)).toBe(0);
    expect(countIn(server, "SELECT count(*) AS n FROM webhook_deliveries WHERE session = ?1", old)).toBe(0);
    await eventually(() => /retention: removed 1 session that finished more than 30d ago/.test(server.logs()), 2000, "the log line");

    // A few more runs: nothing else goes.
    await Bun.sleep(400);
    expect(await phaseOf(server, recent)).toBe("Complete");
    expect(readFileSync(join(recentFolder, "result.txt"), "utf8")).toBe("recent result");
    expect(await phaseOf(server, running)).toBe("Running");
    expect(await phaseOf(server, pending)).toBe("Pending");
    expect(countIn(server, "SELECT count(*) AS n FROM session_events WHERE session = ?1", running)).toBeGreaterThan(0);

    // The delivery id is forgotten with its session: sent again, it starts a new session rather than pointing at a removed one.
    const again = await deliver("delivery-old");
    expect(again).not.toBe(old);
    await waitPhase(server, again, "Complete");

    for (const s of [pending, running]) expect((await server.cli(["cancel", s])).code).toBe(0);
  });
});

describe("--session-retention", () => {
  test("0 keeps every session, however old", async () => {
    const server = await startServer({ args: ["--session-retention", "0"], env: { PAI_RETENTION_INTERVAL_MS: "50" } });
    try {
      await apply(server, "echo", { models: ["pai/echo"] });
      const name = await run(server, "echo", "keep me");
      await waitPhase(server, name, "Complete");
      age(server, name, 4000);
      await Bun.sleep(400);
      expect(await phaseOf(server, name)).toBe("Complete");
      expect(server.logs()).not.toContain("retention: removed");
    } finally {
      await server.stop();
    }
  });

  test("a bad value stops pai serve with a usage error naming the flag", async () => {
    const dataDir = tempDir("pai-data-");
    const flag = await runCli(["serve", "--port", "0", "--data-dir", dataDir, "--session-retention", "30x"]);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain("--session-retention");
    expect(flag.stderr).toContain('"30x"');
    const env = await runCli(["serve", "--port", "0", "--data-dir", dataDir], { env: { PAI_SESSION_RETENTION: "a month" } });
    expect(env.code).toBe(2);
    expect(env.stderr).toContain("--session-retention");
    removeDir(dataDir);
  });
});
