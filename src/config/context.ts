/**
 * How the CLI finds a local server without flags: `pai serve` writes the server's URL and the path
 * of its 0600 admin-token file to ~/.config/pai/context.json (XDG_CONFIG_HOME honoured). The token
 * itself is never copied there.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export interface Context {
  server: string;
  tokenFile: string;
}

export function contextFile(env: Record<string, string | undefined> = process.env): string {
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), ".config");
  return join(base, "pai", "context.json");
}

export function writeContext(ctx: Context, env = process.env) {
  const file = contextFile(env);
  try {
    mkdirSync(join(file, ".."), { recursive: true, mode: 0o700 });
    writeFileSync(file, JSON.stringify(ctx, null, 2) + "\n", { mode: 0o600 });
  } catch {
    // A read-only home is no reason not to serve; the CLI can still be given --server/--token.
  }
}

export function readContext(env = process.env): Context | undefined {
  const file = contextFile(env);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Context;
  } catch {
    return undefined;
  }
}
