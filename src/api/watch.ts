/**
 * `?watch=true` on a list route, as kube-apiserver answers it: a chunked stream of JSON lines
 * `{"type": "ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK", "object": …}`, from `resourceVersion` on,
 * with BOOKMARK events (the newest resourceVersion) when `allowWatchBookmarks` is set, and an end
 * after `timeoutSeconds` (at most an hour; the client watches again from its last version). A
 * version the store no longer has is 410 Expired before the stream starts.
 */
import { parseResourceVersion, type WatchService } from "../service/watch";
import type { RevisionKind } from "../store/revisions";
import { BadRequestError } from "../domain/errors";

export interface WatchQuery {
  watch?: string;
  resourceVersion?: string;
  allowWatchBookmarks?: string;
  timeoutSeconds?: string;
}

export interface WatchRoute {
  kind: RevisionKind;
  /** The list's `kind` for BOOKMARK objects and `apiVersion`, e.g. `Agent`, `pai.io/v1`. */
  objectKind: string;
  apiVersion: string;
  namespace?: string;
  /** Objects as the API shows them (an Agent as it is; a secret row → the Secret object). */
  toObject: (stored: unknown) => unknown;
  filter?: (object: unknown) => boolean;
  list: () => { object: unknown; rev: number }[];
  current: (namespace: string, name: string) => unknown | undefined;
  /** Time between BOOKMARK events (default 30 s, or PAI_WATCH_BOOKMARK_MS). */
  bookmarkMs?: number;
}

const MAX_TIMEOUT_S = 3600;
/** How often a BOOKMARK is sent when asked for (PAI_WATCH_BOOKMARK_MS in tests). */
const BOOKMARK_MS = Number(process.env.PAI_WATCH_BOOKMARK_MS) > 0 ? Number(process.env.PAI_WATCH_BOOKMARK_MS) : 30_000;

/** `watch=true` or `watch=1`, as Kubernetes reads it. */
export const isWatch = (q: { watch?: string }) => q.watch === "true" || q.watch === "1";

export function watchResponse(watch: WatchService, request: Request, query: WatchQuery, route: WatchRoute): Response {
  const from = parseResourceVersion(query.resourceVersion);
  const timeoutText = query.timeoutSeconds;
  if (timeoutText !== undefined && !/^\d{1,6}$/.test(timeoutText)) throw new BadRequestError(`timeoutSeconds must be a whole number of seconds (got "${timeoutText.slice(0, 20)}")`);
  const timeoutMs = Math.min(Number(timeoutText ?? MAX_TIMEOUT_S) || MAX_TIMEOUT_S, MAX_TIMEOUT_S) * 1000;
  const bookmarks = query.allowWatchBookmarks === "true" || query.allowWatchBookmarks === "1";
  const encoder = new TextEncoder();
  let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  const early: Uint8Array[] = [];
  let closed = false;
  const line = (v: unknown) => {
    if (closed) return;
    const bytes = encoder.encode(`${JSON.stringify(v)}\n`);
    if (controller) controller.enqueue(bytes);
    else early.push(bytes);
  };
  // Started before the stream exists, so Expired and BadRequest reach the caller as a Status.
  const off = watch.watch({
    kind: route.kind,
    from,
    namespace: route.namespace,
    filter: route.filter && ((o) => route.filter!(route.toObject(o))),
    list: route.list,
    current: route.current,
    send: (e) => line({ type: e.type, object: route.toObject(e.object) }),
  });
  let bookmark: ReturnType<typeof setInterval> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const end = () => {
    if (closed) return;
    closed = true;
    off();
    clearInterval(bookmark);
    clearTimeout(timer);
    request.signal.removeEventListener("abort", end);
    try {
      controller?.close();
    } catch {
      // Already closed by the client.
    }
  };
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      // Bun sends the headers with the first byte: a blank line (JSON stream readers skip it) lets a
      // watcher know at once that its watch started, before anything changes.
      if (!early.length) c.enqueue(encoder.encode("\n"));
      for (const bytes of early.splice(0)) c.enqueue(bytes);
      if (bookmarks)
        bookmark = setInterval(
          () => line({ type: "BOOKMARK", object: { kind: route.objectKind, apiVersion: route.apiVersion, metadata: { resourceVersion: String(watch.current()) } } }),
          route.bookmarkMs ?? BOOKMARK_MS,
        );
      timer = setTimeout(end, timeoutMs);
      request.signal.addEventListener("abort", end);
      if (request.signal.aborted) end();
    },
    cancel() {
      end();
    },
  });
  return new Response(stream, { headers: { "content-type": "application/json", "cache-control": "no-cache", "x-content-type-options": "nosniff" } });
}
