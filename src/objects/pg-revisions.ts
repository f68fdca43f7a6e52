/**
 * The revision log of agents and secrets on Postgres, as each replica's watches read it: the
 * newest revisions in memory (read at start, then followed), with the same synchronous interface
 * as SQLite's log (../store/revisions.ts), so ../service/watch.ts serves `?watch=true` unchanged.
 *
 * Revisions commit in the order of their numbers (object writes take one lock, ./postgres.ts), so
 * reading "after the last one seen" never skips one. The replica reads on with every change it
 * hears of (its own writes and other replicas', via ./postgres.ts's notifications) and once a
 * second besides. A watch asked to start before what this replica holds gets 410 Expired and lists
 * again, as Kubernetes clients do. The table keeps the newest `keep` revisions (trimmed by
 * whichever replica reads past a multiple of them).
 */
import type { SQL } from "bun";
import type { Logger } from "../lib/log";
import type { Revision, RevisionKind, RevisionType } from "../store/revisions";
import { DEFAULT_KEEP_REVISIONS } from "../store/revisions";

export type RevisionFeed = {
  current(): number;
  oldest(): number;
  after(rev: number, limit?: number): Revision[];
  subscribe(listener: (r: Revision) => void): () => void;
  /** Reads what was committed since the last read (coalesced: one read at a time). */
  poll(): Promise<void>;
  open(): Promise<void>;
  close(): void;
};

type Row = { rev: string | number; kind: string; namespace: string; name: string; type: string; object: string | null };

export function createPgRevisionFeed(deps: { sql: SQL; log: Logger; keep?: number; pollMs?: number }): RevisionFeed {
  const { sql, log } = deps;
  const keep = deps.keep ?? DEFAULT_KEEP_REVISIONS;
  const held: Revision[] = [];
  const listeners = new Set<(r: Revision) => void>();
  let last = 0;
  let reading: Promise<void> | undefined;
  let again = false;
  let timer: ReturnType<typeof setInterval> | undefined;

  const toRevision = (r: Row): Revision => ({
    rev: Number(r.rev),
    kind: r.kind as RevisionKind,
    namespace: r.namespace,
    name: r.name,
    type: r.type as RevisionType,
    object: r.object === null ? null : JSON.parse(r.object),
  });

  async function readOn() {
    for (;;) {
      const rows: Row[] = await sql`SELECT rev, kind, namespace, name, type, object FROM revisions WHERE rev > ${last} ORDER BY rev LIMIT 1000`;
      for (const row of rows) {
        const r = toRevision(row);
        last = r.rev;
        held.push(r);
        for (const l of listeners) l(r);
      }
      if (held.length > keep) held.splice(0, held.length - keep);
      if (rows.length && last % keep < rows.length) await sql`DELETE FROM revisions WHERE rev <= ${last - keep}`;
      if (rows.length < 1000) return;
    }
  }

  function poll(): Promise<void> {
    if (reading) {
      again = true;
      return reading;
    }
    reading = readOn()
      .catch((err) => log.warn("failed to read the revision log", { error: (err as Error).message }))
      .finally(() => {
        reading = undefined;
        if (again) {
          again = false;
          void poll();
        }
      });
    return reading;
  }

  return {
    current: () => last,
    oldest: () => held[0]?.rev ?? last + 1,
    after(rev, limit = 1000) {
      // Held in order: find the first after `rev` by bisection.
      let lo = 0;
      let hi = held.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (held[mid]!.rev <= rev) lo = mid + 1;
        else hi = mid;
      }
      return held.slice(lo, lo + limit);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    poll,
    async open() {
      // The newest `keep` revisions: what a watch may replay from.
      const [{ max }] = await sql`SELECT coalesce(max(rev), 0) AS max FROM revisions`;
      last = Math.max(0, Number(max) - keep);
      await readOn();
      timer = setInterval(() => void poll(), deps.pollMs ?? 1000);
      timer.unref?.();
    },
    close() {
      clearInterval(timer);
    },
  };
}
