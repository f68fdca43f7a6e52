/**
 * Watches of agents and secrets, the Kubernetes way: from a resourceVersion, every change after it
 * (replayed from the store's revision log, then live as writes commit), or, without one, the
 * current objects as ADDED and then the changes. A resourceVersion older than the log's oldest
 * revision is Expired (410): the watcher lists again. Everything from subscribing to the end of the
 * replay runs in one turn of the event loop, so no write can fall between the two.
 */
import { ExpiredError, BadRequestError } from "../domain/errors";
import type { Revision, RevisionKind, RevisionRepo, RevisionType } from "../store/revisions";

export interface WatchEvent {
  type: RevisionType;
  /** The object as its repository returns it (an Agent; a secret row). */
  object: unknown;
  rev: number;
}

export interface WatchOptions {
  kind: RevisionKind;
  /** The resourceVersion to start after; undefined or 0: the current objects first, as ADDED. */
  from?: number;
  /** Only this namespace's objects (undefined: all). */
  namespace?: string;
  /** Only objects this accepts (names, labels). */
  filter?: (object: unknown) => boolean;
  /** The current objects (of the namespace, or all), for a watch without a resourceVersion. */
  list: () => { object: unknown; rev: number }[];
  /** The current object, for revisions written before the log kept objects. */
  current: (namespace: string, name: string) => unknown | undefined;
  send: (event: WatchEvent) => void;
}

/** Parses a `resourceVersion` query value: a whole number, or none. */
export function parseResourceVersion(value: string | undefined): number | undefined {
  if (value === undefined || value === "") return undefined;
  if (!/^\d{1,15}$/.test(value)) throw new BadRequestError(`resourceVersion "${value.slice(0, 40)}" is not a resource version this server made (a whole number)`);
  return Number(value);
}

/** What a watch reads: the store's revision log (SQLite's, or a replica's copy of Postgres's: ../objects/pg-revisions.ts). */
export type RevisionLog = Pick<RevisionRepo, "current" | "oldest" | "after" | "subscribe">;

export function createWatchService(deps: { store: { revisions: RevisionLog } }) {
  const { revisions } = deps.store;

  return {
    /** The store's newest revision: a list's resourceVersion. */
    current: () => revisions.current(),

    /** Starts a watch; returns the function that ends it. Throws ExpiredError for a version the log no longer holds. */
    watch(o: WatchOptions): () => void {
      const matches = (r: Revision) => r.kind === o.kind && (o.namespace === undefined || r.namespace === o.namespace);
      const objectOf = (r: Revision) => r.object ?? o.current(r.namespace, r.name);
      let last: number;
      const deliver = (r: Revision) => {
        if (r.rev <= last) return;
        last = r.rev;
        if (!matches(r)) return;
        const object = objectOf(r);
        if (object === undefined || (o.filter && !o.filter(object))) return;
        o.send({ type: r.type, object, rev: r.rev });
      };
      // Subscribed first; until the replay below is done, nothing can commit (same turn).
      const off = revisions.subscribe(deliver);
      try {
        if (!o.from) {
          last = revisions.current();
          for (const { object, rev } of o.list()) if (!o.filter || o.filter(object)) o.send({ type: "ADDED", object, rev });
        } else {
          if (o.from < revisions.oldest() - 1 && o.from < revisions.current())
            throw new ExpiredError(`too old resource version: ${o.from} (${revisions.oldest() - 1})`);
          last = o.from;
          for (let page = revisions.after(last); page.length; page = revisions.after(last)) for (const r of page) deliver(r);
        }
      } catch (err) {
        off();
        throw err;
      }
      return off;
    },
  };
}

export type WatchService = ReturnType<typeof createWatchService>;
