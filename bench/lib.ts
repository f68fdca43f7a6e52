/** Benchmark helpers: loopback servers as child processes (always killed), readiness polling, /proc memory, statistics, tables. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";

// ---- child processes --------------------------------------------------------------------------

const live = new Set<Subprocess>();
const killAll = () => {
  for (const p of live) p.kill("SIGKILL");
};
process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });

/** Kills `proc` with the others if the bench is interrupted; resolves with its exit code. */
export function track<T extends Subprocess>(proc: T): Promise<number> {
  live.add(proc);
  return proc.exited.finally(() => live.delete(proc));
}

export interface Child {
  pid: number;
  /** When spawn was called (performance.now()). */
  spawnedAt: number;
  exited: Promise<number>;
  /** Everything the child wrote to stderr so far (the first 64 KiB). */
  stderr(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the child is gone. */
  stop(graceMs?: number): Promise<void>;
}

/** `onStderr`, if given, sees all of the child's stderr as it comes (not only the first 64 KiB). */
export function spawnChild(cmd: string[], opts: { cwd: string; env: Record<string, string>; onStderr?: (text: string) => void }): Child {
  const spawnedAt = performance.now();
  const proc = Bun.spawn(cmd, { cwd: opts.cwd, env: opts.env, stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  live.add(proc);
  let err = "";
  (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr) {
      const text = decoder.decode(chunk, { stream: true });
      opts.onStderr?.(text);
      if (err.length < 65536) err += text;
    }
  })().catch(() => {});
  const exited = proc.exited.finally(() => live.delete(proc));
  return {
    pid: proc.pid,
    spawnedAt,
    exited,
    stderr: () => err,
    async stop(graceMs = 3000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

/**
 * Polls `url` every `intervalMs` until it answers 200; returns the time since the child was
 * spawned, in ms. Throws if the child exits first or `timeoutMs` passes.
 */
export async function msUntilOk(child: Child, url: string, { intervalMs = 1, timeoutMs = 10_000 } = {}): Promise<number> {
  let dead = false;
  child.exited.then(() => (dead = true));
  const deadline = child.spawnedAt + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return performance.now() - child.spawnedAt;
    } catch {
      // not listening yet
    }
    if (dead) throw new Error(`${url}: the server exited before it was ready:\n${child.stderr()}`);
    if (performance.now() > deadline) throw new Error(`${url}: not ready after ${timeoutMs} ms:\n${child.stderr()}`);
    await Bun.sleep(intervalMs);
  }
}

// ---- memory -----------------------------------------------------------------------------------

/** Resident set size now and at its peak, in bytes, from /proc/<pid>/status (Linux). */
export function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb("VmRSS"), peak: kb("VmHWM") };
}

/** Pids of the direct children of `pid` (pgrep -P), now. */
export function childPids(pid: number): number[] {
  const out = Bun.spawnSync(["pgrep", "-P", String(pid)], { stdout: "pipe", stderr: "ignore" });
  return new TextDecoder().decode(out.stdout).split(/\s+/).filter(Boolean).map(Number);
}

// ---- temp folders and the child environment ---------------------------------------------------

/** A temp folder removed by `cleanup()`. */
export function tempRoot(prefix = "pai-bench-") {
  const root = mkdtempSync(join(tmpdir(), prefix));
  let n = 0;
  return {
    root,
    /** A new empty folder inside the root. */
    dir(name = "d") {
      const d = join(root, `${name}-${++n}`);
      mkdirSync(d, { recursive: true });
      return d;
    },
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** This process's environment without PAI_* settings, with HOME and XDG_CONFIG_HOME in `home`. */
export function childEnv(home: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("PAI_")) env[k] = v;
  return { ...env, HOME: home, XDG_CONFIG_HOME: join(home, ".config") };
}

// ---- statistics and output --------------------------------------------------------------------

/** Nearest-rank percentile (p in 0..100) of a non-empty list. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const median = (values: number[]) => percentile(values, 50);
export const ms = (v: number) => `${v.toFixed(1)} ms`;
export const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
export const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;

/** Left-aligned plain-text table; the first row is the header, followed by a rule. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  const line = (r: string[]) => r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd();
  return [line(rows[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(line)].join("\n");
}

// ---- benchmark plumbing -----------------------------------------------------------------------

/** What every benchmark gets from bench/index.ts. */
export interface BenchContext {
  /** dist/pai, and the bare baseline server compiled with the same flags. */
  pai: string;
  bare: string;
  /** A Bun program that exits at once (bench/bare-exit.ts), compiled with the same flags. */
  bareExit: string;
  /** Repetitions per measurement. */
  runs: number;
  /** Repetitions of the cheap per-spawn measurements (sessions), default 200. */
  samples: number;
  tmp: ReturnType<typeof tempRoot>;
  /** An empty working folder and a clean environment for every child. */
  cwd: string;
  env: Record<string, string>;
}

/** One benchmark's result: a titled table and lines under it. */
export interface Report {
  title: string;
  rows: string[][];
  notes?: string[];
}

export type Benchmark = (ctx: BenchContext) => Promise<Report>;

export function formatReport(r: Report): string {
  return [r.title, "", table(r.rows), ...(r.notes?.length ? ["", ...r.notes] : [])].join("\n");
}

/** `pai serve` arguments on loopback (the bare server reads only --port and --host). */
export const serveCommand = (bin: string, port: number, dataDir: string, extra: string[] = []) => [
  bin, "serve", "--port", String(port), "--host", "127.0.0.1", "--data-dir", dataDir, ...extra,
];

/** A fake Anthropic API on 127.0.0.1 whose POST /v1/messages never answers until `stop()` (or the client leaves). */
export function hangingModel() {
  let received = 0;
  const waiting = new Set<() => void>();
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0, // no idle timeout: the requests hang on purpose
    async fetch(req) {
      if (req.method !== "POST" || new URL(req.url).pathname !== "/v1/messages") return new Response("not found", { status: 404 });
      await req.arrayBuffer();
      received++;
      await new Promise<void>((resolve) => {
        waiting.add(resolve);
        req.signal.addEventListener("abort", () => resolve(), { once: true });
      });
      return Response.json({ type: "error", error: { type: "overloaded_error", message: "the benchmark ended" } }, { status: 529 });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    received: () => received,
    async stop() {
      for (const release of waiting) release();
      waiting.clear();
      await server.stop(true);
    },
  };
}
