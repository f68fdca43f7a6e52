/**
 * Tables of the store. Columns are snake_case; JSON documents (spec, status, secret data) are TEXT
 * holding JSON, read and written whole. drizzle-kit generates `db/migrations` from this file.
 */
import { sqliteTable, text, integer, primaryKey, index, uniqueIndex } from "drizzle-orm/sqlite-core";

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
