/**
 * The delivery log in SQLite (table `delivery_log`): what each webhook request that named an
 * existing agent was answered. Rows arrive in batches from src/service/deliveries.ts; each batch
 * is inserted and its agents trimmed to their caps in one transaction, so an agent never holds
 * more than its cap once the batch is committed. Reads page by `id`, newest first.
 *
 * The queries name their index (INDEXED BY), as the session store's do: the trims and the pages
 * must seek in the agent's part of the index, never scan the table.
 */
import type { Db } from "./db";
import { lazy } from "../lib/lazy";

/** One answered webhook request, as the log keeps it. */
export interface DeliveryEntry {
  /** When the answer was made (ISO). */
  time: string;
  namespace: string;
  agent: string;
  /** linear, github or generic (src/domain/senders.ts). */
  sender: string;
  event?: string;
  /** The sender's delivery id. */
  delivery?: string;
  /** The answer's HTTP status: 200 accepted, anything else refused. */
  code: number;
  /** The session started, or the one an earlier delivery with the same id started. */
  session?: string;
  /** Refused: the error message the caller got. */
  reason?: string;
}

/** An entry with its place in the log (larger is newer). */
export interface StoredDelivery extends DeliveryEntry {
  id: number;
}

/** How many entries an agent keeps: the newest `perAgent`, of which at most `refusedPerAgent` refused. */
export interface DeliveryCaps {
  perAgent: number;
  refusedPerAgent: number;
}

type MaybePromise<T> = T | Promise<T>;

/** The log's storage: this SQLite one, or Postgres's (./pg/deliveries.ts) for replicas. */
export interface DeliveryRepo {
  /** Inserts the entries in order, then trims every agent they name to `caps`. */
  append(entries: readonly DeliveryEntry[], caps: DeliveryCaps): MaybePromise<void>;
  /** Up to `limit` entries of one agent with an id below `before` (default: the newest), newest first. */
  list(namespace: string, agent: string, limit: number, before?: number): MaybePromise<StoredDelivery[]>;
  /**
   * Deletes the entries made before `cutoff` (ISO) among the `limit` oldest; returns how many went
   * (none: nothing older is left, as ids grow with time).
   */
  removeBefore(cutoff: string, limit: number): MaybePromise<number>;
}

/** A row as both dialects read it (SQL NULL for absent fields; Postgres's bigint id may be text). */
export interface DeliveryRow {
  id: number | string;
  namespace: string;
  agent: string;
  time: string;
  sender: string;
  event: string | null;
  delivery: string | null;
  code: number;
  session: string | null;
  reason: string | null;
}

export function rowToDelivery(r: DeliveryRow): StoredDelivery {
  const d: StoredDelivery = { id: Number(r.id), time: r.time, namespace: r.namespace, agent: r.agent, sender: r.sender, code: r.code };
  if (r.event !== null) d.event = r.event;
  if (r.delivery !== null) d.delivery = r.delivery;
  if (r.session !== null) d.session = r.session;
  if (r.reason !== null) d.reason = r.reason;
  return d;
}

/** The agents a batch names, each with whether it added refused entries. */
export function touchedAgents(entries: readonly DeliveryEntry[]): { namespace: string; agent: string; refused: boolean }[] {
  const agents = new Map<string, { namespace: string; agent: string; refused: boolean }>();
  for (const e of entries) {
    const k = `${e.namespace}/${e.agent}`;
    let a = agents.get(k);
    if (!a) agents.set(k, (a = { namespace: e.namespace, agent: e.agent, refused: false }));
    if (e.code >= 400) a.refused = true;
  }
  return [...agents.values()];
}

const COLUMNS = "id, namespace, agent, time, sender, event, delivery, code, session, reason";

export function createDeliveryRepo(db: Db, tx: <T>(fn: () => T) => T): DeliveryRepo {
  const q = <T>(text: string) => lazy(() => db.$client.prepare<T, (string | number | null)[]>(text));
  const insert = q<never>(`INSERT INTO delivery_log (namespace, agent, time, sender, event, delivery, code, session, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)`);
  // The (keep+1)-th newest and everything older go; with fewer rows the subquery is NULL and nothing does.
  const trimAll = q<never>(
    `DELETE FROM delivery_log WHERE namespace = ?1 AND agent = ?2 AND id <= (
       SELECT id FROM delivery_log INDEXED BY delivery_log_agent_idx WHERE namespace = ?1 AND agent = ?2 ORDER BY id DESC LIMIT 1 OFFSET ?3)`,
  );
  const trimRefused = q<never>(
    `DELETE FROM delivery_log WHERE namespace = ?1 AND agent = ?2 AND code >= 400 AND id <= (
       SELECT id FROM delivery_log INDEXED BY delivery_log_refused_idx WHERE namespace = ?1 AND agent = ?2 AND code >= 400 ORDER BY id DESC LIMIT 1 OFFSET ?3)`,
  );
  const page = q<DeliveryRow>(
    `SELECT ${COLUMNS} FROM delivery_log INDEXED BY delivery_log_agent_idx WHERE namespace = ?1 AND agent = ?2 AND id < ?3 ORDER BY id DESC LIMIT ?4`,
  );
  const removeOld = q<never>(`DELETE FROM delivery_log WHERE id IN (SELECT id FROM (SELECT id, time FROM delivery_log ORDER BY id LIMIT ?2) WHERE time < ?1)`);

  return {
    append(entries, caps) {
      if (!entries.length) return;
      tx(() => {
        for (const e of entries) insert().run(e.namespace, e.agent, e.time, e.sender, e.event ?? null, e.delivery ?? null, e.code, e.session ?? null, e.reason ?? null);
        for (const a of touchedAgents(entries)) {
          // Refused entries are trimmed only where some were added: their share cannot have grown elsewhere.
          if (a.refused) trimRefused().run(a.namespace, a.agent, caps.refusedPerAgent);
          trimAll().run(a.namespace, a.agent, caps.perAgent);
        }
      });
    },
    list: (namespace, agent, limit, before = Number.MAX_SAFE_INTEGER) => page().all(namespace, agent, before, limit).map(rowToDelivery),
    removeBefore: (cutoff, limit) => removeOld().run(cutoff, limit).changes,
  };
}
