/**
 * The revision log (schema.sql.ts `revisions`): one store-wide counter for the resourceVersion of
 * agents and secrets, and what watches replay. Writers append inside their transaction; what was
 * appended is announced once it committed (at once outside a transaction), never on a rollback.
 * The log is compacted to its newest `keep` rows; a watch from before them is told it is too old.
 */
import type { Database } from "bun:sqlite";
import { lazy } from "../lib/lazy";

export type RevisionKind = "Agent" | "Secret";
export type RevisionType = "ADDED" | "MODIFIED" | "DELETED";

export interface Revision {
  rev: number;
  kind: RevisionKind;
  namespace: string;
  name: string;
  type: RevisionType;
  /** The object after the write, as its repository returns it; null for rows the migration made. */
  object: unknown;
}

interface Row {
  rev: number;
  kind: string;
  namespace: string;
  name: string;
  type: string;
  object: string | null;
}

/** Rows kept by default: enough for any watcher that was not gone for long. */
export const DEFAULT_KEEP_REVISIONS = 10_000;
/** Compaction runs once per this many appends. */
const COMPACT_EVERY = 500;

const toRevision = (r: Row): Revision => ({
  rev: r.rev,
  kind: r.kind as RevisionKind,
  namespace: r.namespace,
  name: r.name,
  type: r.type as RevisionType,
  object: r.object === null ? null : JSON.parse(r.object),
});

/**
 * `tx` is the store's transaction (store/index.ts): it joins an open transaction, and calls
 * `committed()` or `rolledBack()` here when its own one ends.
 */
export function createRevisionRepo(sqlite: Database, tx: <T>(fn: () => T) => T, opts: { keep?: number } = {}) {
  const keep = opts.keep ?? DEFAULT_KEEP_REVISIONS;
  const insert = lazy(() => sqlite.prepare<{ rev: number }, [string, string, string, string, string | null]>(
    "INSERT INTO revisions (kind, namespace, name, type, object) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING rev",
  ));
  const setObject = lazy(() => sqlite.prepare<unknown, [string, number]>("UPDATE revisions SET object = ?1 WHERE rev = ?2"));
  const maxRev = lazy(() => sqlite.prepare<{ rev: number | null }, []>("SELECT max(rev) AS rev FROM revisions"));
  const minRev = lazy(() => sqlite.prepare<{ rev: number | null }, []>("SELECT min(rev) AS rev FROM revisions"));
  const after = lazy(() => sqlite.prepare<Row, [number, number]>("SELECT * FROM revisions WHERE rev > ?1 ORDER BY rev LIMIT ?2"));
  const compact = lazy(() => sqlite.prepare<unknown, [number]>("DELETE FROM revisions WHERE rev <= ?1"));
  // The store's counter may run ahead of the log (compaction keeps the newest rows only, and sqlite_sequence keeps the highest ever).
  const sequence = lazy(() => sqlite.prepare<{ seq: number }, []>("SELECT seq FROM sqlite_sequence WHERE name = 'revisions'"));

  /** Appended inside the open transaction, announced when it commits. */
  let pending: Revision[] = [];
  const listeners = new Set<(r: Revision) => void>();
  let appends = 0;

  function announce(list: Revision[]) {
    for (const r of list) for (const l of listeners) l(r);
  }

  return {
    /**
     * Records one write under a new revision: `write(rev)` makes it (with `rev` as the object's
     * resourceVersion) and returns the object as it now is, which the log keeps. Runs in one
     * transaction (the caller's, or its own); returns the revision.
     */
    record(kind: RevisionKind, namespace: string, name: string, type: RevisionType, write: (rev: number) => unknown): number {
      return tx(() => {
        const { rev } = insert().get(kind, namespace, name, type, null)!;
        const object = write(rev) ?? null;
        if (object !== null) setObject().run(JSON.stringify(object), rev);
        pending.push({ rev, kind, namespace, name, type, object });
        if (++appends % COMPACT_EVERY === 0) compact().run(rev - keep);
        return rev;
      });
    },
    /** Call after the transaction committed: announces what it appended. */
    committed() {
      const list = pending;
      pending = [];
      announce(list);
    },
    /** Call after a rollback: what it appended never happened. */
    rolledBack() {
      pending = [];
    },
    /** Listens to committed revisions, in order. Returns the unsubscribe function. */
    subscribe(listener: (r: Revision) => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /** The newest revision of the store (0 when nothing was ever written). */
    current(): number {
      return Math.max(maxRev().get()?.rev ?? 0, sequence().get()?.seq ?? 0);
    },
    /** The oldest revision still in the log: a watch may start from `oldest() - 1` or later. */
    oldest(): number {
      return minRev().get()?.rev ?? this.current() + 1;
    },
    /** Revisions after `rev`, oldest first, at most `limit`. */
    after(rev: number, limit = 1000): Revision[] {
      return after().all(rev, limit).map(toRevision);
    },
    /** Drops every revision up to `rev` (tests and operators). */
    compact(rev: number) {
      compact().run(rev);
    },
  };
}

export type RevisionRepo = ReturnType<typeof createRevisionRepo>;
