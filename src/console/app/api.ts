/**
 * The console's only way to the server: same-origin fetch() with the access token in an
 * Authorization header (never in a URL or a cookie, so no other site can make the browser use it),
 * answers of the documented API parsed once, failures as ApiError with the server's Status message.
 * The token lives in sessionStorage: it is gone when the tab is closed and other tabs never see it.
 */

const TOKEN_KEY = "pai-console-token";

export const storedToken = (): string | null => sessionStorage.getItem(TOKEN_KEY);
export const storeToken = (token: string) => sessionStorage.setItem(TOKEN_KEY, token);
export const forgetToken = () => sessionStorage.removeItem(TOKEN_KEY);

/** A failed answer: its status and the message of its Status body (or a generic one). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Called on any 401: the token was revoked or the server forgot it; the app goes back to sign-in. */
let onUnauthorized: (message: string) => void = () => {};
export const whenUnauthorized = (fn: (message: string) => void) => {
  onUnauthorized = fn;
};

export interface Auth {
  token: string;
  /** The admin token: every namespace, agents' webhook URLs, rotation. */
  admin: boolean;
  /** The namespaces the token may read (a namespace token: its own). */
  namespaces: string[];
}

async function failure(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = (await res.json()) as { message?: unknown };
    if (typeof body.message === "string" && body.message) message = body.message;
  } catch {
    // Not a Status body: the status line says enough.
  }
  return new ApiError(res.status, message);
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Do not sign out on 401 (sign-in itself tries a token). */
  quiet401?: boolean;
}

/** A request to the API; any answer but 2xx becomes an ApiError. Paths are relative: same origin only. */
export async function request(token: string, path: string, opts: RequestOptions = {}): Promise<Response> {
  if (!path.startsWith("/") || path.startsWith("//")) throw new Error(`not a path on this server: ${path}`);
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: "application/json", ...opts.headers };
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, {
    method: opts.method ?? "GET",
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    signal: opts.signal,
    cache: "no-store",
    credentials: "omit",
    redirect: "error",
  });
  if (res.ok) return res;
  const err = await failure(res);
  if (res.status === 401 && !opts.quiet401) onUnauthorized(err.message);
  throw err;
}

export async function getJson<T>(token: string, path: string, opts: RequestOptions = {}): Promise<T> {
  return (await (await request(token, path, opts)).json()) as T;
}

/** Path segments encoded one by one (names come from the server and from the address bar). */
export const seg = (s: string) => encodeURIComponent(s);

/**
 * Which token this is, by trying reads: any valid token lists namespaces (a namespace token gets
 * its own only); only the admin token may list access tokens.
 */
export async function identify(token: string): Promise<Auth> {
  const ns = await getJson<List<{ metadata: { name: string } }>>(token, "/api/v1/namespaces", { quiet401: true });
  const namespaces = ns.items.map((n) => n.metadata.name).sort();
  const probe = await fetch(`/apis/pai.io/v1/namespaces/${seg(namespaces[0] ?? "default")}/accesstokens`, {
    headers: { authorization: `Bearer ${token}`, accept: "application/json" },
    cache: "no-store",
    credentials: "omit",
  });
  await probe.arrayBuffer();
  return { token, admin: probe.ok, namespaces };
}

// The documented shapes the console reads (see /openapi/json).

export interface List<T> {
  items: T[];
  metadata?: { continue?: string; resourceVersion?: string };
}

export interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  lastTransitionTime: string;
}

export type SecretValue = string | { secretRef: { name: string; key: string } };

export interface WebhookTrigger {
  allowCIDRs?: string[];
  linearSignatureSecret?: SecretValue;
  githubSignatureSecret?: SecretValue;
  allowedEnv?: string[];
  maxPending?: number;
}

export interface Agent {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; uid: string; generation: number; resourceVersion: string; creationTimestamp: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { models: string[]; triggers?: { webhook?: WebhookTrigger }[]; [k: string]: unknown };
  status?: { webhookUrl?: string; observedGeneration?: number; conditions?: Condition[] };
}

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  byModel?: Record<string, { inputTokens: number; outputTokens: number }>;
}

export interface Session {
  session: string;
  namespace: string;
  agentDefinition: string;
  title: string;
  phase: string;
  response: string | null;
  error: string | null;
  origin: { kind: string; sender?: string; delivery?: string; event?: string };
  env: { name: string }[];
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  usage: Usage | null;
}

export interface SessionEvent {
  id: number;
  type: string;
  content: unknown;
  timestamp: string;
}

export type { DeliveryObject as Delivery } from "../../api/openapi/schemas";
export type { OverviewMinute } from "../../service/overview";
export type { Overview } from "../../service/overview";

export interface SessionFile {
  path: string;
  size: number;
  modifiedAt: string;
}

export const FINAL_PHASES = ["Complete", "Error", "Cancelled"];
export const isFinal = (phase: string) => FINAL_PHASES.includes(phase);
