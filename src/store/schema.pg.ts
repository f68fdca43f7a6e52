/**
 * The same tables as ./schema.sql.ts in Postgres's dialect, for replicas sharing one database
 * (not wired into `pai serve` yet). Column, key and index names are identical, so raw SQL can be
 * shared where the dialects agree; test/unit/schema-parity.test.ts keeps the two from drifting.
 *
 * JSON documents are TEXT holding JSON, as in SQLite, not jsonb: they are read and written whole
 * (never queried inside), jsonb would reorder object keys and drop duplicates (the API returns a spec
 * as it was given), and plain text keeps Bun's driver out of JSON encoding. Counters that grow for
 * the store's lifetime (seq, resource_version, rev) are bigint read as numbers, as SQLite's 64-bit
 * INTEGER is. drizzle-kit generates `db/migrations-pg` from this file (drizzle.pg.config.ts).
 */
import { sql } from "drizzle-orm";
import { pgTable, pgSequence, text, integer, bigint, primaryKey, index, uniqueIndex, foreignKey, customType } from "drizzle-orm/pg-core";

/** A TEXT column holding JSON, like sqlite-core's `text(name, { mode: "json" })`. */
const json = customType<{ data: unknown; driverData: string }>({
  dataType: () => "text",
  toDriver: (value) => JSON.stringify(value),
  fromDriver: (value) => JSON.parse(value),
});
const jsonText = <T>(name: string) => json(name).$type<T>();
const counter = (name: string) => bigint(name, { mode: "number" });

export const agents = pgTable(
  "agents",
  {
    namespace: text("namespace").notNull(),
    name: text("name").notNull(),
    uid: text("uid").notNull(),
    generation: integer("generation").notNull(),
    resourceVersion: counter("resource_version").notNull(),
    labels: jsonText<Record<string, string>>("labels"),
    annotations: jsonText<Record<string, string>>("annotations"),
    spec: jsonText<unknown>("spec").notNull(),
    status: jsonText<unknown>("status").notNull(),
    source: text("source").notNull(),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.namespace, t.name] }), index("agents_source_idx").on(t.source)],
);

export const secrets = pgTable(
  "secrets",
  {
    namespace: text("namespace").notNull(),
    name: text("name").notNull(),
    uid: text("uid").notNull(),
    type: text("type").notNull(),
    resourceVersion: counter("resource_version").notNull(),
    labels: jsonText<Record<string, string>>("labels"),
    annotations: jsonText<Record<string, string>>("annotations"),
    data: jsonText<Record<string, string>>("data").notNull(),
    ownerUid: text("owner_uid"),
    createdAt: text("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.namespace, t.name] }), index("secrets_owner_uid_idx").on(t.ownerUid)],
);

export const accessTokens = pgTable(
  "access_tokens",
  {
    id: text("id").primaryKey(),
    namespace: text("namespace"),
    name: text("name").notNull(),
    hash: text("hash").notNull(),
    createdAt: text("created_at").notNull(),
  },
  (t) => [uniqueIndex("access_tokens_hash_idx").on(t.hash), index("access_tokens_namespace_idx").on(t.namespace)],
);

export const sessions = pgTable(
  "sessions",
  {
    namespace: text("namespace").notNull(),
    name: text("name").notNull(),
    uid: text("uid").notNull(),
    agentDefinition: text("agent_definition").notNull(),
    generation: integer("generation").notNull(),
    spec: jsonText<unknown>("spec").notNull(),
    title: text("title").notNull(),
    env: jsonText<{ name: string; value: string }[]>("env").notNull(),
    origin: jsonText<Record<string, unknown>>("origin").notNull(),
    phase: text("phase").notNull(),
    response: text("response"),
    error: text("error"),
    payload: jsonText<unknown>("payload"),
    callbackUrl: text("callback_url"),
    callbackState: text("callback_state"),
    seq: counter("seq").notNull(),
    createdAt: text("created_at").notNull(),
    startedAt: text("started_at"),
    finishedAt: text("finished_at"),
    usage: jsonText<Record<string, unknown>>("usage"),
    owner: text("owner"),
  },
  (t) => [
    primaryKey({ columns: [t.namespace, t.name] }),
    index("sessions_namespace_seq_idx").on(t.namespace, t.seq),
    // The same partial indexes, with the same predicates, as the SQLite schema (see there why).
    index("sessions_pending_idx").on(t.namespace, t.agentDefinition, t.seq).where(sql`phase = 'Pending'`),
    index("sessions_running_idx").on(t.seq).where(sql`phase = 'Running'`),
    index("sessions_callback_due_idx").on(t.seq).where(sql`callback_state = 'pending' AND finished_at IS NOT NULL`),
    index("sessions_finished_idx").on(t.finishedAt).where(sql`finished_at IS NOT NULL`),
  ],
);

export const sessionEvents = pgTable(
  "session_events",
  {
    namespace: text("namespace").notNull(),
    session: text("session").notNull(),
    id: integer("id").notNull(),
    type: text("type").notNull(),
    content: jsonText<unknown>("content").notNull(),
    timestamp: text("timestamp").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.namespace, t.session, t.id] }),
    foreignKey({ columns: [t.namespace, t.session], foreignColumns: [sessions.namespace, sessions.name] }).onDelete("cascade"),
  ],
);

export const webhookDeliveries = pgTable(
  "webhook_deliveries",
  {
    namespace: text("namespace").notNull(),
    agent: text("agent").notNull(),
    deliveryId: text("delivery_id").notNull(),
    session: text("session").notNull(),
    createdAt: text("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.namespace, t.agent, t.deliveryId] })],
);

/**
 * The revision log (see ./schema.sql.ts). `rev` is an identity column, Postgres's AUTOINCREMENT:
 * by default, so a row may still be given its rev explicitly, as SQLite allows.
 */
export const revisions = pgTable("revisions", {
  rev: counter("rev").primaryKey().generatedByDefaultAsIdentity(),
  kind: text("kind").notNull(),
  namespace: text("namespace").notNull(),
  name: text("name").notNull(),
  type: text("type").notNull(),
  object: jsonText<unknown>("object"),
});

export const replicas = pgTable("replicas", {
  id: text("id").primaryKey(),
  heartbeatAt: counter("heartbeat_at").notNull(),
  startedAt: text("started_at").notNull(),
});

export const sessionNames = pgTable(
  "session_names",
  {
    namespace: text("namespace").notNull(),
    agent: text("agent").notNull(),
    last: counter("last").notNull(),
  },
  (t) => [primaryKey({ columns: [t.namespace, t.agent] })],
);

/** The delivery log (see ./schema.sql.ts); `id` is an identity column, so replicas insert without coordinating. */
export const deliveryLog = pgTable(
  "delivery_log",
  {
    id: counter("id").primaryKey().generatedByDefaultAsIdentity(),
    namespace: text("namespace").notNull(),
    agent: text("agent").notNull(),
    time: text("time").notNull(),
    sender: text("sender").notNull(),
    event: text("event"),
    delivery: text("delivery"),
    code: integer("code").notNull(),
    session: text("session"),
    reason: text("reason"),
  },
  (t) => [
    index("delivery_log_agent_idx").on(t.namespace, t.agent, t.id),
    index("delivery_log_refused_idx").on(t.namespace, t.agent, t.id).where(sql`code >= 400`),
  ],
);

/**
 * Where `sessions.seq` comes from when replicas insert at once (src/store/pg/run-repo.ts takes
 * `nextval` per session): a lone server counts in memory, replicas cannot, and a counter row would
 * make every insert of every replica wait on one row lock. Postgres only, so it is no table and
 * schema parity (tables) does not see it; drizzle-kit writes it into the migrations like a table.
 * Values are unique and increasing per call, not per commit: a reader may see seq 7 committed
 * before seq 6 is.
 */
export const sessionsSeq = pgSequence("sessions_seq");
