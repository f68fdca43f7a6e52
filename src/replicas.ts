/**
 * `--database postgres://…`: the connection replicas share, loaded only in that mode. It opens
 * Bun's Postgres client, applies the embedded migrations (under an advisory lock, so replicas
 * starting together do not race) and names this replica (hostname, pid and a random part: a
 * restarted process is a new replica, and the old one's sessions are ended as lost).
 */
import { hostname } from "node:os";
import { SQL } from "bun";
import type { DatabaseConfig } from "./config/serve";
import { randomId } from "./lib/crypto";
import type { Logger } from "./lib/log";
import { createPgRunRepo, type PgRunRepo } from "./store/pg/run-repo";

export interface SharedDatabase {
  /** The client (agents and secrets are read and written through it; the repository owns and closes it). */
  sql: SQL;
  repo: PgRunRepo;
  replicaId: string;
  replicaLeaseMs: number;
}

/** Where a database URL points, for logs: never its password. */
export function describeDatabase(url: string): string {
  const u = new URL(url);
  return `${u.hostname}${u.port ? `:${u.port}` : ""}${u.pathname}`;
}

export async function connectDatabase(cfg: DatabaseConfig, log: Logger): Promise<SharedDatabase> {
  const sql = new SQL(cfg.url);
  const repo = createPgRunRepo(sql);
  try {
    await repo.migrate();
  } catch (err) {
    await repo.close().catch(() => {});
    throw new DatabaseError(`cannot use the database at ${describeDatabase(cfg.url)}: ${(err as Error).message.replace(cfg.url, "<url>")}`);
  }
  const replicaId = `${hostname()}_${process.pid}_${randomId(4)}`;
  log.info("sessions, events, access tokens (and, without --kubernetes, agents and secrets) are shared in Postgres", { database: describeDatabase(cfg.url), replica: replicaId });
  return { sql, repo, replicaId, replicaLeaseMs: cfg.replicaLeaseMs };
}

/** The database cannot be reached or used; the message says where (without the password). */
export class DatabaseError extends Error {
  override name = "DatabaseError";
}
