/**
 * The queries of session retention: the oldest finished sessions, and deleting a session with its
 * events and webhook deliveries a bounded number of rows at a time. Candidates come from the
 * partial index `sessions_finished_idx` (finished rows only, by finished_at), so a backlog of
 * Pending sessions is never read; every delete repeats the conditions, so a row that is not
 * finished, or whose callback is still being delivered, is never removed.
 *
 * The newest session of each agent is kept too: session names count on from the highest suffix
 * the store holds (`<agent>-<kind>-<8 hex>`, one counter per agent across kinds), so removing all
 * of an agent's sessions would make the next server start count from 1 again and reuse names.
 */
import type { Db } from "./db";
import { CallbackState, FINAL_PHASES } from "../domain/session";
import { lazy } from "../lib/lazy";

export interface RetentionCandidate {
  namespace: string;
  name: string;
  /** The delivery id the session was started by, if any (its webhook_deliveries row). */
  delivery?: string;
  agent: string;
}

const FINAL = FINAL_PHASES.map((p) => `'${p}'`).join(", ");
// Spelled as the index's WHERE (and named), as the other partial-index queries of the store are.
const retired = (t = "") =>
  `${t}finished_at IS NOT NULL AND ${t}finished_at < ?1 AND ${t}phase IN (${FINAL}) AND (${t}callback_state IS NULL OR ${t}callback_state <> '${CallbackState.Pending}')`;
/** The session kinds of `<agent>-<kind>-<8 hex>` names, which share one counter per agent (service/sessions.ts). */
const NAME_KINDS = ["wh", "run"];
const HEX8 = "[0-9a-f]".repeat(8);
/**
 * `s` has a newer session of its agent: a name of any kind with a higher suffix (a seek in the
 * primary key per kind). Names not made by the counter are not held back.
 */
const NOT_NEWEST = `(s.name NOT GLOB (s.agent_definition || '-*-${HEX8}') OR ${NAME_KINDS.map(
  (kind) =>
    `EXISTS (SELECT 1 FROM sessions AS n WHERE n.namespace = s.namespace AND n.name > (s.agent_definition || '-${kind}-' || substr(s.name, -8)) ` +
    `AND n.name <= (s.agent_definition || '-${kind}-ffffffff') AND n.agent_definition = s.agent_definition AND length(n.name) = length(s.agent_definition) + ${kind.length + 10})`,
).join(" OR ")})`;

export function createRetentionRepo(db: Db) {
  const q = <T>(text: string) => lazy(() => db.$client.prepare<T, (string | number)[]>(text));
  const oldest = q<{ namespace: string; name: string; agent: string; delivery: string | null }>(
    `SELECT s.namespace, s.name, s.agent_definition AS agent, json_extract(s.origin, '$.delivery') AS delivery
     FROM sessions AS s INDEXED BY sessions_finished_idx WHERE ${retired("s.")} AND ${NOT_NEWEST}
     ORDER BY s.finished_at LIMIT ?2`,
  );
  const deleteEvents = q<never>(
    `DELETE FROM session_events WHERE rowid IN (SELECT rowid FROM session_events WHERE namespace = ?1 AND session = ?2 LIMIT ?3)`,
  );
  const deleteSession = q<never>(`DELETE FROM sessions WHERE namespace = ?2 AND name = ?3 AND ${retired()}`);
  const deleteDelivery = q<never>(`DELETE FROM webhook_deliveries WHERE namespace = ?1 AND agent = ?2 AND delivery_id = ?3 AND session = ?4`);
  const deliveriesAfter = q<{ r: number; namespace: string; session: string; createdAt: string }>(
    `SELECT rowid AS r, namespace, session, created_at AS createdAt FROM webhook_deliveries WHERE rowid > ?1 ORDER BY rowid LIMIT ?2`,
  );
  const sessionExists = q<{ one: number }>(`SELECT 1 AS one FROM sessions WHERE namespace = ?1 AND name = ?2`);
  const deleteDeliveryRow = q<never>(`DELETE FROM webhook_deliveries WHERE rowid = ?1`);

  return {
    /** Up to `limit` sessions that finished before `cutoff` (ISO), oldest first, whose callback is not pending and that are not their agent's newest. */
    finishedBefore(cutoff: string, limit: number): RetentionCandidate[] {
      return oldest()
        .all(cutoff, limit)
        .map((r) => ({ namespace: r.namespace, name: r.name, agent: r.agent, ...(typeof r.delivery === "string" ? { delivery: r.delivery } : {}) }));
    },
    /**
     * Deletes up to `maxEvents` events of the session, then, if none is left, the session (if it
     * still finished before `cutoff`) and the delivery that started it. Call inside a transaction.
     * Returns the events deleted and whether the session row went.
     */
    remove(c: RetentionCandidate, cutoff: string, maxEvents: number): { events: number; removed: boolean } {
      const events = maxEvents > 0 ? deleteEvents().run(c.namespace, c.name, maxEvents).changes : 0;
      if (events >= maxEvents) return { events, removed: false };
      const removed = deleteSession().run(cutoff, c.namespace, c.name).changes > 0;
      if (removed && c.delivery) deleteDelivery().run(c.namespace, c.agent, c.delivery, c.name);
      return { events, removed };
    },
    /**
     * Webhook deliveries after `afterRowid`, oldest first, at most `limit`: deletes those whose
     * session is gone (a signed delivery's second key, or a row a crash left) and returns where it
     * stopped, or null when it reached the end or a delivery made at or after `cutoff` (whose
     * session is too young to have been removed). Call inside a transaction.
     */
    sweepDeliveries(afterRowid: number, cutoff: string, limit: number): { next: number | null; deleted: number } {
      let deleted = 0;
      let last = afterRowid;
      const rows = deliveriesAfter().all(afterRowid, limit);
      for (const d of rows) {
        if (d.createdAt >= cutoff) return { next: null, deleted };
        if (!sessionExists().get(d.namespace, d.session)) deleted += deleteDeliveryRow().run(d.r).changes;
        last = d.r;
      }
      return { next: rows.length < limit ? null : last, deleted };
    },
  };
}

export type RetentionRepo = ReturnType<typeof createRetentionRepo>;
