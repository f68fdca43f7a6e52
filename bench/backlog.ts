/**
 * Backlog benchmarks, against `dist/pai serve`:
 *
 * 1. Restart with a backlog: time from spawn to the first 200 from /readyz, and the server's RSS
 *    once ready, on a data dir with 0 Pending sessions and on one with 1,000,000, rounds
 *    interleaved. The million rows are bulk-inserted into the stopped server's pai.db (one
 *    transaction, the server's own insert columns); their agent's model is a local fake that
 *    never answers and the server runs with --max-sessions 1, so one session holds the only slot
 *    and the rest stay Pending while the server is measured.
 * 2. Child priority: fire-and-forget webhook accepts per second while pai/echo sessions (CPU-busy
 *    children: each boots a Bun process) run 8 at a time beside the server on the same cores, with
 *    --session-nice 0 (children at the server's priority) and 10 (the default), rounds
 *    interleaved; also how many sessions completed meanwhile, since what the server gains the
 *    children lose.
 */
import { Database } from "bun:sqlite";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { LoadResult } from "./load";
import { CONNECTIONS, DURATION_S, load, ROUNDS, WARMUP_S } from "./webhooks";
import { freePort, hangingModel, mb, median, memory, ms, msUntilOk, serveCommand, spawnChild, type BenchContext, type Child, type Report } from "./lib";

const BACKLOG = 1_000_000;
const IDLE_MS = 1000;
const API = "/apis/pai.io/v1/namespaces/default";
const PARKED_MODEL = "anthropic/claude-bench-parked";

// ---- a pai server ---------------------------------------------------------------------------------

interface Pai {
  child: Child;
  base: string;
  port: number;
  readyMs: number;
  api(path: string, init?: { method?: string; json?: unknown }): Promise<unknown>;
  text(path: string): Promise<string>;
}

async function startPai(ctx: BenchContext, dataDir: string, extra: string[], env: Record<string, string>): Promise<Pai> {
  const port = freePort();
  const child = spawnChild(serveCommand(ctx.pai, port, dataDir, extra), { cwd: ctx.cwd, env: { ...ctx.env, ...env } });
  const base = `http://127.0.0.1:${port}`;
  let readyMs: number;
  try {
    readyMs = await msUntilOk(child, `${base}/readyz`, { timeoutMs: 120_000 });
  } catch (err) {
    await child.stop();
    throw err;
  }
  const token = readFileSync(join(dataDir, "admin-token"), "utf8").trim();
  const request = async (path: string, init: { method?: string; json?: unknown } = {}) => {
    const res = await fetch(`${base}${path}`, {
      method: init.method ?? "GET",
      headers: { authorization: `Bearer ${token}`, ...(init.json !== undefined ? { "content-type": "application/json" } : {}) },
      body: init.json !== undefined ? JSON.stringify(init.json) : undefined,
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) throw new Error(`${init.method ?? "GET"} ${path}: HTTP ${res.status} ${await res.text()}\n${child.stderr()}`);
    return res;
  };
  return {
    child,
    base,
    port,
    readyMs,
    api: async (path, init) => (await request(path, init)).json(),
    text: async (path) => (await request(path)).text(),
  };
}

const gauge = (metrics: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(metrics)?.[1] ?? NaN);

/** PUTs an agent; with a webhook trigger, returns its webhook URL pointed at this server. */
async function putAgent(pai: Pai, name: string, spec: Record<string, unknown>): Promise<string | undefined> {
  await pai.api(`${API}/agents/${name}`, { method: "PUT", json: { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name }, spec } });
  if (!(spec.triggers as unknown[] | undefined)?.length) return undefined;
  const deadline = performance.now() + 10_000;
  for (;;) {
    const url = ((await pai.api(`${API}/agents/${name}`)) as { status?: { webhookUrl?: string } }).status?.webhookUrl;
    if (url) return `${pai.base}${new URL(url).pathname}`;
    if (performance.now() > deadline) throw new Error(`agent ${name}: no status.webhookUrl after 10 s`);
    await Bun.sleep(10);
  }
}

// ---- 1. restart with a backlog ------------------------------------------------------------------

/** Inserts `n` Pending sessions of `agent` into a stopped server's pai.db, as the server's insert writes them; ms. */
function bulkInsert(dataDir: string, agent: string, n: number): number {
  const t0 = performance.now();
  const db = new Database(join(dataDir, "pai.db"), { strict: true });
  try {
    db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL");
    const start = (db.query("SELECT coalesce(max(seq), 0) AS seq FROM sessions").get() as { seq: number }).seq;
    const insert = db.prepare(
      `INSERT INTO sessions (namespace, name, uid, agent_definition, generation, spec, title, env, origin, phase, payload, callback_url, callback_state, seq, created_at)
       VALUES ('default', ?1, ?2, ?3, 1, ?4, ?5, '[]', '{"kind":"webhook","sender":"generic"}', 'Pending', NULL, NULL, NULL, ?6, ?7)`,
    );
    const spec = JSON.stringify({ models: [PARKED_MODEL], triggers: [{ webhook: {} }] });
    const createdAt = new Date().toISOString();
    db.transaction(() => {
      for (let i = 1; i <= n; i++) insert.run(`${agent}-wh-${(start + i).toString(16).padStart(8, "0")}`, crypto.randomUUID(), agent, spec, `backlog ${i}`, start + i, createdAt);
    })();
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  } finally {
    db.close();
  }
  return performance.now() - t0;
}

interface Restart {
  readyMs: number;
  rss: number;
  peak: number;
  pending: number;
  running: number;
  stopMs: number;
}

export async function backlogRestart(ctx: BenchContext): Promise<Report> {
  const fake = hangingModel();
  const env = { ANTHROPIC_API_KEY: "x", ANTHROPIC_BASE_URL: fake.url };
  const extra = ["--max-sessions", "1"];
  try {
    const dirs = { empty: ctx.tmp.dir("data-backlog-0"), full: ctx.tmp.dir("data-backlog-1m") };
    type Case = keyof typeof dirs;
    for (const dir of Object.values(dirs)) {
      const pai = await startPai(ctx, dir, extra, env);
      try {
        await putAgent(pai, "parked", { models: [PARKED_MODEL], triggers: [{ webhook: {} }] });
      } finally {
        await pai.child.stop(15_000);
      }
    }
    const insertMs = bulkInsert(dirs.full, "parked", BACKLOG);

    const restart = async (c: Case): Promise<Restart> => {
      const pai = await startPai(ctx, dirs[c], extra, env);
      try {
        await Bun.sleep(IDLE_MS);
        const mem = memory(pai.child.pid);
        const metrics = await pai.text("/metrics");
        const t0 = performance.now();
        await pai.child.stop(15_000);
        return { readyMs: pai.readyMs, rss: mem.rss, peak: mem.peak, pending: gauge(metrics, "pai_sessions_pending"), running: gauge(metrics, "pai_sessions_running"), stopMs: performance.now() - t0 };
      } finally {
        await pai.child.stop(5000);
      }
    };
    const order = Object.keys(dirs) as Case[];
    for (const c of order) await restart(c); // fills the page cache, as a restart on a used machine finds it
    const rounds = Math.max(3, Math.ceil(ctx.runs / 5));
    const results: Record<Case, Restart[]> = { empty: [], full: [] };
    for (let i = 0; i < rounds; i++)
      for (let j = 0; j < order.length; j++) {
        const c = order[(i + j) % order.length]!;
        results[c].push(await restart(c));
      }

    const m = (c: Case, pick: (r: Restart) => number) => median(results[c].map(pick));
    const label = { empty: "0 Pending sessions", full: `${BACKLOG.toLocaleString("en")} Pending sessions (bulk-inserted)` };
    const row = (c: Case) => [
      label[c], ms(m(c, (r) => r.readyMs)), results[c].map((r) => r.readyMs.toFixed(0)).join(", "), mb(m(c, (r) => r.rss)), mb(m(c, (r) => r.peak)),
      results[c].map((r) => `${r.pending}/${r.running}`).join(", "), ms(m(c, (r) => r.stopMs)),
    ];
    const dbBytes = Bun.file(join(dirs.full, "pai.db")).size;
    return {
      title:
        `Restart with a backlog: dist/pai serve --max-sessions 1 on a data dir with 0 and with ${BACKLOG.toLocaleString("en")} Pending sessions (one agent, its model a local fake that never answers), ` +
        `${rounds} restarts each, interleaved, after one untimed start each`,
      rows: [
        ["data dir", "spawn → /readyz 200 (median)", "runs (ms)", `RSS ${IDLE_MS / 1000} s after ready`, "peak RSS", "pai_sessions_pending/running", "SIGTERM → exit"],
        ...order.map(row),
        ["difference", ms(m("full", (r) => r.readyMs) - m("empty", (r) => r.readyMs)), "", mb(m("full", (r) => r.rss) - m("empty", (r) => r.rss)), mb(m("full", (r) => r.peak) - m("empty", (r) => r.peak)), "", ""],
      ],
      notes: [
        `The ${BACKLOG.toLocaleString("en")} rows were inserted into the stopped server's pai.db in ${(insertMs / 1000).toFixed(1)} s (one transaction, with the server's indexes); pai.db is ${mb(dbBytes)}.`,
        `At start the server counts the Pending rows (an index count) and learns which agents have any; it reads an agent's sessions a page at a time when its turn comes. ` +
          `Each restart ends the one running session ("interrupted: the server stopped"), so the backlog shrinks by one per round.`,
      ],
    };
  } finally {
    await fake.stop();
  }
}

// ---- 2. child priority ----------------------------------------------------------------------------

interface PriorityRound extends LoadResult {
  serverCpu: number;
  /** Sessions that reached Complete during the round (from pai.db after the server stopped). */
  complete: number;
  stored: number;
}

async function priorityRound(ctx: BenchContext, nice: number): Promise<PriorityRound> {
  const dataDir = ctx.tmp.dir(`data-nice-${nice}`);
  // --max-pending high enough that the backlog of a 6 s flood is accepted, not refused.
  const pai = await startPai(ctx, dataDir, ["--max-sessions", "8", "--max-pending", "10000000", "--session-nice", String(nice)], {});
  let result: LoadResult & { serverCpu: number };
  try {
    const url = (await putAgent(pai, "echo", { models: ["pai/echo"], triggers: [{ webhook: {} }] }))!;
    result = await load(url, pai.port, pai.child.pid);
  } finally {
    await pai.child.stop(15_000);
  }
  const db = new Database(join(dataDir, "pai.db"), { readonly: true });
  try {
    const count = (where: string) => (db.query(`SELECT count(*) AS n FROM sessions${where}`).get() as { n: number }).n;
    return { ...result, complete: count(" WHERE phase = 'Complete'"), stored: count("") };
  } finally {
    db.close();
  }
}

export async function sessionPriority(ctx: BenchContext): Promise<Report> {
  const cases = { 0: "--session-nice 0: children at the server's priority", 10: "--session-nice 10 (default): children 10 nice levels below" } as const;
  const order = [0, 10] as const;
  const results: Record<(typeof order)[number], PriorityRound[]> = { 0: [], 10: [] };
  for (let i = 0; i < ROUNDS; i++)
    for (let j = 0; j < order.length; j++) {
      const c = order[(i + j) % order.length]!;
      results[c].push(await priorityRound(ctx, c));
    }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const rate = (c: (typeof order)[number]) => mean(results[c].map((r) => r.rate));
  const row = (c: (typeof order)[number]) => {
    const rs = results[c];
    return [
      cases[c], `${rate(c).toFixed(0)}/s`, rs.map((r) => r.rate.toFixed(0)).join(", "), ms(mean(rs.map((r) => r.p50))), ms(mean(rs.map((r) => r.p99))),
      `${((mean(rs.map((r) => r.serverCpu)) / DURATION_S) * 100).toFixed(0)}%`, rs.map((r) => String(r.complete)).join(", "),
      rs.map((r) => (r.stored === r.okTotal ? "equal" : `${r.stored} ≠ ${r.okTotal}`)).join(", "),
    ];
  };
  return {
    title:
      `Child priority: fire-and-forget webhook accepts while pai/echo sessions run 8 at a time beside the server (pai serve --max-sessions 8), ` +
      `${CONNECTIONS} keep-alive connections, ${WARMUP_S} s warm-up then ${DURATION_S} s counted, ${ROUNDS} rounds per case interleaved, each on a fresh server`,
    rows: [["case", "200s/s (mean)", "rounds", "p50", "p99", "server CPU", "sessions Complete per round", "sessions stored vs 200s"], ...order.map(row)],
    notes: [
      `nice 10 / nice 0: ${((rate(10) / rate(0)) * 100).toFixed(0)}% of the accept rate. Every accepted request starts an echo session; the backlog waits Pending, so "sessions Complete" is what the children got done meanwhile.`,
    ],
  };
}
