/**
 * The delivery log of a real `pai serve` over HTTP: webhook requests to an existing agent are
 * recorded with their answer (accepted, waited for, sent again, refused for each reason), those to
 * unknown agents are not; a spam of bad tokens records a bounded number of entries and leaves the
 * server healthy; an agent keeps its newest 1000 entries; namespace tokens read their own
 * namespace's log only; `pai get deliveries`; and retention removes old entries.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { hang, startModelServer, type FakeModelServer } from "../fakes/model-server";
import { eventually, removeDir, startServer, type TestServer } from "../helpers";
import { checkClosed } from "../openapi-check";
import { DeliveryList, type DeliveryObject } from "../../src/api/openapi/schemas";

type Delivery = DeliveryObject;

const agent = (name: string, spec: Record<string, unknown>, namespace = "default") => ({ apiVersion: "pai.io/v1", kind: "Agent", metadata: { name, namespace }, spec });
const AGENTS = (ns: string) => `/apis/pai.io/v1/namespaces/${ns}/agents`;

async function apply(server: TestServer, name: string, spec: Record<string, unknown>, ns = "default"): Promise<string> {
  const res = await server.api(`${AGENTS(ns)}/${name}`, { method: "PUT", json: agent(name, spec, ns) });
  expect(res.status).toBeLessThan(300);
  return eventually(async () => {
    const a = (await (await server.api(`${AGENTS(ns)}/${name}`)).json()) as { status: { webhookUrl?: string } };
    return a.status.webhookUrl?.replace(/^http:\/\/localhost:\d+/, server.url);
  }, 5000, `webhook URL of ${name}`);
}

/** Every entry of an agent's log, newest first, page by page. */
async function deliveries(server: TestServer, name: string, ns = "default", token = server.token): Promise<Delivery[]> {
  const out: Delivery[] = [];
  let next = "";
  for (let pages = 0; pages < 20; pages++) {
    const res = await fetch(`${server.url}${AGENTS(ns)}/${name}/deliveries?limit=500${next ? `&continue=${next}` : ""}`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { kind: string; metadata: { continue?: string }; items: Delivery[] };
    expect(body.kind).toBe("DeliveryList");
    // Every answer fits the documented schema (closed: no field it does not name).
    expect(checkClosed(DeliveryList, body)).toEqual([]);
    out.push(...body.items);
    if (!body.metadata.continue) return out;
    next = body.metadata.continue;
  }
  throw new Error("more than 20 pages");
}

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: typeof body === "string" ? body : JSON.stringify(body) });
const wrongToken = (url: string) => url.replace(/[0-9a-f]{64}$/, "0".repeat(64));

describe("the delivery log (SQLite)", () => {
  let server: TestServer;
  let models: FakeModelServer;
  const urls: Record<string, string> = {};

  beforeAll(async () => {
    models = startModelServer();
    models.script((m) => (m === "claude-busy" ? hang : undefined));
    server = await startServer({ env: { ANTHROPIC_API_KEY: "k", ANTHROPIC_BASE_URL: models.anthropicBaseUrl } });
    urls.echo = await apply(server, "echo", { models: ["pai/echo"], triggers: [{ webhook: {} }] });
    urls.fenced = await apply(server, "fenced", { models: ["pai/echo"], triggers: [{ webhook: { allowCIDRs: ["10.0.0.0/8"] } }] });
    urls.busy = await apply(server, "busy", { models: ["anthropic/claude-busy"], maxConcurrentSessions: 1, triggers: [{ webhook: { maxPending: 1 } }] });
    urls.spammed = await apply(server, "spammed", { models: ["pai/echo"], triggers: [{ webhook: {} }] });
    urls.pinged = await apply(server, "pinged", { models: ["pai/echo"], triggers: [{ webhook: {} }] });
    urls.team = await apply(server, "helper", { models: ["pai/echo"], triggers: [{ webhook: {} }] }, "team");
  });
  afterAll(async () => {
    for (const name of ["busy"]) {
      const list = (await (await server.api("/apis/pai.io/v1/namespaces/default/sessions")).json()) as { items: { session: string; agentDefinition: string; phase: string }[] };
      for (const s of list.items.filter((s) => s.agentDefinition === name && (s.phase === "Running" || s.phase === "Pending"))) await server.cli(["cancel", s.session]);
    }
    await server.stop();
    await models.stop();
    removeDir(server.dataDir);
  });

  test("accepted deliveries: code 200 with their session; a GitHub one with its sender, event and delivery id; a waited one", async () => {
    const plain = (await (await post(urls.echo!, { title: "plain" })).json()) as { session: string };
    const github = await post(urls.echo!, { action: "opened", issue: { number: 1, title: "Bug" } }, { "x-github-event": "issues", "x-github-delivery": "gh-1" });
    expect(github.status).toBe(200);
    const gh = (await github.json()) as { session: string };
    const waited = (await (await post(urls.echo!, { title: "wait for me", wait: 20 })).json()) as { session: string; phase: string };
    expect(waited.phase).toBe("Complete");
    const log = await deliveries(server, "echo");
    expect(log.slice(0, 3)).toEqual([
      { time: expect.any(String), sender: "generic", code: 200, session: waited.session },
      { time: expect.any(String), sender: "github", event: "issues", delivery: "gh-1", code: 200, session: gh.session },
      { time: expect.any(String), sender: "generic", code: 200, session: plain.session },
    ]);
    // ISO times, newest first.
    for (const d of log) expect(new Date(d.time).toISOString()).toBe(d.time);
    expect([...log.map((d) => d.time)].sort().reverse()).toEqual(log.map((d) => d.time));
  });

  test("a delivery sent again is recorded again, with the session the first one started", async () => {
    const first = (await (await post(urls.echo!, { title: "once" }, { "idempotency-key": "retry-me" })).json()) as { session: string };
    const again = (await (await post(urls.echo!, { title: "once" }, { "idempotency-key": "retry-me" })).json()) as { session: string };
    expect(again.session).toBe(first.session);
    const mine = (await deliveries(server, "echo")).filter((d) => d.delivery === "retry-me");
    expect(mine).toEqual([
      { time: expect.any(String), sender: "generic", delivery: "retry-me", code: 200, session: first.session },
      { time: expect.any(String), sender: "generic", delivery: "retry-me", code: 200, session: first.session },
    ]);
  });

  test("refused deliveries are recorded with their code and the reason the caller got: 401, 400, 415, 413, 403, 429", async () => {
    const expectations: [Response, number][] = [
      [await post(wrongToken(urls.echo!), { title: "x" }, { "idempotency-key": "bad-token" }), 401],
      [await post(urls.echo!, '{"title": '), 400],
      [await post(urls.echo!, "<title>x</title>", { "content-type": "application/xml" }), 415],
      [await post(urls.echo!, { title: "x".repeat(1024 * 1024 + 10) }), 413],
      [await post(urls.fenced!, { title: "x" }), 403],
    ];
    const answers: string[] = [];
    for (const [res, code] of expectations) {
      expect(res.status).toBe(code);
      answers.push(((await res.json()) as { message: string }).message);
    }
    const refused = (await deliveries(server, "echo")).filter((d) => d.code >= 400);
    expect(refused.map((d) => [d.code, d.reason])).toEqual([
      [413, answers[3]],
      [415, answers[2]],
      [400, answers[1]],
      [401, "invalid webhook token"],
    ]);
    expect(refused.at(-1)).toEqual({ time: expect.any(String), sender: "generic", delivery: "bad-token", code: 401, reason: "invalid webhook token" });
    expect(refused.every((d) => d.session === undefined)).toBe(true);
    expect(await deliveries(server, "fenced")).toEqual([{ time: expect.any(String), sender: "generic", code: 403, reason: answers[4]! }]);
    expect(answers[4]).toContain("allowCIDRs");

    // Back-pressure: a session runs, one waits, the third is refused 429.
    const runs = (await (await post(urls.busy!, { title: "runs" })).json()) as { session: string };
    await eventually(async () => ((await (await server.api(`/agents/${runs.session}?namespace=default`)).json()) as { phase: string }).phase === "Running", 10_000, "the busy session Running");
    expect((await post(urls.busy!, { title: "waits" })).status).toBe(200);
    const third = await post(urls.busy!, { title: "refused" });
    expect(third.status).toBe(429);
    const busy = await deliveries(server, "busy");
    expect(busy.map((d) => d.code)).toEqual([429, 200, 200]);
    expect(busy[0]!.reason).toBe(((await third.json()) as { message: string }).message);
  });

  test("requests to unknown agents are not recorded", async () => {
    const before = countRows(server);
    const ghost = urls.echo!.replace("/echo/", "/ghost/");
    for (let i = 0; i < 20; i++) expect((await post(ghost, { title: "x" })).status).toBe(404);
    expect((await server.api(`${AGENTS("default")}/ghost/deliveries`)).status).toBe(404);
    // Reads write the queue first: read one agent's log, then count the table.
    await deliveries(server, "echo");
    expect(countRows(server)).toBe(before);
    expect(countRows(server, "agent = 'ghost'")).toBe(0);
  });

  test("a spam of bad tokens: a bounded number of entries, one of them counting the rest; the server stays healthy and accepts good deliveries", async () => {
    const started = Date.now();
    const bad = wrongToken(urls.spammed!);
    let refused = 0;
    for (let round = 0; round < 6; round++) {
      const answers = await Promise.all(Array.from({ length: 100 }, () => post(bad, { title: "spam" }).then((r) => r.status)));
      refused += answers.filter((s) => s === 401).length;
    }
    expect(refused).toBe(600);
    const seconds = Math.ceil((Date.now() - started) / 1000) + 1;
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const good = (await (await post(urls.spammed!, { title: "still served" })).json()) as { session: string };
    // Once the last second of spam is over, its count is recorded too.
    const log = await eventually(async () => {
      const l = await deliveries(server, "spammed");
      const counted = l.filter((d) => /^\d+ more refused deliveries like this one were not recorded/.test(d.reason ?? "")).length;
      const recorded = l.filter((d) => d.code === 401 && d.reason === "invalid webhook token").length;
      const total = recorded + l.filter((d) => /more refused/.test(d.reason ?? "")).reduce((n, d) => n + Number(/^(\d+)/.exec(d.reason!)![1]), 0);
      return counted > 0 && total === 600 ? l : undefined;
    }, 5000, "every refused delivery recorded or counted");
    const recorded = log.filter((d) => d.code === 401);
    // At most 20 a second, plus one count per second.
    expect(recorded.length).toBeLessThanOrEqual(21 * seconds);
    expect(recorded.length).toBeLessThan(600);
    expect(log[0]).toMatchObject({ code: 401 });
    expect(log.find((d) => d.code === 200)).toEqual({ time: expect.any(String), sender: "generic", code: 200, session: good.session });
  });

  test("an agent keeps its newest 1000 entries", async () => {
    // Verification pings (GET, valid token) are accepted deliveries too, and cheap to send.
    let sent = 0;
    for (let round = 0; round < 11; round++) {
      const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => fetch(urls.pinged!, { headers: { "idempotency-key": `ping-${round * 100 + i}` } }).then((r) => r.status)));
      sent += answers.filter((s) => s === 200).length;
    }
    expect(sent).toBe(1100);
    const log = await deliveries(server, "pinged");
    expect(log).toHaveLength(1000);
    expect(log.every((d) => d.code === 200 && d.session === undefined)).toBe(true);
    const kept = new Set(log.map((d) => Number(d.delivery!.slice(5))));
    for (let i = 1000; i < 1100; i++) expect(kept.has(i)).toBe(true);
    expect(countRows(server, "agent = 'pinged'")).toBe(1000);
  });

  test("a namespace token reads its own namespace's logs only", async () => {
    await post(urls.team!, { title: "team work" });
    const token = (await server.cli(["create", "token", "-n", "team"])).stdout.trim();
    expect((await deliveries(server, "helper", "team", token)).map((d) => d.code)).toEqual([200]);
    const other = await fetch(`${server.url}${AGENTS("default")}/echo/deliveries`, { headers: { authorization: `Bearer ${token}` } });
    expect(other.status).toBe(403);
    expect((await fetch(`${server.url}${AGENTS("default")}/echo/deliveries`)).status).toBe(401);
    // The agent itself is readable, its webhook URL without the token.
    const a = (await (await fetch(`${server.url}${AGENTS("team")}/helper`, { headers: { authorization: `Bearer ${token}` } })).json()) as { status: { webhookUrl: string } };
    expect(a.status.webhookUrl).toEndWith("/webhooks/team/helper/<hidden: ask an admin>");
    expect(urls.team).not.toContain("<hidden");
  });

  test("pai get deliveries AGENT: TIME SENDER DELIVERY CODE SESSION REASON, newest first; -o json; usage and unknown agents", async () => {
    const r = await server.cli(["get", "deliveries", "fenced"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]!.split(/\s{2,}/)).toEqual(["TIME", "SENDER", "DELIVERY", "CODE", "SESSION", "REASON"]);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+generic\s+<none>\s+403\s+<none>\s+requests from \S+ are not allowed by this agent's allowCIDRs$/);

    const echo = await server.cli(["get", "deliveries", "echo"]);
    const rows = echo.stdout.trimEnd().split("\n").slice(1);
    expect(rows.some((l) => /\sgithub\s+gh-1\s+200\s+echo-wh-[0-9a-f]{8}\s*$/.test(l))).toBe(true);
    expect(rows.some((l) => /\s401\s+<none>\s+invalid webhook token$/.test(l))).toBe(true);

    const json = JSON.parse((await server.cli(["get", "deliveries", "pinged", "-o", "json"])).stdout) as { kind: string; items: Delivery[] };
    expect(json.kind).toBe("DeliveryList");
    expect(json.items).toHaveLength(1000);

    const team = (await server.cli(["get", "deliveries", "helper", "-n", "team"])).stdout.trimEnd().split("\n");
    expect(team).toHaveLength(2);
    expect(team[1]).toMatch(/\s200\s+helper-wh-[0-9a-f]{8}$/);
    const none = await server.cli(["get", "deliveries"]);
    expect(none).toMatchObject({ code: 2, stderr: "error: pai get deliveries needs an agent: pai get deliveries AGENT [-n NS]\n" });
    const ghost = await server.cli(["get", "deliveries", "ghost"]);
    expect(ghost.code).toBe(1);
    expect(ghost.stderr).toContain('agents.pai.io "ghost" not found');
  });
});

describe("retention of the delivery log", () => {
  test("entries older than --session-retention (30d by default) are removed; newer ones stay", async () => {
    const server = await startServer({ env: { PAI_RETENTION_INTERVAL_MS: "100" } });
    try {
      const url = await apply(server, "echo", { models: ["pai/echo"], triggers: [{ webhook: {} }] });
      for (const key of ["old-1", "old-2", "new-3"]) expect((await post(url, { title: key }, { "idempotency-key": key })).status).toBe(200);
      expect((await deliveries(server, "echo")).map((d) => d.delivery)).toEqual(["new-3", "old-2", "old-1"]);
      // Made 31 days ago, as far as the log knows (through a connection of our own to the server's store).
      const db = new Database(join(server.dataDir, "pai.db"));
      try {
        db.exec("PRAGMA busy_timeout = 5000");
        db.run(`UPDATE delivery_log SET time = ?1 WHERE delivery LIKE 'old-%'`, [new Date(Date.now() - 31 * 86_400_000).toISOString()]);
      } finally {
        db.close();
      }
      await eventually(async () => (await deliveries(server, "echo")).length === 1, 5000, "the old entries removed");
      expect((await deliveries(server, "echo")).map((d) => d.delivery)).toEqual(["new-3"]);
    } finally {
      await server.stop();
      removeDir(server.dataDir);
    }
  });
});

function countRows(server: TestServer, where = "1"): number {
  const db = new Database(join(server.dataDir, "pai.db"), { readonly: true });
  try {
    return (db.query(`SELECT count(*) AS n FROM delivery_log WHERE ${where}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}
