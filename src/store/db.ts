/**
 * Opens the store: one SQLite file in the data dir, WAL, busy_timeout, foreign keys, and the
 * migrations embedded at build time. A second server on the same data dir is refused by an
 * exclusive lock on a side file that the OS releases when the process dies.
 */
import { Database } from "bun:sqlite";
import { createHash } from "node:crypto";
import { mkdirSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { drizzle, type BunSQLiteDatabase } from "drizzle-orm/bun-sqlite";
import { migrations } from "../../db/migrations/index";
import * as schema from "./schema.sql";

export type Db = BunSQLiteDatabase<typeof schema> & { $client: Database };

export class DataDirLockedError extends Error {}

export interface OpenedStore {
  db: Db;
  sqlite: Database;
  close(): void;
}

/** Holds an exclusive SQLite lock on `<dir>/pai.lock` for the life of the process. */
function lockDataDir(dir: string): Database {
  const lock = new Database(join(dir, "pai.lock"), { create: true });
  try {
    lock.exec("PRAGMA busy_timeout = 0; PRAGMA locking_mode = EXCLUSIVE;");
    lock.exec("CREATE TABLE IF NOT EXISTS holder (pid INTEGER)");
    lock.exec("BEGIN EXCLUSIVE");
    lock.exec(`DELETE FROM holder; INSERT INTO holder VALUES (${process.pid})`);
    return lock;
  } catch (err) {
    lock.close();
    throw new DataDirLockedError(
      `data dir ${dir} is in use by another pai server (stop it, or pass a different --data-dir)`,
    );
  }
}

export function openStore(dataDir: string): OpenedStore {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const lock = lockDataDir(dataDir);
  const file = join(dataDir, "pai.db");
  const sqlite = new Database(file, { create: true, strict: true });
  chmodSync(file, 0o600);
  sqlite.exec("PRAGMA journal_mode = WAL");
  sqlite.exec("PRAGMA busy_timeout = 5000");
  sqlite.exec("PRAGMA foreign_keys = ON");
  sqlite.exec("PRAGMA synchronous = NORMAL");
  const db = drizzle({ client: sqlite, schema }) as Db;
  migrate(db);
  return {
    db,
    sqlite,
    close() {
      sqlite.close();
      lock.close();
    },
  };
}

function migrate(db: Db) {
  const metas = migrations.map((m) => ({
    sql: m.sql.split("--> statement-breakpoint"),
    bps: m.breakpoints,
    folderMillis: m.when,
    hash: createHash("sha256").update(m.sql).digest("hex"),
  }));
  // drizzle's own migrator, fed from the embedded files instead of a folder on disk.
  (db as unknown as { dialect: { migrate(m: unknown, s: unknown, c: unknown): void }; session: unknown }).dialect.migrate(
    metas,
    (db as unknown as { session: unknown }).session,
    {},
  );
}
