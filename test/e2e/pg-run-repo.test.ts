// The Postgres run repository (src/store/pg/run-repo.ts) against a real Postgres (test/pg.ts), with
// two SQL clients standing in for two replicas: what one writes the other reads, and the races the
// repository exists for (one delivery, two webhooks; one Pending session, two claimers; one lost
// replica, two reapers; one agent's names, two allocators) are run for real, with assertions on
// the outcome rather than on timing.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { migrations } from "../../db/migrations-pg/index";
import type { AgentSpec } from "../../src/domain/agent";
import type { Session, SessionEvent } from "../../src/domain/session";
import { createPgRunRepo, type PgRunRepo } from "../../src/store/pg/run-repo";
import { HAVE_POSTGRES, startPostgres, warnSkippedWithoutPostgres, type TestPostgres } from "../pg";

warnSkippedWithoutPostgres("test/e2e/pg-run-repo.test.ts (the Postgres run repository: claims, deliveries, reaping, LISTEN)");

const NOW = "2026-01-02T03:04:05.000Z";

function session(namespace: string, name: string, agent: string, extra: Partial<Session> & { limit?: number } = {}): Session {
  const { limit, ...rest } = extra;
  const spec: AgentSpec = { models: ["pai/echo"], system: "be brief", ...(limit !== undefined ? { maxConcurrentSessions: limit } : {}) };
  return {
    name,
    namespace,
    uid: `uid-${namespace}-${name}`,
    agentDefinition: agent,
    generation: 1,
    spec,
    title: `title of ${name}`,
    env: [],
    origin: { kind: "api" },
    phase: "Pending",
    response: null,
    error: null,
    callbackUrl: null,
    callbackState: null,
    createdAt: NOW,
    startedAt: null,
    finishedAt: null,
    usage: null,
    ...rest,
  };
}

/** Waits until `cond()` holds, at most `ms`; fails with `what` otherwise. */
async function until(cond: () => boolean, what: string, ms = 10_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await Bun.sleep(10);
  }
}

const names = (ss: Session[]) => ss.map((s) => s.name);

describe.skipIf(!HAVE_POSTGRES)("Postgres run repository (real Postgres, two clients)", () => {
  let pg: TestPostgres;
  let sqlA: SQL;
  let sqlB: SQL;
  let a: PgRunRepo;
  let b: PgRunRepo;

  beforeAll(async () => {
    pg = await startPostgres();
    sqlA = new SQL(pg.url);
    sqlB = new SQL(pg.url);
    a = createPgRunRepo(sqlA);
    b = createPgRunRepo(sqlB);
    await a.migrate();
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    pg?.stop();
  });
  beforeEach(async () => {
    // Claims and reaping see every namespace: each test starts from empty tables.
    await sqlA`TRUNCATE sessions, session_events, webhook_deliveries, replicas, session_names, access_tokens`;
  });

  test("migrate: two replicas at once on a new database apply every migration once; again changes nothing; seq continues past rows given one", async () => {
    await sqlA`CREATE DATABASE migrate_race`;
    const url = pg.url.replace(/\/postgres$/, "/migrate_race");
    const [x, y] = [createPgRunRepo(new SQL(url)), createPgRunRepo(new SQL(url))];
    try {
      await Promise.all([x.migrate(), y.migrate(), x.migrate()]);
      await y.migrate();
      const sql = new SQL(url);
      try {
        const applied = await sql`SELECT hash FROM drizzle.__drizzle_migrations`;
        expect(applied.length).toBe(migrations.length);
        const tables = await sql`SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('replicas', 'session_names')`;
        expect(tables.map((r: { tablename: string }) => r.tablename).sort()).toEqual(["replicas", "session_names"]);
        const [owner] = await sql`SELECT is_nullable FROM information_schema.columns WHERE table_name = 'sessions' AND column_name = 'owner'`;
        expect(owner.is_nullable).toBe("YES");

        expect(await x.insertSession(session("imp", "first", "x"), [])).toEqual({ created: true, seq: 1 });
        // A row given seq 1000 by other means: after migrate, new sessions come after it.
        await sql`INSERT INTO sessions (namespace, name, uid, agent_definition, generation, spec, title, env, origin, phase, seq, created_at)
                  VALUES ('imp', 'old', 'u', 'x', 1, '{}', 't', '[]', '{}', 'Complete', 1000, ${NOW})`;
        await y.migrate();
        expect(await x.insertSession(session("imp", "new", "x"), [])).toEqual({ created: true, seq: 1001 });
        // And a migrate with nothing to move leaves the sequence alone.
        await y.migrate();
        expect(await y.insertSession(session("imp", "newer", "x"), [])).toEqual({ created: true, seq: 1002 });
      } finally {
        await sql.close();
      }
    } finally {
      await x.close();
      await y.close();
    }
  });

  test("insertSession round-trips a session as the SQLite store reads it, seq increasing", async () => {
    const full = session("ns1", "s-full", "echo", {
      env: [{ name: "A", value: "1 \"quoted\" ü" }],
      origin: { kind: "webhook", sender: "github", delivery: "d-1", event: "issues" },
      payload: { action: "opened", nested: { list: [1, "two", null] } },
      callbackUrl: "https://example.test/cb",
      callbackState: "pending",
      limit: 3,
    });
    const plain = session("ns1", "s-plain", "echo");
    const nullPayload = session("ns1", "s-null", "echo", { payload: null });
    const r1 = await a.insertSession(full, []);
    const r2 = await b.insertSession(plain, []);
    const r3 = await a.insertSession(nullPayload, []);
    if (!r1.created || !r2.created || !r3.created) throw new Error("not created");
    expect(r2.seq).toBeGreaterThan(r1.seq);
    expect(r3.seq).toBeGreaterThan(r2.seq);

    expect(await b.get("ns1", "s-full")).toEqual(full);
    const gotPlain = await b.get("ns1", "s-plain");
    expect(gotPlain).toEqual(plain);
    expect("payload" in gotPlain! && gotPlain!.payload !== undefined).toBe(false);
    // A JSON null payload reads as none, as rowToSession in src/store/sessions.ts does.
    expect((await a.get("ns1", "s-null"))!.payload).toBeUndefined();
    expect(await a.get("ns1", "nope")).toBeUndefined();
    // Key order of the spec is kept (TEXT, not jsonb).
    const [raw] = await sqlA`SELECT spec FROM sessions WHERE name = 's-full'`;
    expect(raw.spec).toBe(JSON.stringify(full.spec));
  });

  test("insertSession with delivery keys: a taken key inserts nothing and names the session it points to", async () => {
    const first = session("ns1", "s-1", "hook", { origin: { kind: "webhook", delivery: "d-1" } });
    expect((await a.insertSession(first, ["d-1"])).created).toBe(true);
    expect(await b.findDelivery("ns1", "hook", "d-1")).toBe("s-1");
    expect(await b.findDelivery("ns1", "other-agent", "d-1")).toBeUndefined();

    expect(await b.insertSession(session("ns1", "s-2", "hook"), ["d-1"])).toEqual({ created: false, existing: "s-1" });
    expect(await a.get("ns1", "s-2")).toBeUndefined();

    // Several keys: one taken, so neither the session nor the other key goes in.
    expect(await a.insertSession(session("ns1", "s-3", "hook"), ["d-new", "d-1"])).toEqual({ created: false, existing: "s-1" });
    expect(await a.get("ns1", "s-3")).toBeUndefined();
    expect(await a.findDelivery("ns1", "hook", "d-new")).toBeUndefined();

    // All new: all in, each pointing to the session; a key given twice counts once.
    expect((await a.insertSession(session("ns1", "s-4", "hook"), ["d-4a", "d-4b", "d-4a"])).created).toBe(true);
    expect(await b.findDelivery("ns1", "hook", "d-4a")).toBe("s-4");
    expect(await b.findDelivery("ns1", "hook", "d-4b")).toBe("s-4");
    // The same key for another agent is another delivery.
    expect((await b.insertSession(session("ns1", "s-5", "other"), ["d-1"])).created).toBe(true);
  });

  test("insertSession: the same delivery racing from two clients creates exactly once, the other gets the winner", async () => {
    for (let i = 0; i < 25; i++) {
      // Alternate one key (no transaction) and two keys (a transaction).
      const keys = i % 2 === 0 ? [`race-${i}`] : [`race-${i}`, `race-${i}-b`];
      const [ra, rb] = await Promise.all([
        a.insertSession(session("ns1", `a-${i}`, "hook"), keys),
        b.insertSession(session("ns1", `b-${i}`, "hook"), [...keys].reverse()),
      ]);
      const created = [ra, rb].filter((r) => r.created);
      expect(created.length).toBe(1);
      const winner = ra.created ? `a-${i}` : `b-${i}`;
      const loser = ra.created ? rb : ra;
      expect(loser).toEqual({ created: false, existing: winner });
      expect(await a.get("ns1", ra.created ? `b-${i}` : `a-${i}`)).toBeUndefined();
      for (const k of keys) expect(await a.findDelivery("ns1", "hook", k)).toBe(winner);
    }
    const [n] = await sqlA`SELECT count(*)::int AS n FROM sessions WHERE namespace = 'ns1'`;
    expect(n.n).toBe(25);
  });

  test("allocateNames: blocks follow each other, and racing clients get disjoint blocks", async () => {
    expect(await a.allocateNames("ns1", "echo", 5)).toBe(1);
    expect(await b.allocateNames("ns1", "echo", 3)).toBe(6);
    expect(await a.allocateNames("ns1", "other", 2)).toBe(1);
    expect(await a.allocateNames("ns2", "echo", 1)).toBe(1);
    await expect(a.allocateNames("ns1", "echo", 0)).rejects.toThrow(RangeError);

    const sizes = Array.from({ length: 40 }, (_, i) => 1 + (i % 7));
    const firsts = await Promise.all(sizes.map((n, i) => (i % 2 ? a : b).allocateNames("ns1", "race", n)));
    const taken = new Set<number>();
    firsts.forEach((first, i) => {
      for (let k = first; k < first + sizes[i]!; k++) {
        expect(taken.has(k)).toBe(false);
        taken.add(k);
      }
    });
    const total = sizes.reduce((x, y) => x + y, 0);
    expect([...taken].sort((x, y) => x - y)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  });

  test("counts, list and page: newest first by seq, one namespace or all, pages without gaps or repeats", async () => {
    const order: string[] = [];
    for (let i = 0; i < 12; i++) {
      const ns = ["n-a", "n-b", "n-c"][i % 3]!;
      const agent = i % 2 ? "odd" : "even";
      await (i % 2 ? a : b).insertSession(session(ns, `s-${String(i).padStart(2, "0")}`, agent), []);
      order.push(`s-${String(i).padStart(2, "0")}`);
    }
    await a.update("n-a", "s-00", { phase: "Running" });
    expect(await b.countPending()).toBe(11);
    expect(await b.countPendingOf("n-a", "even")).toBe(1); // s-06; s-00 runs
    expect(await b.countPendingOf("n-b", "odd")).toBe(2); // s-01, s-07
    expect(await b.countPendingOf("n-b", "nobody")).toBe(0);

    const newest = [...order].reverse();
    expect(names(await b.list(undefined, 5))).toEqual(newest.slice(0, 5));
    expect(names(await b.list(undefined, 100))).toEqual(newest);
    expect(names(await b.list("n-b", 10))).toEqual(["s-10", "s-07", "s-04", "s-01"]);
    expect(await b.list("empty", 10)).toEqual([]);

    for (const ns of [undefined, "n-c"]) {
      const seen: string[] = [];
      let before: number | undefined;
      for (let pages = 0; pages < 20; pages++) {
        const p = await a.page(ns, 2, before);
        if (p.length === 0) break;
        for (let i = 1; i < p.length; i++) expect(p[i]!.seq).toBeLessThan(p[i - 1]!.seq);
        seen.push(...p.map((x) => x.session.name));
        before = p[p.length - 1]!.seq;
      }
      const want = ns ? newest.filter((n) => Number(n.slice(2)) % 3 === 2) : newest;
      expect(seen).toEqual(want);
    }
  });

  test("events: one multi-row insert over sessions; order, after, type and limit; lastEventId", async () => {
    await a.insertSession(session("ns1", "e-1", "echo"), []);
    await a.insertSession(session("ns2", "e-2", "echo"), []);
    const ev = (id: number, type: string, content: unknown): SessionEvent => ({ id, type, content, timestamp: `${NOW.slice(0, -5)}${String(id).padStart(3, "0")}Z` });
    // Given out of id order: reads come back by id.
    await a.appendEvents([
      { namespace: "ns1", session: "e-1", event: ev(2, "agent.message", { text: "hi, \"you\" {}" }) },
      { namespace: "ns1", session: "e-1", event: ev(1, "session.status_running", {}) },
      { namespace: "ns2", session: "e-2", event: ev(1, "session.status_running", null) },
      { namespace: "ns1", session: "e-1", event: ev(3, "agent.message", "plain text") },
      { namespace: "ns1", session: "e-1", event: ev(4, "session.status_closed", [1, 2]) },
    ]);
    await a.appendEvents([]);
    const all = await b.events("ns1", "e-1");
    expect(all.map((e) => e.id)).toEqual([1, 2, 3, 4]);
    expect(all[1]).toEqual(ev(2, "agent.message", { text: "hi, \"you\" {}" }));
    expect(all[2]!.content).toBe("plain text");
    expect(all[3]!.content).toEqual([1, 2]);
    expect((await b.events("ns2", "e-2"))[0]!.content).toBeNull();
    expect((await b.events("ns1", "e-1", { after: 2 })).map((e) => e.id)).toEqual([3, 4]);
    expect((await b.events("ns1", "e-1", { limit: 2 })).map((e) => e.id)).toEqual([1, 2]);
    expect((await b.events("ns1", "e-1", { type: "agent.message" })).map((e) => e.id)).toEqual([2, 3]);
    expect((await b.events("ns1", "e-1", { type: "agent.message", after: 2 })).map((e) => e.id)).toEqual([3]);
    expect((await b.events("ns1", "e-1", { type: "agent.message", limit: 1 })).map((e) => e.id)).toEqual([2]);
    expect(await b.lastEventId("ns1", "e-1")).toBe(4);
    expect(await b.lastEventId("ns2", "e-2")).toBe(1);
    expect(await b.lastEventId("ns1", "none")).toBe(0);
    // A duplicate id is refused, and the statement inserts none of its rows.
    await expect(a.appendEvents([
      { namespace: "ns2", session: "e-2", event: ev(2, "x", 1) },
      { namespace: "ns1", session: "e-1", event: ev(4, "x", 1) },
    ])).rejects.toThrow();
    expect(await b.lastEventId("ns2", "e-2")).toBe(1);
  });

  test("claim: oldest seq first across agents and namespaces, sets Running, owner and startedAt; runningOf", async () => {
    const agents = ["x", "y", "z"];
    for (let i = 0; i < 9; i++) await a.insertSession(session(i % 2 ? "n-1" : "n-2", `c-${i}`, agents[i % 3]!), []);
    const first = await b.claim("replica-b", 4, "2026-01-02T04:00:00.000Z");
    expect(names(first)).toEqual(["c-0", "c-1", "c-2", "c-3"]);
    for (const s of first) {
      expect(s.phase).toBe("Running");
      expect(s.startedAt).toBe("2026-01-02T04:00:00.000Z");
    }
    const [o] = await sqlA`SELECT owner FROM sessions WHERE name = 'c-2'`;
    expect(o.owner).toBe("replica-b");
    expect(names(await a.claim("replica-a", 2, NOW))).toEqual(["c-4", "c-5"]);
    expect(names(await a.claim("replica-a", 0, NOW))).toEqual([]);
    expect(names(await b.runningOf("replica-b"))).toEqual(["c-0", "c-1", "c-2", "c-3"]);
    expect(names(await b.runningOf("replica-a"))).toEqual(["c-4", "c-5"]);
    expect(names(await b.claim("replica-b", 10, NOW))).toEqual(["c-6", "c-7", "c-8"]);
    expect(await b.claim("replica-b", 10, NOW)).toEqual([]);
    expect(await a.countPending()).toBe(0);
  });

  test("claim: two clients claiming 200 sessions at once get disjoint sets whose union is all", async () => {
    const all: string[] = [];
    const batch: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      const name = `p-${i}`;
      all.push(name);
      batch.push((i % 2 ? a : b).insertSession(session(`ns-${i % 3}`, name, `agent-${i % 5}`), []));
    }
    await Promise.all(batch);
    const got = { a: [] as string[], b: [] as string[] };
    const claimer = async (repo: PgRunRepo, owner: "a" | "b") => {
      for (let rounds = 0; rounds < 500; rounds++) {
        const claimed = await repo.claim(owner, 7, NOW);
        got[owner].push(...names(claimed));
        if (claimed.length === 0 && (await repo.countPending()) === 0) return;
      }
      throw new Error("claims did not drain the backlog in 500 rounds");
    };
    await Promise.all([claimer(a, "a"), claimer(b, "b"), claimer(a, "a"), claimer(b, "b")]);
    const both = [...got.a, ...got.b];
    expect(new Set(both).size).toBe(both.length);
    expect(both.sort()).toEqual(all.sort());
    expect(got.a.length).toBeGreaterThan(0);
    expect(got.b.length).toBeGreaterThan(0);
    // Who claimed a session is its owner.
    const owners: { name: string; owner: string }[] = await sqlA`SELECT name, owner FROM sessions`;
    for (const r of owners) expect(got[r.owner as "a" | "b"]).toContain(r.name);
  });

  test("claim: maxConcurrentSessions holds within one call, FIFO within the agent, and across racing clients", async () => {
    for (let i = 0; i < 4; i++) await a.insertSession(session("ns1", `two-${i}`, "two", { limit: 2 }), []);
    await a.insertSession(session("ns1", "free-0", "free"), []);
    // Within one call: two of the limited agent (those claimed earlier in the call count), the rest of others.
    expect(names(await a.claim("a", 10, NOW))).toEqual(["two-0", "two-1", "free-0"]);
    expect(await a.claim("b", 10, NOW)).toEqual([]);
    await a.update("ns1", "two-0", { phase: "Complete", finishedAt: NOW });
    expect(names(await b.claim("b", 10, NOW))).toEqual(["two-2"]);

    // An agent gaining a limit: its older sessions without one count toward it.
    await sqlA`TRUNCATE sessions CASCADE`;
    await a.insertSession(session("ns1", "g-0", "grow"), []);
    await a.insertSession(session("ns1", "g-1", "grow"), []);
    await a.insertSession(session("ns1", "g-2", "grow", { limit: 2 }), []);
    await a.insertSession(session("ns1", "g-3", "grow"), []);
    // g-2 would be the third Running; FIFO: g-3 waits behind it.
    expect(names(await a.claim("a", 10, NOW))).toEqual(["g-0", "g-1"]);

    // Limit 1, two claimers racing, round after round: never two Running.
    await sqlA`TRUNCATE sessions CASCADE`;
    const n = 12;
    for (let i = 0; i < n; i++) await a.insertSession(session("ns1", `one-${String(i).padStart(2, "0")}`, "one", { limit: 1 }), []);
    for (let i = 0; i < 6; i++) await b.insertSession(session("ns2", `other-${i}`, "other"), []);
    const order: string[] = [];
    for (let round = 0; round < 100 && order.length < n; round++) {
      const claims = await Promise.all([a.claim("a", 3, NOW), b.claim("b", 3, NOW), a.claim("a", 3, NOW), b.claim("b", 3, NOW)]);
      const ones = claims.flat().filter((s) => s.agentDefinition === "one");
      expect(ones.length).toBeLessThanOrEqual(1);
      const [r] = await sqlA`SELECT count(*)::int AS n FROM sessions WHERE agent_definition = 'one' AND phase = 'Running'`;
      expect(r.n).toBeLessThanOrEqual(1);
      for (const s of ones) {
        order.push(s.name);
        await b.update(s.namespace, s.name, { phase: "Complete", finishedAt: NOW });
      }
    }
    // All ran, one at a time, in FIFO order.
    expect(order).toEqual(Array.from({ length: n }, (_, i) => `one-${String(i).padStart(2, "0")}`));
    expect(await a.countPendingOf("ns2", "other")).toBe(0);
  });

  test("update, finishIfPending and pendingCallbacks", async () => {
    await a.insertSession(session("ns1", "u-1", "echo", { callbackUrl: "https://cb.test/", callbackState: "pending" }), []);
    await a.insertSession(session("ns1", "u-2", "echo"), []);
    await b.update("ns1", "u-1", { phase: "Running", startedAt: NOW });
    let s = (await a.get("ns1", "u-1"))!;
    expect([s.phase, s.startedAt, s.response, s.callbackState]).toEqual(["Running", NOW, null, "pending"]);
    expect(await a.pendingCallbacks()).toEqual([]);

    const usage = { inputTokens: 3, outputTokens: 4, byModel: { "pai/echo": { inputTokens: 3, outputTokens: 4 } } };
    await b.update("ns1", "u-1", { phase: "Complete", response: "done", finishedAt: "2026-01-02T05:00:00.000Z", usage, startedAt: undefined });
    s = (await a.get("ns1", "u-1"))!;
    expect([s.phase, s.response, s.finishedAt, s.startedAt, s.error]).toEqual(["Complete", "done", "2026-01-02T05:00:00.000Z", NOW, null]);
    expect(s.usage).toEqual(usage);
    expect(names(await a.pendingCallbacks())).toEqual(["u-1"]);
    await b.update("ns1", "u-1", { callbackState: "delivered", response: null, usage: null });
    s = (await a.get("ns1", "u-1"))!;
    expect([s.callbackState, s.response, s.usage, s.phase]).toEqual(["delivered", null, null, "Complete"]);
    expect(await a.pendingCallbacks()).toEqual([]);
    await b.update("ns1", "u-1", {});

    // Only a Pending session is ended by finishIfPending.
    expect(await a.finishIfPending("ns1", "u-2", { phase: "Cancelled", error: "cancelled", finishedAt: NOW })).toBe(true);
    s = (await b.get("ns1", "u-2"))!;
    expect([s.phase, s.error, s.finishedAt]).toEqual(["Cancelled", "cancelled", NOW]);
    expect(await a.finishIfPending("ns1", "u-2", { phase: "Cancelled", error: null, finishedAt: NOW })).toBe(false);
    expect(await a.finishIfPending("ns1", "u-1", { phase: "Cancelled", error: null, finishedAt: NOW })).toBe(false);
    expect(await a.finishIfPending("ns1", "missing", { phase: "Cancelled", error: null, finishedAt: NOW })).toBe(false);
    // A claim and a cancel of the same session at once: exactly one wins.
    for (let i = 0; i < 10; i++) {
      await a.insertSession(session("ns1", `cc-${i}`, "cc"), []);
      const [claimed, cancelled] = await Promise.all([a.claim("a", 1, NOW), b.finishIfPending("ns1", `cc-${i}`, { phase: "Cancelled", error: null, finishedAt: NOW })]);
      expect(claimed.length + (cancelled ? 1 : 0)).toBe(1);
      expect((await a.get("ns1", `cc-${i}`))!.phase).toBe(cancelled ? "Cancelled" : "Running");
    }
  });

  test("heartbeat and reapLost: only sessions of expired or unknown owners, never to two reapers, old replicas forgotten", async () => {
    const now = 1_000_000_000;
    await a.heartbeat("alive", now - 1_000, "t-alive");
    await a.heartbeat("dead", now - 60_000, "t-dead-1");
    await b.heartbeat("dead", now - 20_000, "t-dead-2"); // upsert: the newer heartbeat (still expired)
    await a.heartbeat("ancient", now - 1_000_000, "t-ancient");
    const [dead] = await sqlA`SELECT heartbeat_at, started_at FROM replicas WHERE id = 'dead'`;
    expect([Number(dead.heartbeat_at), dead.started_at]).toEqual([now - 20_000, "t-dead-2"]);

    for (const [name, owner] of [["r-alive", "alive"], ["r-dead", "dead"], ["r-ghost", "ghost"], ["r-ancient", "ancient"]] as const) {
      await a.insertSession(session("ns1", name, "echo"), []);
      await a.claim(owner, 1, NOW);
    }
    await a.insertSession(session("ns1", "r-pending", "echo"), []);
    const reaped = await b.reapLost(now, 10_000, "2026-01-02T06:00:00.000Z");
    expect(names(reaped)).toEqual(["r-dead", "r-ghost", "r-ancient"]);
    for (const s of reaped) expect([s.phase, s.error, s.finishedAt]).toEqual(["Error", "replica lost", "2026-01-02T06:00:00.000Z"]);
    expect((await a.get("ns1", "r-alive"))!.phase).toBe("Running");
    expect((await a.get("ns1", "r-pending"))!.phase).toBe("Pending");
    expect(await a.reapLost(now, 10_000, NOW)).toEqual([]);
    // Older than 10 × expiry: forgotten; merely expired: kept.
    const ids = await sqlA`SELECT id FROM replicas ORDER BY id`;
    expect(ids.map((r: { id: string }) => r.id)).toEqual(["alive", "dead"]);

    // Two reapers at once over 60 lost sessions: disjoint, all taken.
    await sqlA`TRUNCATE sessions CASCADE`;
    const batch: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i++) batch.push(a.insertSession(session("ns1", `l-${i}`, `ag-${i % 4}`), []));
    await Promise.all(batch);
    while ((await a.claim("dead", 25, NOW)).length > 0);
    const [ra, rb, rc] = await Promise.all([a.reapLost(now, 10_000, NOW), b.reapLost(now, 10_000, NOW), a.reapLost(now, 10_000, NOW)]);
    const all = [...names(ra!), ...names(rb!), ...names(rc!)];
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBe(60);
  });

  test("tokens: insert, all, byHash, delete by namespace, deleteAdmin", async () => {
    const admin = { id: "t-admin", namespace: null, name: "admin", hash: "a".repeat(64), createdAt: "2026-01-01T00:00:00.000Z" };
    const t1 = { id: "t-1", namespace: "ns1", name: "ci", hash: "b".repeat(64), createdAt: "2026-01-01T00:00:01.000Z" };
    const t2 = { id: "t-2", namespace: "ns2", name: "ops", hash: "c".repeat(64), createdAt: "2026-01-01T00:00:02.000Z" };
    for (const t of [t2, admin, t1]) await a.tokens.insert(t);
    expect(await b.tokens.all()).toEqual([admin, t1, t2]);
    expect(await b.tokens.byHash("b".repeat(64))).toEqual(t1);
    expect(await b.tokens.byHash("d".repeat(64))).toBeUndefined();
    // The hash is unique.
    await expect(a.tokens.insert({ ...t1, id: "t-dup" })).rejects.toThrow();
    expect(await b.tokens.delete("ns2", "t-1")).toBe(false); // another namespace's token
    expect(await b.tokens.delete("ns1", "t-1")).toBe(true);
    expect(await b.tokens.delete("ns1", "t-1")).toBe(false);
    expect(await a.tokens.deleteAdmin("t-2")).toBe(false); // not an admin token
    expect(await a.tokens.deleteAdmin("t-admin")).toBe(true);
    await a.tokens.insert({ ...admin, id: "t-admin-2" });
    expect(await a.tokens.deleteAdmin()).toBe(true);
    expect(await a.tokens.all()).toEqual([t2]);
  });

  test("NOTIFY from one client reaches LISTEN on the other; unlisten stops it; payload limit", async () => {
    const got: string[] = [];
    const sentinel: string[] = [];
    const stop = await b.listen("pai_test", (p) => got.push(p));
    const stopSentinel = await b.listen("pai_sentinel", (p) => sentinel.push(p));
    await a.notify("pai_test", "one");
    await a.notify("pai_test", JSON.stringify({ session: "s-1", ü: true }));
    await until(() => got.length === 2, "two notifications");
    expect(got).toEqual(["one", JSON.stringify({ session: "s-1", ü: true })]);

    await stop();
    await a.notify("pai_test", "after unlisten");
    await a.notify("pai_sentinel", "done");
    // Notifications reach a listener in commit order: once the later one is here, the earlier would be.
    await until(() => sentinel.length === 1, "the sentinel");
    expect(got.length).toBe(2);
    await stopSentinel();
    await stop(); // twice is harmless

    await expect(a.notify("pai_test", "x".repeat(8000))).rejects.toThrow(RangeError);
    await a.notify("pai_test", "x".repeat(7999));
  });

  test("LISTEN survives its connection being terminated: reconnects, onReconnect runs, later notifications arrive", async () => {
    const got: string[] = [];
    let reconnects = 0;
    const stop = await b.listen("pai_reconnect", (p) => got.push(p), () => reconnects++);
    await a.notify("pai_reconnect", "before");
    await until(() => got.length === 1, "the first notification");
    expect(reconnects).toBe(0);

    const backends: { pid: number }[] = await sqlA`SELECT pid FROM pg_stat_activity WHERE query = 'LISTEN "pai_reconnect"'`;
    expect(backends.length).toBe(1);
    const [t] = await sqlA`SELECT pg_terminate_backend(${backends[0]!.pid}::int) AS ok`;
    expect(t.ok).toBe(true);
    await until(() => reconnects === 1, "onReconnect after the listen connection was terminated");

    await a.notify("pai_reconnect", "after");
    await until(() => got.length === 2, "a notification after the reconnect");
    expect(got).toEqual(["before", "after"]);
    const again: { pid: number }[] = await sqlA`SELECT pid FROM pg_stat_activity WHERE query = 'LISTEN "pai_reconnect"'`;
    expect(again.length).toBe(1);
    expect(again[0]!.pid).not.toBe(backends[0]!.pid);
    await stop();
  });
});
