/**
 * Opens the store: one SQLite file in the data dir, WAL, busy_timeout, foreign keys, and the
 * migrations embedded at build time. A second server on the same data dir is refused by an
 * exclusive lock on a side file that the OS releases when the process dies. The data dir holds the
 * admin token and every secret, so it is kept private (0700): a looser one of ours is tightened,
 * one we do not own is refused.
 */
import { Database } from "bun:sqlite";
import { createHash } from "node:crypto";
import { mkdirSync, chmodSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { drizzle, type BunSQLiteDatabase } from "drizzle-orm/bun-sqlite";
import { migrations } from "../../db/migrations/index";
import * as schema from "./schema.sql";
import { createLogger, type Logger } from "../lib/log";
import { lazyCheckpointer, WAL_SIZE_LIMIT, type LazyCheckpointer } from "./checkpointer";

export type Db = BunSQLiteDatabase<typeof schema> & { $client: Database };

/** The data dir cannot be used; the message says why and what to do. */
export class DataDirError extends Error {}
export class DataDirLockedError extends DataDirError {}
export class DataDirPermissionError extends DataDirError {}

export interface OpenedStore {
  db: Db;
  sqlite: Database;
  /** The WAL checkpoint thread, started once writes make the WAL grow (until then SQLite checkpoints on this connection). */
  checkpointer: LazyCheckpointer;
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

const octal = (mode: number) => `0${(mode & 0o7777).toString(8)}`;

/**
 * Makes sure group and others have no access to the data dir. mkdir's mode only applies to a new
 * folder (and through the umask), so an existing one (say, made 0777 by hand) is checked here.
 */
export function securePrivateDir(dir: string, log: Logger) {
  const st = statSync(dir);
  if (!st.isDirectory()) throw new DataDirPermissionError(`data dir ${dir} is not a folder (pass a different --data-dir)`);
  if ((st.mode & 0o077) === 0) return;
  // Folders others rely on being open are not ours to close: give pai a folder of its own there.
  if (st.mode & 0o1000 || resolve(dir) === resolve(homedir()))
    throw new DataDirPermissionError(
      `data dir ${dir} is ${st.mode & 0o1000 ? "a shared folder like /tmp" : "your home folder"} (mode ${octal(st.mode)}), which pai will not make private: pass a folder of its own, e.g. --data-dir ${join(dir, ".pai")}`,
    );
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid)
    throw new DataDirPermissionError(
      `data dir ${dir} has mode ${octal(st.mode)} and belongs to another user (uid ${st.uid}), so others could read the admin token and secrets: ` +
        `have its owner run chmod 700 on it, or pass a different --data-dir`,
    );
  try {
    chmodSync(dir, 0o700);
  } catch (err) {
    throw new DataDirPermissionError(`data dir ${dir} has mode ${octal(st.mode)} and could not be made private (${(err as Error).message}): run chmod 700 on it, or pass a different --data-dir`);
  }
  // Some filesystems accept chmod and change nothing.
  const after = statSync(dir).mode;
  if ((after & 0o077) !== 0)
    throw new DataDirPermissionError(`data dir ${dir} stays at mode ${octal(after)} after chmod 700 (a filesystem without Unix permissions?): pass a --data-dir on one that has them`);
  log.warn(`data dir had mode ${octal(st.mode)}, open to other users; changed it to 0700`, { dir });
}

export function openStore(dataDir: string, opts: { log?: Logger } = {}): OpenedStore {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  securePrivateDir(dataDir, opts.log ?? createLogger("info"));
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
  sqlite.exec(`PRAGMA journal_size_limit = ${WAL_SIZE_LIMIT}`);
  const checkpointer = lazyCheckpointer(sqlite, file);
  return {
    db,
    sqlite,
    checkpointer,
    close() {
      checkpointer.close();
      // Strict close finalises the statements still prepared, so this connection really closes
      // (a lenient one stays open until they are garbage) and, as the last one, folds the WAL in.
      try {
        sqlite.close(true);
      } catch {
        sqlite.close();
      }
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
