/**
 * A list+watch cache of one resource, as client-go's reflector and informer store keep one: list
 * (in pages), then watch from the list's resourceVersion, and keep the objects in memory so the
 * controller's hot paths (a webhook looking up its agent and secret) never wait on the API server.
 *
 * What the API server may do to a watch, and what we do about it:
 * - end it after timeoutSeconds: watch again at once from the last resourceVersion;
 * - say our resourceVersion is too old (an ERROR event with a 410 Status, a 410 answer to the
 *   watch, or a 410 on a list's `continue` token): list again and tell listeners what changed in
 *   between (ADDED, MODIFIED by resourceVersion, DELETED for objects that vanished);
 * - anything else (5xx, a dropped connection, a garbled stream, an ERROR event): wait (doubling,
 *   reset by the next good event) and watch again from the last resourceVersion.
 * Like client-go, the event a listener gets follows the cache, not the wire: an ADDED for an object
 * already cached is a MODIFIED, a MODIFIED for an unknown one an ADDED. resourceVersions are opaque
 * strings (Kubernetes says so), so they are compared for equality only, never ordered.
 */
import type { Logger } from "../lib/log";
import { KubeApiError, type KubeClient, type KubeList, type KubeObject } from "./client";

export type InformerEventType = "ADDED" | "MODIFIED" | "DELETED";
/** `old` is the cached object the event replaces or removes (undefined for ADDED). */
export type InformerListener<T extends KubeObject> = (type: InformerEventType, obj: T, old: T | undefined) => void;

export interface InformerStats {
  /** Complete lists (the first one and every relist). */
  lists: number;
  /** Watch requests made. */
  watches: number;
  /** Times the server said our resourceVersion or continue token was too old (410). */
  expired: number;
  /** Failed lists and watches (each followed by a backoff). */
  errors: number;
}

export interface Informer<T extends KubeObject> {
  /** Begins the list, then the watch. Idempotent; after stop() it does nothing. */
  start(): void;
  /** Aborts the request in flight and any backoff wait; no timer is left behind. Final. */
  stop(): void;
  /** Resolves once the first list is in the cache; never rejects (failures are retried). */
  synced(): Promise<void>;
  hasSynced(): boolean;
  /** `namespace` undefined for cluster-scoped objects. */
  get(namespace: string | undefined, name: string): T | undefined;
  list(namespace?: string): T[];
  /** Listeners are called in event order; one that throws is logged and the others still run. Returns the unsubscribe. */
  on(listener: InformerListener<T>): () => void;
  /** The last resourceVersion seen, from the list, an event or a bookmark. */
  resourceVersion(): string;
  stats(): InformerStats;
}

export interface InformerOptions {
  client: KubeClient;
  /** The collection, e.g. /apis/pai.io/v1/agents or /api/v1/namespaces/ns/secrets. */
  path: string;
  log: Logger;
  labelSelector?: string;
  fieldSelector?: string;
  /** `limit` of each list page (default 500). */
  pageSize?: number;
  /** The watch's timeoutSeconds (default 300): the server ends it and we watch again. */
  watchTimeoutSeconds?: number;
  /** The wait after a failure: doubling from initial to max (default 250 → 10000 ms). */
  backoffMs?: { initial: number; max: number };
}

interface Status {
  kind?: string;
  code?: number;
  reason?: string;
  message?: string;
}

/** The server no longer has the history we asked for: list again. */
class Expired extends Error {}

const keyOf = (o: KubeObject) => `${o.metadata.namespace ?? ""}/${o.metadata.name}`;
const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));
/** A watch shorter than this that brought no event is a failure, not a server timeout (client-go's rule): without it a server that closes every watch at once would be hammered. */
const SHORT_WATCH_MS = 1000;

export function createInformer<T extends KubeObject>(opts: InformerOptions): Informer<T> {
  const { client, path, log } = opts;
  const pageSize = opts.pageSize ?? 500;
  const watchTimeoutSeconds = opts.watchTimeoutSeconds ?? 300;
  const backoff = opts.backoffMs ?? { initial: 250, max: 10_000 };
  const selectors = { labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector };

  let cache = new Map<string, T>();
  let rv = "";
  const listeners = new Set<InformerListener<T>>();
  const stats: InformerStats = { lists: 0, watches: 0, expired: 0, errors: 0 };
  let started = false;
  let stopped = false;
  let isSynced = false;
  let markSynced: () => void = () => {};
  const syncedPromise = new Promise<void>((resolve) => (markSynced = resolve));
  const abort = new AbortController();
  let delay = backoff.initial;
  /** 410s since the last good event: a server that answers every relist's watch with 410 still gets a pause. */
  let expiredInARow = 0;

  function emit(type: InformerEventType, obj: T, old: T | undefined): void {
    // A copy: a listener may unsubscribe (itself or another) while we iterate.
    for (const listener of [...listeners]) {
      try {
        listener(type, obj, old);
      } catch (err) {
        log.error("informer listener failed", { path, event: type, object: keyOf(obj), error: messageOf(err) });
      }
    }
  }

  /** Waits ms, or less if stop() is called. */
  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        abort.signal.removeEventListener("abort", done);
        resolve();
      }, ms);
      abort.signal.addEventListener("abort", done, { once: true });
    });
  }

  async function list(): Promise<void> {
    const items: T[] = [];
    let listRv = "";
    let cont: string | undefined;
    let paged = true;
    for (;;) {
      let page: KubeList<T>;
      try {
        page = await client.request<KubeList<T>>("GET", path, {
          query: { ...selectors, limit: paged ? pageSize : undefined, continue: cont },
          signal: abort.signal,
        });
      } catch (err) {
        if (cont !== undefined && err instanceof KubeApiError && err.status === 410) {
          // The continue token outlived the server's history. Start over in one unpaged request
          // (client-go's pager does the same), so a slow paged list cannot expire forever.
          stats.expired++;
          log.warn("informer list continue expired; listing again without pages", { path });
          items.length = 0;
          cont = undefined;
          paged = false;
          continue;
        }
        throw err;
      }
      items.push(...(page.items ?? []));
      listRv = page.metadata?.resourceVersion || listRv;
      cont = page.metadata?.continue || undefined;
      if (!cont) break;
    }
    if (stopped) return;
    replace(items, listRv);
  }

  /** Puts a list in the cache and tells listeners how it differs from what was there. */
  function replace(items: T[], listRv: string): void {
    const previous = cache;
    const next = new Map<string, T>();
    for (const item of items) next.set(keyOf(item), item);
    cache = next;
    rv = listRv;
    stats.lists++;
    const first = !isSynced;
    isSynced = true;
    log.info(first ? "informer synced" : "informer relisted", { path, objects: next.size, resourceVersion: listRv });
    for (const [key, item] of next) {
      const old = previous.get(key);
      if (!old) emit("ADDED", item, undefined);
      else if (old.metadata.resourceVersion !== item.metadata.resourceVersion) emit("MODIFIED", item, old);
    }
    for (const [key, old] of previous) if (!next.has(key)) emit("DELETED", old, old);
    if (first) markSynced();
  }

  /** One watch from rv until the server ends it; throws on anything but a normal end. */
  async function watchOnce(): Promise<void> {
    stats.watches++;
    const startedAt = Date.now();
    let events = 0;
    const query = { ...selectors, resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds: watchTimeoutSeconds };
    log.debug("informer watching", { path, resourceVersion: rv });
    for await (const event of client.watch<T>(path, query, abort.signal)) {
      if (stopped) return;
      const obj = event.object;
      switch (event.type) {
        case "ADDED":
        case "MODIFIED": {
          const key = keyOf(obj);
          const old = cache.get(key);
          cache.set(key, obj);
          rv = obj.metadata.resourceVersion ?? rv;
          emit(old ? "MODIFIED" : "ADDED", obj, old);
          break;
        }
        case "DELETED": {
          const key = keyOf(obj);
          const old = cache.get(key);
          cache.delete(key);
          rv = obj.metadata.resourceVersion ?? rv;
          emit("DELETED", obj, old);
          break;
        }
        case "BOOKMARK":
          rv = obj.metadata?.resourceVersion ?? rv;
          break;
        case "ERROR": {
          const status = obj as unknown as Status;
          if (status.code === 410) throw new Expired(status.message ?? "resourceVersion too old");
          throw new Error(`watch ERROR event: ${status.code ?? "?"} ${status.reason ?? ""} ${status.message ?? ""}`.trim());
        }
        default:
          log.warn("informer ignored a watch event of unknown type", { path, type: String(event.type) });
          continue;
      }
      events++;
      delay = backoff.initial;
      expiredInARow = 0;
    }
    if (events === 0 && Date.now() - startedAt < SHORT_WATCH_MS && !stopped)
      throw new Error("very short watch: the server ended it at once without an event");
  }

  async function run(): Promise<void> {
    let needList = true;
    while (!stopped) {
      try {
        if (needList || !rv) {
          await list();
          needList = false;
        }
        if (stopped) return;
        await watchOnce();
      } catch (err) {
        if (stopped) return;
        const expired = err instanceof Expired || (err instanceof KubeApiError && err.status === 410);
        if (expired) {
          stats.expired++;
          needList = true;
          log.info("informer resourceVersion expired; listing again", { path, resourceVersion: rv });
          if (expiredInARow++ === 0) continue;
        } else {
          stats.errors++;
          log.warn("informer list/watch failed; retrying", { path, resourceVersion: rv, retryInMs: delay, error: messageOf(err) });
        }
        await sleep(delay);
        delay = Math.min(delay * 2, backoff.max);
      }
    }
  }

  return {
    start() {
      if (started || stopped) return;
      started = true;
      run().catch((err) => log.error("informer stopped on an unexpected error", { path, error: messageOf(err) }));
    },
    stop() {
      if (stopped) return;
      stopped = true;
      abort.abort();
    },
    synced: () => syncedPromise,
    hasSynced: () => isSynced,
    get: (namespace, name) => cache.get(`${namespace ?? ""}/${name}`),
    list: (namespace) => [...cache.values()].filter((o) => namespace === undefined || o.metadata.namespace === namespace),
    on(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    resourceVersion: () => rv,
    stats: () => ({ ...stats }),
  };
}
