// The Postgres dialect's schema against a real Postgres (test/pg.ts): the embedded migrations apply
// through drizzle's migrator over Bun's driver, every table takes and gives back its rows, and every
// index of the SQLite schema exists under the same name with the same partial predicate.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { SQL } from "bun";
import { and, asc, eq, sql as dsql } from "drizzle-orm";
import { drizzle, type BunSQLDatabase } from "drizzle-orm/bun-sql";
import { getTableConfig, SQLiteTable } from "drizzle-orm/sqlite-core";
import { is } from "drizzle-orm";
import { migrations } from "../../db/migrations-pg/index";
import * as lite from "../../src/store/schema.sql";
import { agents, secrets, sessions, sessionEvents, webhookDeliveries, revisions, accessTokens } from "../../src/store/schema.pg";
import { HAVE_POSTGRES, startPostgres, warnSkippedWithoutPostgres, type TestPostgres } from "../pg";

warnSkippedWithoutPostgres("test/e2e/postgres-schema.test.ts (Postgres migrations, round trips, indexes)");

/** drizzle's own migrator, fed from the embedded files as src/store/db.ts does for SQLite. */
async function migrate(db: BunSQLDatabase) {
  const metas = migrations.map((m) => ({
    sql: m.sql.split("--> statement-breakpoint"),
    bps: m.breakpoints,
    folderMillis: m.when,
    hash: createHash("sha256").update(m.sql).digest("hex"),
  }));
  const d = db as unknown as { dialect: { migrate(m: unknown, s: unknown, c: unknown): Promise<void> }; session: unknown };
  await d.dialect.migrate(metas, d.session, {});
}

/** The SQLSTATE a refused write failed with (drizzle wraps the driver's error as its cause). */
async function refused(query: PromiseLike<unknown>): Promise<string> {
  try {
    await query;
  } catch (e) {
    const cause = (e as { cause?: { errno?: string } }).cause;
    return String(cause?.errno ?? (e as { errno?: string }).errno);
  }
  throw new Error("the write was accepted");
}

describe.skipIf(!HAVE_POSTGRES)("Postgres schema (real Postgres)", () => {
  let pg: TestPostgres;
  let client: SQL;
  let db: BunSQLDatabase;
  const now = "2026-01-02T03:04:05.000Z";

  beforeAll(async () => {
    pg = await startPostgres();
    client = new SQL(pg.url);
    db = drizzle({ client });
  });
  afterAll(async () => {
    await client?.close();
    pg?.stop();
  });

  test("the embedded migrations apply, and applying them again changes nothing", async () => {
    expect(migrations.length).toBeGreaterThan(0);
    await migrate(db);
    await migrate(db);
    const applied = await client`select hash from drizzle.__drizzle_migrations`;
    expect(applied.length).toBe(migrations.length);
    const tables = await client`select tablename from pg_tables where schemaname = 'public' order by tablename`;
    expect(tables.map((r: { tablename: string }) => r.tablename)).toEqual([
      "access_tokens",
      "agents",
      "delivery_log",
      "replicas",
      "revisions",
      "secrets",
      "session_events",
      "session_names",
      "sessions",
      "webhook_deliveries",
    ]);
  });

  test("an agent and a secret round-trip, JSON documents exactly as given", async () => {
    // Key order is kept (text, not jsonb), as SQLite keeps it.
    const spec = { zeta: 1, alpha: { nested: ["x", "ü", 2] }, model: "claude" };
    await db.insert(agents).values({
      namespace: "default",
      name: "echo",
      uid: "u-1",
      generation: 1,
      resourceVersion: 2 ** 40,
      labels: { team: "a" },
      annotations: null,
      spec,
      status: { phase: "Ready" },
      source: "api",
      createdAt: now,
      updatedAt: now,
    });
    const [a] = await db.select().from(agents).where(and(eq(agents.namespace, "default"), eq(agents.name, "echo")));
    expect(a!.spec).toEqual(spec);
    expect(JSON.stringify(a!.spec)).toBe(JSON.stringify(spec));
    expect(a!.resourceVersion).toBe(2 ** 40);
    expect(typeof a!.resourceVersion).toBe("number");
    expect(a!.labels).toEqual({ team: "a" });
    expect(a!.annotations).toBeNull();
    const [raw] = await client`select spec from agents where name = 'echo'`;
    expect(raw.spec).toBe(JSON.stringify(spec));

    await db.insert(secrets).values({
      namespace: "default",
      name: "pai-webhook-echo",
      uid: "s-1",
      type: "Opaque",
      resourceVersion: 3,
      labels: null,
      annotations: { "kubectl.kubernetes.io/last-applied-configuration": '{"a":1}' },
      data: { token: "t0p-s3cret" },
      ownerUid: "u-1",
      createdAt: now,
    });
    const owned = await db.select().from(secrets).where(eq(secrets.ownerUid, "u-1"));
    expect(owned.map((s) => [s.name, s.data, s.annotations])).toEqual([
      ["pai-webhook-echo", { token: "t0p-s3cret" }, { "kubectl.kubernetes.io/last-applied-configuration": '{"a":1}' }],
    ]);
    // The primary key holds: a second secret of the same name is refused.
    const dupSecret = db.insert(secrets).values({ namespace: "default", name: "pai-webhook-echo", uid: "s-2", type: "Opaque", resourceVersion: 4, data: {}, createdAt: now });
    expect(await refused(dupSecret)).toBe("23505"); // unique_violation

    await db.insert(accessTokens).values({ id: "t1", namespace: null, name: "admin", hash: "ab".repeat(32), createdAt: now });
    // access_tokens_hash_idx is unique.
    const dupHash = db.insert(accessTokens).values({ id: "t2", namespace: "default", name: "dup", hash: "ab".repeat(32), createdAt: now });
    expect(await refused(dupHash)).toBe("23505");
  });

  test("a session with events and a delivery round-trip; deleting the session deletes its events", async () => {
    await db.insert(sessions).values({
      namespace: "default",
      name: "s-1",
      uid: "su-1",
      agentDefinition: "echo",
      generation: 1,
      spec: { model: "claude" },
      title: "hello",
      env: [{ name: "A", value: "1" }],
      origin: { kind: "webhook", delivery: "d-1" },
      phase: "Pending",
      payload: { action: "opened" },
      seq: 2 ** 33,
      createdAt: now,
    });
    await db.insert(sessionEvents).values([
      { namespace: "default", session: "s-1", id: 1, type: "message", content: { text: "hi" }, timestamp: now },
      { namespace: "default", session: "s-1", id: 2, type: "result", content: "done", timestamp: now },
    ]);
    const [s] = await db.select().from(sessions).where(eq(sessions.name, "s-1"));
    expect(s!.seq).toBe(2 ** 33);
    expect(s!.env).toEqual([{ name: "A", value: "1" }]);
    expect(s!.origin).toEqual({ kind: "webhook", delivery: "d-1" });
    expect(s!.usage).toBeNull();
    const events = await db.select().from(sessionEvents).where(eq(sessionEvents.session, "s-1")).orderBy(asc(sessionEvents.id));
    expect(events.map((e) => [e.id, e.type, e.content])).toEqual([
      [1, "message", { text: "hi" }],
      [2, "result", "done"],
    ]);
    // An event of a session that does not exist is refused (foreign key).
    const orphan = db.insert(sessionEvents).values({ namespace: "default", session: "nope", id: 1, type: "x", content: {}, timestamp: now });
    expect(await refused(orphan)).toBe("23503"); // foreign_key_violation

    const delivery = { namespace: "default", agent: "echo", deliveryId: "d-1", session: "s-1", createdAt: now };
    expect((await db.insert(webhookDeliveries).values(delivery).onConflictDoNothing().returning()).length).toBe(1);
    // A retried delivery finds the first one: the key makes deliveries idempotent.
    expect((await db.insert(webhookDeliveries).values({ ...delivery, session: "s-2" }).onConflictDoNothing().returning()).length).toBe(0);
    const [d] = await db.select().from(webhookDeliveries);
    expect(d!.session).toBe("s-1");

    await db.delete(sessions).where(eq(sessions.name, "s-1"));
    expect((await db.select().from(sessionEvents)).length).toBe(0);
  });

  test("revisions count by themselves, from 1, as numbers", async () => {
    const rows = await db
      .insert(revisions)
      .values([
        { kind: "Agent", namespace: "default", name: "echo", type: "ADDED", object: { kind: "Agent" } },
        { kind: "Secret", namespace: "default", name: "pai-webhook-echo", type: "ADDED", object: null },
        { kind: "Agent", namespace: "default", name: "echo", type: "DELETED", object: { kind: "Agent" } },
      ])
      .returning({ rev: revisions.rev });
    expect(rows.map((r) => r.rev)).toEqual([1, 2, 3]);
    const [next] = await db.insert(revisions).values({ kind: "Agent", namespace: "n", name: "x", type: "ADDED" }).returning();
    expect(next!.rev).toBe(4);
    expect(next!.object).toBeNull();
    const all = await db.select().from(revisions).orderBy(asc(revisions.rev));
    expect(all.map((r) => [r.rev, r.type, r.object])).toEqual([
      [1, "ADDED", { kind: "Agent" }],
      [2, "ADDED", null],
      [3, "DELETED", { kind: "Agent" }],
      [4, "ADDED", null],
    ]);
  });

  test("every index of the SQLite schema exists in Postgres under the same name, partial ones with the same predicate", async () => {
    const expected = Object.values(lite)
      .filter((t) => is(t, SQLiteTable))
      .flatMap((t) => {
        const cfg = getTableConfig(t as SQLiteTable);
        return cfg.indexes.map((i) => ({ table: cfg.name, name: i.config.name!, unique: i.config.unique, partial: i.config.where !== undefined }));
      });
    expect(expected.length).toBe(11);
    const rows: { tablename: string; indexname: string; indexdef: string; pred: string | null }[] = await client`
      select i.tablename, i.indexname, i.indexdef, pg_get_expr(x.indpred, x.indrelid) as pred
      from pg_indexes i
      join pg_class c on c.relname = i.indexname and c.relnamespace = 'public'::regnamespace
      join pg_index x on x.indexrelid = c.oid
      where i.schemaname = 'public'`;
    for (const e of expected) {
      const row = rows.find((r) => r.indexname === e.name);
      expect(row, e.name).toBeDefined();
      expect(row!.tablename).toBe(e.table);
      expect(row!.indexdef.startsWith("CREATE UNIQUE INDEX")).toBe(e.unique);
      expect(row!.pred !== null).toBe(e.partial);
    }
    // Postgres's own rendering of the predicates the SQLite schema spells.
    const preds = Object.fromEntries(rows.filter((r) => r.pred).map((r) => [r.indexname, r.pred]));
    expect(preds).toEqual({
      sessions_pending_idx: "(phase = 'Pending'::text)",
      sessions_running_idx: "(phase = 'Running'::text)",
      sessions_callback_due_idx: "((callback_state = 'pending'::text) AND (finished_at IS NOT NULL))",
      sessions_finished_idx: "(finished_at IS NOT NULL)",
      delivery_log_refused_idx: "(code >= 400)",
    });
  });

  test("the backlog query the supervisor spells can use the partial index", async () => {
    // Tiny tables are scanned anyway; forbid that to ask whether the index matches the query at all.
    const plan = await client.begin(async (tx) => {
      await tx`set local enable_seqscan = off`;
      return tx`explain select name from sessions where namespace = 'default' and agent_definition = 'echo' and phase = 'Pending' order by seq limit 10`;
    });
    const text = plan.map((r: Record<string, string>) => r["QUERY PLAN"]).join("\n");
    expect(text).toContain("sessions_pending_idx");
    // And the drizzle query builder reaches the same table through the same columns.
    const n = await db.select({ n: dsql<number>`count(*)::int` }).from(sessions).where(eq(sessions.phase, "Pending"));
    expect(n[0]!.n).toBe(0);
  });
});
