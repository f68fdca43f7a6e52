/**
 * A small Kubernetes API client on Bun's fetch (its `tls` option carries the CA and client
 * certificate): JSON requests that turn a `Status` answer into a KubeApiError, and watches read as
 * a stream of JSON lines. This is all the controller needs; @kubernetes/client-node 1.x would add
 * ~4 MB to the binary for the same calls (the tests use it, as users' tools do, against our API).
 */
import type { KubeConnection } from "./config";

/** An answer of the API that is not a success: its HTTP status and the `Status` object's reason and message. */
export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** The parts of every object the client reads. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    creationTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }[];
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export interface KubeList<T extends KubeObject = KubeObject> {
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
export interface WatchEvent<T extends KubeObject = KubeObject> {
  type: WatchEventType;
  /** For ERROR, a `Status` (its `code` 410 means the resourceVersion is too old: list again). */
  object: T;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** Default application/json; merge and JSON patches set theirs. */
  contentType?: string;
  signal?: AbortSignal;
}

export interface KubeClient {
  readonly connection: KubeConnection;
  request<T = unknown>(method: string, path: string, opts?: RequestOptions): Promise<T>;
  /**
   * A watch (`?watch=1` is added) as the events the server sends, until it ends the stream or
   * `signal` aborts. A non-2xx answer to the request itself throws KubeApiError.
   */
  watch<T extends KubeObject = KubeObject>(path: string, query: RequestOptions["query"], signal?: AbortSignal): AsyncIterable<WatchEvent<T>>;
}

function urlOf(server: string, path: string, query?: RequestOptions["query"]): string {
  const url = new URL(server + path);
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
  return url.toString();
}

/** A KubeApiError from an answer: its `Status` body when it has one, else the status line and text. */
async function errorOf(res: Response, method: string, path: string): Promise<KubeApiError> {
  const text = await res.text().catch(() => "");
  let status: { reason?: string; message?: string; details?: unknown } = {};
  try {
    status = JSON.parse(text);
  } catch {
    // Not JSON: a proxy's page, say.
  }
  const message = status.message ?? (text.slice(0, 200) || res.statusText);
  return new KubeApiError(res.status, status.reason ?? "", `${method} ${path}: ${res.status} ${message}`, status.details);
}

export function createKubeClient(connection: KubeConnection, opts: { fetch?: typeof fetch } = {}): KubeClient {
  const doFetch = opts.fetch ?? fetch;
  const tls = {
    ...(connection.ca ? { ca: connection.ca } : {}),
    ...(connection.cert && connection.key ? { cert: connection.cert, key: connection.key } : {}),
    ...(connection.insecureSkipTLSVerify ? { rejectUnauthorized: false } : {}),
  };
  function headers(contentType?: string): Record<string, string> {
    const h: Record<string, string> = { accept: "application/json", "user-agent": "pai-controller" };
    const token = connection.token?.();
    if (token) h.authorization = `Bearer ${token}`;
    if (contentType) h["content-type"] = contentType;
    return h;
  }
  async function send(method: string, path: string, o: RequestOptions & { query?: RequestOptions["query"] }): Promise<Response> {
    const body = o.body === undefined ? undefined : JSON.stringify(o.body);
    return doFetch(urlOf(connection.server, path, o.query), {
      method,
      headers: headers(body === undefined ? undefined : (o.contentType ?? "application/json")),
      body,
      signal: o.signal,
      // Bun's fetch: the CA and client certificate of this connection.
      tls,
    } as RequestInit);
  }

  return {
    connection,
    async request<T>(method: string, path: string, o: RequestOptions = {}): Promise<T> {
      const res = await send(method, path, o);
      if (!res.ok) throw await errorOf(res, method, path);
      const text = await res.text();
      return (text ? JSON.parse(text) : undefined) as T;
    },
    async *watch<T extends KubeObject>(path: string, query: RequestOptions["query"], signal?: AbortSignal): AsyncIterable<WatchEvent<T>> {
      const res = await send("GET", path, { query: { ...query, watch: 1 }, signal });
      if (!res.ok) throw await errorOf(res, "GET", path);
      if (!res.body) return;
      const decoder = new TextDecoder();
      let buffered = "";
      const reader = res.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          buffered += decoder.decode(value, { stream: true });
          let nl: number;
          while ((nl = buffered.indexOf("\n")) >= 0) {
            const line = buffered.slice(0, nl).trim();
            buffered = buffered.slice(nl + 1);
            // Servers may send blank lines to flush headers early.
            if (line) yield JSON.parse(line) as WatchEvent<T>;
          }
        }
        const rest = buffered.trim();
        if (rest) yield JSON.parse(rest) as WatchEvent<T>;
      } finally {
        reader.cancel().catch(() => {});
      }
    },
  };
}
