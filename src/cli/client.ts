/**
 * The CLI's HTTP client. Server: --server, PAI_SERVER, a running local server registered in the
 * context file (see config/context.ts), or http://127.0.0.1:8080. Token: --token, PAI_TOKEN, the
 * admin-token file of that server, or ./.pai/admin-token (PAI_DATA_DIR honoured).
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { contextFile, contextFor, pickContext } from "../config/context";

export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

export interface ClientOptions {
  server?: string;
  token?: string;
  /** PEM CA for an https server; default: the one the local server registered (config/context.ts). */
  ca?: string;
}

export const DEFAULT_SERVER = "http://127.0.0.1:8080";

/** Where the server address came from, to say something useful when it does not answer. */
export type ServerSource = { from: "flag" | "env" | "default"; registered: number } | { from: "context"; dataDir: string };

export function resolveConnection(opts: ClientOptions, env = process.env): { server: string; token?: string; ca?: string; source: ServerSource } {
  const explicit = opts.server ?? env.PAI_SERVER;
  const picked = explicit ? undefined : pickContext(env, { dataDir: env.PAI_DATA_DIR });
  const server = (explicit ?? picked?.entry?.server ?? DEFAULT_SERVER).replace(/\/+$/, "");
  const source: ServerSource = picked?.entry
    ? { from: "context", dataDir: picked.entry.dataDir }
    : { from: opts.server ? "flag" : env.PAI_SERVER ? "env" : "default", registered: picked?.registered ?? 0 };
  let token = opts.token ?? env.PAI_TOKEN;
  if (!token) {
    const entry = picked?.entry ?? contextFor(server, env);
    const candidates = [
      env.PAI_DATA_DIR ? join(resolve(env.PAI_DATA_DIR), "admin-token") : undefined,
      entry && entry.server.replace(/\/+$/, "") === server ? entry.tokenFile : undefined,
      resolve(".pai", "admin-token"),
    ];
    for (const file of candidates) {
      if (file && existsSync(file)) {
        try {
          token = readFileSync(file, "utf8").trim();
          break;
        } catch {
          // Not readable by this user: try the next place.
        }
      }
    }
  }
  const registered = picked?.entry ?? contextFor(server, env);
  const ca = opts.ca ?? (registered && registered.server.replace(/\/+$/, "") === server ? registered.ca : undefined);
  return { server, token, ca, source };
}

/** The message for a server that does not answer, saying where its address came from. */
function unreachable(server: string, error: string, source: ServerSource): string {
  switch (source.from) {
    case "context":
      return `cannot reach the pai server at ${server} (the local server of data dir ${source.dataDir}): ${error}; if it has stopped, start it again with \`pai serve\``;
    case "default":
      return (
        `no pai server is running: none is registered in ${contextFile()}${source.registered ? " that still runs" : ""}, ` +
        `and nothing answers at ${server} (${error}). Start one with \`pai serve\`, or pass --server URL (PAI_SERVER) for a server elsewhere`
      );
    default:
      return `cannot reach the pai server at ${server}: ${error} (is \`pai serve\` running there? check ${source.from === "flag" ? "--server" : "PAI_SERVER"})`;
  }
}

export function createClient(opts: ClientOptions) {
  const { server, token, ca, source } = resolveConnection(opts);
  // An https server with its own CA (pai serve --tls) is verified with that CA, never without verification.
  const tlsFetch = (url: string, init: RequestInit = {}) => fetch(url, ca ? { ...init, tls: { ca } } : init);
  /** Sends one request; the parsed body and the status of a 2xx, or a CliError with the server's message. */
  async function send<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    let res: Response;
    try {
      res = await tlsFetch(`${server}${path}`, {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
    } catch (err) {
      throw new CliError(unreachable(server, (err as Error).message, source));
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    if (!res.ok) {
      const message = (parsed as { message?: string })?.message ?? `HTTP ${res.status}`;
      if (res.status === 401)
        throw new CliError(`${message} (pass --token or PAI_TOKEN; on the server's machine the CLI reads the admin token by itself)`);
      throw new CliError(message);
    }
    return { status: res.status, body: parsed as T };
  }
  async function request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    return (await send<T>(method, path, body)).body;
  }
  const authHeader = (): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});
  return { server, token, ca, request, send, authHeader, fetch: tlsFetch };
}

export type Client = ReturnType<typeof createClient>;
