/**
 * The CLI's HTTP client. Server: --server, PAI_SERVER, the local context file, or
 * http://127.0.0.1:8080. Token: --token, PAI_TOKEN, the admin-token file named by the context, or
 * ./.pai/admin-token (PAI_DATA_DIR honoured).
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { readContext } from "../config/context";

export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

export interface ClientOptions {
  server?: string;
  token?: string;
}

export function resolveConnection(opts: ClientOptions, env = process.env): { server: string; token?: string } {
  const ctx = readContext(env);
  const server = (opts.server ?? env.PAI_SERVER ?? ctx?.server ?? "http://127.0.0.1:8080").replace(/\/+$/, "");
  let token = opts.token ?? env.PAI_TOKEN;
  if (!token) {
    const candidates = [
      env.PAI_DATA_DIR ? join(resolve(env.PAI_DATA_DIR), "admin-token") : undefined,
      ctx && ctx.server === server ? ctx.tokenFile : undefined,
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
  return { server, token };
}

export function createClient(opts: ClientOptions) {
  const { server, token } = resolveConnection(opts);
  async function request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${server}${path}`, {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
    } catch (err) {
      throw new CliError(`cannot reach the pai server at ${server}: ${(err as Error).message} (is \`pai serve\` running? set --server or PAI_SERVER)`);
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
    return parsed as T;
  }
  const authHeader = (): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});
  return { server, request, authHeader };
}

export type Client = ReturnType<typeof createClient>;
