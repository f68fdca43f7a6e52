/**
 * Applies the embedded Postgres migrations (db/migrations-pg, written by drizzle-kit) with drizzle's
 * own migrator, so its bookkeeping table (drizzle.__drizzle_migrations) is the one drizzle-kit and
 * test/e2e/postgres-schema.test.ts know. Replicas start together: the migrator's
 * `CREATE SCHEMA/TABLE IF NOT EXISTS` and its read of the last applied migration race each other,
 * so the whole run holds a session advisory lock on a connection of its own.
 */
import type { SQL } from "bun";
import { createHash } from "node:crypto";
import { drizzle } from "drizzle-orm/bun-sql";
import { migrations } from "../../../db/migrations-pg/index";

/**
 * The single-key advisory lock of migrations: any constant no other lock of ours uses (claims take
 * two-key locks, a key space of its own, so an agent's hash can never collide with it).
 */
const MIGRATE_LOCK = 0x7061_6901;

interface MigrationMeta {
  sql: string[];
  bps: boolean;
  folderMillis: number;
  hash: string;
}

/** The drizzle pg dialect's migrate(), which drizzle's folder-reading migrator calls; fed from the embedded files. */
type Dialect = { migrate(m: MigrationMeta[], session: unknown, config: object): Promise<void> };

export async function migratePg(sql: SQL): Promise<void> {
  const metas: MigrationMeta[] = migrations.map((m) => ({
    sql: m.sql.split("--> statement-breakpoint"),
    bps: m.breakpoints,
    folderMillis: m.when,
    hash: createHash("sha256").update(m.sql).digest("hex"),
  }));
  const conn = await sql.reserve();
  try {
    await conn`SELECT pg_advisory_lock(${MIGRATE_LOCK})`;
    try {
      const db = drizzle({ client: conn }) as unknown as { dialect: Dialect; session: unknown };
      await db.dialect.migrate(metas, db.session, {});
      // sessions_seq is made by the migration; rows given a seq by other means (an import, a test)
      // must not be handed the same seq again.
      await conn`
        SELECT setval('sessions_seq', m) FROM (SELECT max(seq) AS m FROM sessions) x
        WHERE m IS NOT NULL AND m > (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM sessions_seq)`;
    } finally {
      await conn`SELECT pg_advisory_unlock(${MIGRATE_LOCK})`;
    }
  } finally {
    await conn.release();
  }
}
