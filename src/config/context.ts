/**
 * How the CLI finds a local server without flags. Every `pai serve` registers itself in
 * ~/.config/pai/context.json (XDG_CONFIG_HOME honoured), one entry per data dir: the server's URL,
 * the path of its 0600 admin-token file, its pid and when it started. It removes its entry when it
 * stops. The token itself is never copied there. The CLI takes the entry that fits: the data dir
 * it was pointed at, else ./.pai, else the newest server still running. Several servers on one
 * machine therefore do not hide each other, and a stopped one does not hide a running one.
 */
import { existsSync, mkdirSync, readFileSync, realpathSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { writeFileAtomic } from "../lib/atomic-write";

export interface Context {
  server: string;
  tokenFile: string;
  /** PEM of the CA that verifies an https server (public, unlike the token): the CLI and `pai kubeconfig` trust it. */
  ca?: string;
}

export interface ContextEntry extends Context {
  dataDir: string;
  /** Absent in entries of the old single-server format: then nobody knows if it still runs. */
  pid?: number;
  startedAt?: string;
}

interface ContextFileV2 {
  version: 2;
  servers: Record<string, Omit<ContextEntry, "dataDir">>;
}

type Env = Record<string, string | undefined>;

export function contextFile(env: Env = process.env): string {
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), ".config");
  return join(base, "pai", "context.json");
}

/** A data dir as one key, whichever way it was spelled (relative, through a symlink). */
export function dataDirKey(dir: string): string {
  const abs = resolve(dir);
  try {
    return realpathSync(abs);
  } catch {
    return abs;
  }
}

/** Every registered server, old format included (as one entry without a pid). */
export function readContexts(env: Env = process.env): ContextEntry[] {
  const file = contextFile(env);
  if (!existsSync(file)) return [];
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return [];
  }
  if (!raw || typeof raw !== "object") return [];
  const v2 = raw as Partial<ContextFileV2>;
  if (v2.version === 2 && v2.servers && typeof v2.servers === "object") {
    return Object.entries(v2.servers)
      .filter(([, e]) => e && typeof e.server === "string" && typeof e.tokenFile === "string")
      .map(([dataDir, e]) => ({ ...e, dataDir }));
  }
  const old = raw as Partial<Context>;
  if (typeof old.server === "string" && typeof old.tokenFile === "string") return [{ server: old.server, tokenFile: old.tokenFile, dataDir: dirname(old.tokenFile) }];
  return [];
}

/** True when the entry's process still exists (or, for an old entry without pid, when we cannot tell). */
export function isRunning(entry: ContextEntry): boolean {
  if (entry.pid === undefined) return true;
  try {
    process.kill(entry.pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as { code?: string }).code === "EPERM";
  }
}

function writeContexts(entries: ContextEntry[], env: Env) {
  const file = contextFile(env);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const body: ContextFileV2 = { version: 2, servers: {} };
  for (const { dataDir, ...rest } of entries) body.servers[dataDir] = rest;
  // Written aside and renamed: a reader never sees half a file, and servers starting together
  // each replace the whole file rather than interleave their writes.
  writeFileAtomic(file, JSON.stringify(body, null, 2) + "\n", 0o600);
}

/**
 * Read, change, write, and check that the change is there: another server may have rewritten the
 * file between our read and our write, in which case we do it again on its version.
 */
function update(env: Env, change: (entries: ContextEntry[]) => ContextEntry[], done: (entries: ContextEntry[]) => boolean) {
  for (let attempt = 0; attempt < 5; attempt++) {
    writeContexts(change(readContexts(env)), env);
    if (done(readContexts(env))) return;
  }
}

/**
 * Registers a running server for the CLI; returns the function that removes the entry again (call
 * it when the server stops). Entries of servers that are gone are dropped on the way. A read-only
 * home is no reason not to serve: the CLI can still be given --server and --token.
 */
export function registerContext(ctx: Context & { dataDir: string }, env: Env = process.env): () => void {
  const key = dataDirKey(ctx.dataDir);
  const mine = (e: ContextEntry) => e.dataDir === key && e.pid === process.pid;
  const entry: ContextEntry = { server: ctx.server, tokenFile: ctx.tokenFile, ...(ctx.ca ? { ca: ctx.ca } : {}), dataDir: key, pid: process.pid, startedAt: new Date().toISOString() };
  try {
    update(
      env,
      // An old-format entry (no pid) was written by an older pai that this one replaces.
      (entries) => [...entries.filter((e) => e.dataDir !== key && e.pid !== undefined && isRunning(e)), entry],
      (entries) => entries.some(mine),
    );
  } catch {
    return () => {};
  }
  let removed = false;
  return () => {
    if (removed) return;
    removed = true;
    try {
      update(
        env,
        (entries) => entries.filter((e) => !mine(e)),
        (entries) => !entries.some(mine),
      );
    } catch {
      // As above: nothing to clean up in a home we cannot write.
    }
  };
}

/**
 * The entry the CLI should use: the one for `dataDir` (PAI_DATA_DIR) if given, else the one for
 * ./.pai, else the most recently started server that still runs. Old-format entries come last.
 */
export function pickContext(env: Env = process.env, opts: { dataDir?: string; cwd?: string } = {}): { entry?: ContextEntry; registered: number } {
  const all = readContexts(env);
  const live = all.filter(isRunning);
  const wanted = [opts.dataDir, join(opts.cwd ?? process.cwd(), ".pai")].filter((d): d is string => !!d).map(dataDirKey);
  for (const dir of wanted) {
    const hit = live.find((e) => e.dataDir === dir);
    if (hit) return { entry: hit, registered: all.length };
  }
  const newest = live.filter((e) => e.pid !== undefined).sort((a, b) => (b.startedAt ?? "").localeCompare(a.startedAt ?? ""))[0];
  return { entry: newest ?? live[0], registered: all.length };
}

/** The first entry for `server` (the CLI's --server may name a registered server: use its token). */
export function contextFor(server: string, env: Env = process.env): ContextEntry | undefined {
  const matching = readContexts(env).filter((e) => e.server === server);
  return matching.find(isRunning) ?? matching[0];
}
