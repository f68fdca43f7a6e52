/**
 * Tables of the store. Columns are snake_case; JSON documents (spec, status, secret data) are TEXT
 * holding JSON, read and written whole. drizzle-kit generates `db/migrations` from this file.
 */
import { sql } from "drizzle-orm";
import { sqliteTable, text, integer, primaryKey, index, uniqueIndex, foreignKey } from "drizzle-orm/sqlite-core";

export const agents = sqliteTable(
  "agents",
  {
    namespace: text("namespace").notNull(),
    name: text("name").notNull(),
    uid: text("uid").notNull(),
    generation: integer("generation").notNull(),
    resourceVersion: integer("resource_version").notNull(),
    labels: text("labels", { mode: "json" }).$type<Record<string, string>>(),
    annotations: text("annotations", { mode: "json" }).$type<Record<string, string>>(),
    spec: text("spec", { mode: "json" }).notNull().$type<unknown>(),
    status: text("status", { mode: "json" }).notNull().$type<unknown>(),
    /** Where the agent came from: `api`, or `file:<absolute path>` for the manifests watcher. */
    source: text("source").notNull(),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.namespace, t.name] }), index("agents_source_idx").on(t.source)],
);

export const secrets = sqliteTable(
  "secrets",
  {
    namespace: text("namespace").notNull(),
    name: text("name").notNull(),
    uid: text("uid").notNull(),
    type: text("type").notNull(),
    resourceVersion: integer("resource_version").notNull(),
    labels: text("labels", { mode: "json" }).$type<Record<string, string>>(),
    /** Kept as given (kubectl apply keeps its last-applied-configuration here). */
    annotations: text("annotations", { mode: "json" }).$type<Record<string, string>>(),
    /** Plain values by key (the API shows them base64-encoded, as Kubernetes does). */
    data: text("data", { mode: "json" }).notNull().$type<Record<string, string>>(),
    /** uid of the Agent that owns this secret; deleting the agent deletes it. */
    ownerUid: text("owner_uid"),
    createdAt: text("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.namespace, t.name] }), index("secrets_owner_uid_idx").on(t.ownerUid)],
);

export const accessTokens = sqliteTable(
  "access_tokens",
  {
    id: text("id").primaryKey(),
    /** null for the admin token, which may do everything. */
    namespace: text("namespace"),
    name: text("name").notNull(),
    /** sha256 of the token, hex. The token itself is shown once and never stored. */
    hash: text("hash").notNull(),
    createdAt: text("created_at").notNull(),
  },
  (t) => [uniqueIndex("access_tokens_hash_idx").on(t.hash), index("access_tokens_namespace_idx").on(t.namespace)],
);

export const sessions = sqliteTable(
  "sessions",
  {
    namespace: text("namespace").notNull(),
    name: text("name").notNull(),
    uid: text("uid").notNull(),
    agentDefinition: text("agent_definition").notNull(),
    /** The agent's generation when the session was started; `spec` is a snapshot of that version. */
    generation: integer("generation").notNull(),
    spec: text("spec", { mode: "json" }).notNull().$type<unknown>(),
    title: text("title").notNull(),
    env: text("env", { mode: "json" }).notNull().$type<{ name: string; value: string }[]>(),
    /** Where the session came from: `{kind: "webhook" | "cli" | "api", sender?, delivery?}`. */
    origin: text("origin", { mode: "json" }).notNull().$type<Record<string, unknown>>(),
    phase: text("phase").notNull(),
    response: text("response"),
    error: text("error"),
    /** The raw webhook payload when the body was an event rather than a Pai request (webhook.json). */
    payload: text("payload", { mode: "json" }).$type<unknown>(),
    /** Where to POST the result when the session ends (webhook `callbackUrl`). */
    callbackUrl: text("callback_url"),
    /** `pending` until delivered (`delivered`) or given up (`failed`); null without a callback. */
    callbackState: text("callback_state"),
    /** Global insertion order (FIFO within an agent); never shown to callers. Rows are inserted in seq order. */
    seq: integer("seq").notNull(),
    createdAt: text("created_at").notNull(),
    startedAt: text("started_at"),
    finishedAt: text("finished_at"),
    /** Tokens the session's model calls used: `{inputTokens, outputTokens, byModel: {id: {inputTokens, outputTokens}}}`. */
    usage: text("usage", { mode: "json" }).$type<Record<string, unknown>>(),
    /** The replica that claimed (runs) the session when replicas share a Postgres; unused by a lone server. */
    owner: text("owner"),
  },
  (t) => [
    primaryKey({ columns: [t.namespace, t.name] }),
    index("sessions_namespace_seq_idx").on(t.namespace, t.seq),
    // Partial indexes hold only the rows a query looks for, so a backlog of a million Pending
    // sessions costs the others nothing: the supervisor pages one agent's backlog in order (and
    // finds the agents that have one), start-up finds Running and finished-but-undelivered rows
    // without a scan. Queries must spell the same WHERE (raw SQL in ./sessions.ts, INDEXED BY).
    index("sessions_pending_idx").on(t.namespace, t.agentDefinition, t.seq).where(sql`phase = 'Pending'`),
    index("sessions_running_idx").on(t.seq).where(sql`phase = 'Running'`),
    index("sessions_callback_due_idx").on(t.seq).where(sql`callback_state = 'pending' AND finished_at IS NOT NULL`),
    // Retention finds the oldest finished sessions without a scan.
    index("sessions_finished_idx").on(t.finishedAt).where(sql`finished_at IS NOT NULL`),
  ],
);

export const sessionEvents = sqliteTable(
  "session_events",
  {
    namespace: text("namespace").notNull(),
    session: text("session").notNull(),
    /** Monotonic per session, from 1: the SSE `id:` and the `after` cursor. */
    id: integer("id").notNull(),
    type: text("type").notNull(),
    content: text("content", { mode: "json" }).notNull().$type<unknown>(),
    timestamp: text("timestamp").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.namespace, t.session, t.id] }),
    foreignKey({ columns: [t.namespace, t.session], foreignColumns: [sessions.namespace, sessions.name] }).onDelete("cascade"),
  ],
);

/** Webhook deliveries already turned into sessions, so a retried delivery returns the same session. */
export const webhookDeliveries = sqliteTable(
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
 * The store-wide revision log of agents and secrets (as kine keeps one for Kubernetes objects): every
 * create, change and delete appends a row, and the object's `resource_version` is that row's `rev`.
 * Watches replay it from a revision; old rows are compacted away (a watch from before them gets 410).
 */
export const revisions = sqliteTable(
  "revisions",
  {
    rev: integer("rev").primaryKey({ autoIncrement: true }),
    /** `Agent` or `Secret`. */
    kind: text("kind").notNull(),
    namespace: text("namespace").notNull(),
    name: text("name").notNull(),
    /** `ADDED`, `MODIFIED` or `DELETED`. */
    type: text("type").notNull(),
    /** The object as it was after the write (a deleted secret without its data); null for rows made by the migration. */
    object: text("object", { mode: "json" }).$type<unknown>(),
  },
);

/**
 * Replicas sharing one Postgres (unused by a lone server, kept for schema parity): each upserts its
 * heartbeat (epoch ms); the Running sessions of one whose heartbeat is too old are ended by the others.
 */
export const replicas = sqliteTable("replicas", {
  id: text("id").primaryKey(),
  heartbeatAt: integer("heartbeat_at").notNull(),
  startedAt: text("started_at").notNull(),
});

/**
 * Per-agent counters of session name suffixes, handed out in blocks so replicas sharing one Postgres
 * never pick the same name (unused by a lone server, which finds its last name in the sessions).
 */
export const sessionNames = sqliteTable(
  "session_names",
  {
    namespace: text("namespace").notNull(),
    agent: text("agent").notNull(),
    /** The largest suffix handed out. */
    last: integer("last").notNull(),
  },
  (t) => [primaryKey({ columns: [t.namespace, t.agent] })],
);

/**
 * The delivery log: one row per webhook request that named an existing agent, accepted or refused
 * (src/service/deliveries.ts writes it in batches and keeps the newest 1000 rows per agent).
 * Unrelated to `webhook_deliveries`, which holds the keys that make a retried delivery return its
 * session. `id` orders the log (newest first is `id DESC`); `time` is when the answer was made.
 * Refused rows (code >= 400) have an index of their own so that their share of an agent's rows can
 * be bounded without reading the accepted ones.
 */
export const deliveryLog = sqliteTable(
  "delivery_log",
  {
    id: integer("id").primaryKey(),
    namespace: text("namespace").notNull(),
    agent: text("agent").notNull(),
    time: text("time").notNull(),
    /** linear, github or generic (src/domain/senders.ts). */
    sender: text("sender").notNull(),
    event: text("event"),
    /** The sender's delivery id, when it sent one. */
    delivery: text("delivery"),
    /** The HTTP status of the answer. */
    code: integer("code").notNull(),
    /** The session the delivery started, or the one an earlier delivery with its id started. */
    session: text("session"),
    /** For refused deliveries: the error message the caller got (at most 300 characters). */
    reason: text("reason"),
  },
  (t) => [
    index("delivery_log_agent_idx").on(t.namespace, t.agent, t.id),
    index("delivery_log_refused_idx").on(t.namespace, t.agent, t.id).where(sql`code >= 400`),
  ],
);
