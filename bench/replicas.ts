/**
 * Replicas on Postgres (`pai serve --kubernetes --database postgres://…`), over real HTTP on
 * loopback: 1, 2 and 3 replicas sharing a real Postgres (test/pg.ts) beside one replica on SQLite
 * (`pai serve --kubernetes` without --database), all against the same fake cluster (test/cluster.ts:
 * a pai API server with Leases by test/fakes/kube-leases.ts), so only the store differs. Fresh
 * replicas for every case; the sessions tables are emptied between cases, so no case inherits the
 * backlog of the one before.
 *
 * 1. Fire-and-forget accepts/s in bench/webhooks.ts's `parked` setting (default --max-sessions 8
 *    per replica, an agent on a silent model: the children park, the rest waits Pending), driven by
 *    bench/load.ts with bench/webhooks.ts's connections, warm-up and window. The connections are
 *    dealt round-robin over the replicas: one generator process per replica with its share.
 * 2. Echo sessions/s: 300 fire-and-forget webhooks to a pai/echo agent, dealt round-robin over the
 *    replicas, timed from the first request until the store counts all of them Complete.
 * 3. The shared store's cost per session: CPU of every Postgres process (postmaster, backends,
 *    background workers) during (2) over the sessions, beside the replicas' own CPU and the wall
 *    time per session against the SQLite replica.
 *
 * On a 2-core machine every replica, Postgres and the generator share the same two cores, so more
 * replicas cannot be faster here: the figures show what the shared store and the coordination cost.
 */
import { Database } from "bun:sqlite";
import { SQL } from "bun";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startCluster, type Cluster } from "../test/cluster";
import { HAVE_POSTGRES, startPostgres, type TestPostgres } from "../test/pg";
import type { LoadResult } from "./load";
import { childPids, freePort, hangingModel, ms, msUntilOk, serveCommand, spawnChild, track, type BenchContext, type Child, type Report } from "./lib";
import { BODY, CONNECTIONS, DURATION_S, loadCommand, WARMUP_S } from "./webhooks";

const ECHO_SESSIONS = 300;
/** Webhooks in flight at once while sending the echo sessions. */
const ECHO_SENDERS = 16;
/** Echo sessions run before the timed ones on fresh replicas (first spawns, caches, connections). */
const ECHO_WARMUP_PER_REPLICA = 4;
const POLL_MS = 20;
/** Rounds per case, the order of the cases rotating from round to round. */
const ROUNDS = 2;
/** The CPU samples of (1) sit this far inside the generators' counted window at each end. */
const CPU_INSET_S = 0.5;
const NO_PENDING_CAP = ["--max-pending", "100000000"];
/** Shared by every replica, as behind one ingress, so a new leader rewrites no status. */
const PUBLIC_URL = "http://pai.bench.invalid";
const SILENT_MODEL = "anthropic/claude-bench-hold";
const LOAD_AGENT = "load";
const ECHO_AGENT = "echo";
const API = "/apis/pai.io/v1/namespaces/default";

type Store = "sqlite" | "postgres";
interface Case {
  store: Store;
  replicas: number;
  label: string;
}
const CASES: Case[] = [
  { store: "sqlite", replicas: 1, label: "SQLite, 1 replica (baseline)" },
  { store: "postgres", replicas: 1, label: "Postgres, 1 replica" },
  { store: "postgres", replicas: 2, label: "Postgres, 2 replicas" },
  { store: "postgres", replicas: 3, label: "Postgres, 3 replicas" },
];

// ---- CPU from /proc (clock ticks assumed 100/s, as bench/webhooks.ts) -----------------------------

/** utime+stime of `pid` and cutime+cstime (its reaped children), seconds; zeros once it is gone. */
function times(pid: number): { self: number; reaped: number } {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return { self: (Number(f[11]) + Number(f[12])) / 100, reaped: (Number(f[13]) + Number(f[14])) / 100 };
  } catch {
    return { self: 0, reaped: 0 };
  }
}

/**
 * CPU of a process and all its children so far: its own, its reaped children's, and its live
 * children's. Monotonic while the process lives (a child that exits moves from live to reaped).
 */
function treeCpu(pid: number): number {
  const t = times(pid);
  return t.self + t.reaped + childPids(pid).reduce((a, c) => a + times(c).self, 0);
}

/** The postmaster listening on `port`: the postgres process whose argv has `-p <port>`. */
function postmasterOf(port: number): number {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
    } catch {
      continue;
    }
    const p = argv.indexOf("-p");
    if (argv[0]?.endsWith("postgres") && p > 0 && argv[p + 1] === String(port)) return Number(entry);
  }
  throw new Error(`no postgres process with -p ${port} in /proc`);
}

// ---- replicas ------------------------------------------------------------------------------------

interface Replica {
  child: Child;
  base: string;
  port: number;
  dataDir: string;
}

async function startReplicas(ctx: BenchContext, cluster: Cluster, c: Case, pg: TestPostgres, env: Record<string, string>): Promise<Replica[]> {
  const started = await Promise.allSettled(
    Array.from({ length: c.replicas }, async (): Promise<Replica> => {
      const port = freePort();
      const dataDir = ctx.tmp.dir("data-replica");
      const extra = ["--kubernetes", "--kubeconfig", cluster.kubeconfig, "--lease-namespace", "pai-system", "--public-url", PUBLIC_URL, ...NO_PENDING_CAP];
      if (c.store === "postgres") extra.push("--database", pg.url);
      const child = spawnChild(serveCommand(ctx.pai, port, dataDir, extra), { cwd: ctx.cwd, env: { ...ctx.env, ...env } });
      const base = `http://127.0.0.1:${port}`;
      try {
        await msUntilOk(child, `${base}/readyz`, { intervalMs: 10, timeoutMs: 20_000 });
      } catch (err) {
        await child.stop();
        throw err;
      }
      return { child, base, port, dataDir };
    }),
  );
  const replicas = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const failed = started.find((s) => s.status === "rejected");
  if (failed) {
    await stopReplicas(replicas);
    throw (failed as PromiseRejectedResult).reason;
  }
  return replicas;
}

const stopReplicas = (replicas: Replica[]) => Promise.all(replicas.map((r) => r.child.stop(15_000)));

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms`);
    await Bun.sleep(POLL_MS);
  }
}

/** The agent's webhook path (token included) once every replica accepts it (GET: the verification ping, no session). */
async function webhookPath(cluster: Cluster, replicas: Replica[], agent: string): Promise<string> {
  const path = new URL(await cluster.webhookUrlOf(agent)).pathname;
  for (const r of replicas)
    await until(`${agent}'s webhook on ${r.base}`, async () => {
      const res = await fetch(`${r.base}${path}`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined);
      await res?.arrayBuffer();
      return res?.status === 200 ? true : undefined;
    });
  return path;
}

// ---- the stores, read by the bench ---------------------------------------------------------------

/** Counts sessions of an agent in the case's store: Postgres directly, SQLite from the replica's pai.db (read-only). */
interface Counter {
  count(agent: string, phase?: string): number | Promise<number>;
  close(): void;
}

function counterFor(c: Case, replicas: Replica[], db: SQL): Counter {
  if (c.store === "postgres")
    return {
      async count(agent, phase) {
        const rows = phase
          ? await db`SELECT count(*)::int AS n FROM sessions WHERE agent_definition = ${agent} AND phase = ${phase}`
          : await db`SELECT count(*)::int AS n FROM sessions WHERE agent_definition = ${agent}`;
        return (rows[0] as { n: number }).n;
      },
      close() {},
    };
  const sqlite = new Database(join(replicas[0]!.dataDir, "pai.db"), { readonly: true });
  const all = sqlite.query("SELECT count(*) AS n FROM sessions WHERE agent_definition = ?1");
  const byPhase = sqlite.query("SELECT count(*) AS n FROM sessions WHERE agent_definition = ?1 AND phase = ?2");
  return {
    count: (agent, phase) => ((phase ? byPhase.get(agent, phase) : all.get(agent)) as { n: number }).n,
    close: () => sqlite.close(),
  };
}

// ---- 1. accepts --------------------------------------------------------------------------------

interface AcceptResult {
  rate: number;
  p50: number;
  p99: number;
  okTotal: number;
  failed: number;
  firstError?: string;
  /** CPU over the counted window, in cores (CPU seconds per second): the replicas (without children), Postgres, the generators. */
  paiCpu: number;
  pgCpu: number;
  generatorCpu: number;
  /** Sessions stored after the replicas stopped, and of those still Pending (the backlog the case left). */
  stored: number;
  pending: number;
}

/** One bench/load.ts process with `connections` of the case's connections, against one replica. */
function generator(url: string, connections: number) {
  const proc = Bun.spawn(loadCommand(url, connections), { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const exited = track(proc);
  const kill = setTimeout(() => proc.kill("SIGKILL"), (WARMUP_S + DURATION_S + 20) * 1000);
  const result = (async () => {
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), exited]);
    clearTimeout(kill);
    if (code !== 0 || !out.trim()) throw new Error(`bench/load.ts exited ${code}:\n${out}${err}`);
    return JSON.parse(out) as LoadResult;
  })();
  return { pid: proc.pid, result };
}

async function acceptCase(ctx: BenchContext, cluster: Cluster, pg: TestPostgres, db: SQL, postmaster: number, c: Case): Promise<AcceptResult> {
  const fake = hangingModel();
  let replicas: Replica[] = [];
  try {
    replicas = await startReplicas(ctx, cluster, c, pg, { ANTHROPIC_API_KEY: "x", ANTHROPIC_BASE_URL: fake.url });
    const path = await webhookPath(cluster, replicas, LOAD_AGENT);
    // Connection i goes to replica i mod N: each replica's generator carries its share.
    const share = (i: number) => Math.floor(CONNECTIONS / replicas.length) + (i < CONNECTIONS % replicas.length ? 1 : 0);
    const gens = replicas.map((r, i) => generator(`${r.base}${path}`, share(i)));
    const paiCpu = () => replicas.reduce((a, r) => a + times(r.child.pid).self, 0);
    const genCpu = () => gens.reduce((a, g) => a + times(g.pid).self, 0);
    // Sampled inside the generators' counted window (they start counting after their own boot, and
    // exit soon after it ends), as rates over the time actually between the samples.
    const window = (async () => {
      await Bun.sleep((WARMUP_S + CPU_INSET_S) * 1000);
      const t0 = performance.now();
      const start = [paiCpu(), treeCpu(postmaster), genCpu()] as const;
      await Bun.sleep((DURATION_S - 2 * CPU_INSET_S) * 1000);
      const s = (performance.now() - t0) / 1000;
      return [(paiCpu() - start[0]) / s, (treeCpu(postmaster) - start[1]) / s, (genCpu() - start[2]) / s] as const;
    })();
    const results = await Promise.all(gens.map((g) => g.result));
    const [pai, pgCpu, generatorCpu] = await window;
    await stopReplicas(replicas);
    const counter = counterFor(c, replicas, db);
    try {
      const ok = results.reduce((a, r) => a + r.ok, 0);
      const failed = results.reduce((a, r) => a + r.errors + Object.values(r.statuses).reduce((x, y) => x + y, 0), 0);
      return {
        rate: results.reduce((a, r) => a + r.rate, 0),
        // Weighted by answers; the worst generator's p99.
        p50: results.reduce((a, r) => a + r.p50 * r.ok, 0) / Math.max(1, ok),
        p99: Math.max(...results.map((r) => r.p99)),
        okTotal: results.reduce((a, r) => a + r.okTotal, 0),
        failed,
        firstError: results.find((r) => r.firstError)?.firstError,
        paiCpu: pai,
        pgCpu: c.store === "postgres" ? pgCpu : NaN,
        generatorCpu,
        stored: await counter.count(LOAD_AGENT),
        pending: await counter.count(LOAD_AGENT, "Pending"),
      };
    } finally {
      counter.close();
    }
  } finally {
    await stopReplicas(replicas);
    await fake.stop();
  }
}

// ---- 2 and 3. echo sessions --------------------------------------------------------------------

interface EchoResult {
  seconds: number;
  /** CPU over the timed sessions, seconds: Postgres, the replica processes, their session children. */
  pgCpu: number;
  paiCpu: number;
  childCpu: number;
  /** Postgres only: timed sessions per replica that ran them. */
  spread: number[];
}

/** Sends `n` echo webhooks, webhook i to replica i mod N, ECHO_SENDERS at a time; throws on anything but 200. */
async function sendEcho(replicas: Replica[], path: string, n: number, tag: string): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < n; i = next++) {
      const res = await fetch(`${replicas[i % replicas.length]!.base}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ title: `${tag} ${i}` }),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`echo webhook ${i}: HTTP ${res.status} ${text}`);
    }
  };
  await Promise.all(Array.from({ length: ECHO_SENDERS }, worker));
}

async function echoCase(ctx: BenchContext, cluster: Cluster, pg: TestPostgres, db: SQL, postmaster: number, c: Case): Promise<EchoResult> {
  let replicas: Replica[] = [];
  try {
    replicas = await startReplicas(ctx, cluster, c, pg, {});
    const path = await webhookPath(cluster, replicas, ECHO_AGENT);
    const counter = counterFor(c, replicas, db);
    try {
      const complete = async (n: number, what: string) => {
        const t = await until(`${what}: ${n} echo sessions Complete`, async () => ((await counter.count(ECHO_AGENT, "Complete")) >= n ? performance.now() : undefined), 60_000);
        const all = await counter.count(ECHO_AGENT);
        if (all !== n) throw new Error(`${what}: ${all} echo sessions stored, ${n} sent`);
        return t;
      };
      const warmup = ECHO_WARMUP_PER_REPLICA * replicas.length;
      await sendEcho(replicas, path, warmup, "warm-up");
      await complete(warmup, `${c.label}, warm-up`);
      const before = c.store === "postgres" ? new Set(((await db`SELECT name FROM sessions WHERE agent_definition = ${ECHO_AGENT}`) as { name: string }[]).map((r) => r.name)) : new Set<string>();
      const paiCpu = () => replicas.reduce((a, r) => a + times(r.child.pid).self, 0);
      const childCpu = () => replicas.reduce((a, r) => a + treeCpu(r.child.pid) - times(r.child.pid).self, 0);
      const cpu0 = [treeCpu(postmaster), paiCpu(), childCpu()] as const;
      const t0 = performance.now();
      await sendEcho(replicas, path, ECHO_SESSIONS, "echo");
      const t1 = await complete(warmup + ECHO_SESSIONS, c.label);
      const cpu1 = [treeCpu(postmaster), paiCpu(), childCpu()] as const;
      let spread: number[] = [];
      if (c.store === "postgres") {
        const rows = (await db`SELECT name, owner FROM sessions WHERE agent_definition = ${ECHO_AGENT}`) as { name: string; owner: string | null }[];
        const by = new Map<string, number>();
        for (const r of rows) if (!before.has(r.name)) by.set(r.owner ?? "?", (by.get(r.owner ?? "?") ?? 0) + 1);
        spread = [...by.values()].sort((a, b) => b - a);
      }
      return {
        seconds: (t1 - t0) / 1000,
        pgCpu: c.store === "postgres" ? cpu1[0] - cpu0[0] : NaN,
        paiCpu: cpu1[1] - cpu0[1],
        childCpu: cpu1[2] - cpu0[2],
        spread,
      };
    } finally {
      counter.close();
    }
  } finally {
    await stopReplicas(replicas);
  }
}

// ---- the benchmark -----------------------------------------------------------------------------

/** Empties the shared sessions tables (no replica runs): each case starts without the last one's backlog. */
const emptySessions = (db: SQL) => db`TRUNCATE sessions, session_events, webhook_deliveries`;

export async function replicas(ctx: BenchContext): Promise<Report> {
  if (!HAVE_POSTGRES)
    return {
      title: "Replicas on Postgres: SKIPPED",
      rows: [["skipped"], ["initdb/pg_ctl are neither on PATH nor under /usr/lib/postgresql/*/bin (the Debian package postgresql)"]],
    };
  const pg = await startPostgres();
  let db: SQL | undefined;
  let cluster: Cluster | undefined;
  try {
    db = new SQL(pg.url);
    const postmaster = postmasterOf(pg.port);
    cluster = await startCluster();
    track(cluster.k.server.proc); // killed with the bench's own children if it is interrupted
    await cluster.createAgent(LOAD_AGENT, { models: [SILENT_MODEL], triggers: [{ webhook: {} }] });
    await cluster.createAgent(ECHO_AGENT, { models: ["pai/echo"], triggers: [{ webhook: {} }] });

    // Rounds rotate the order, so no case always runs first or right after another.
    const accepts: AcceptResult[][] = CASES.map(() => []);
    const echoes: EchoResult[][] = CASES.map(() => []);
    const rotated = (round: number) => CASES.map((_, j) => (round + j) % CASES.length);
    for (let r = 0; r < ROUNDS; r++)
      for (const i of rotated(r)) {
        accepts[i]!.push(await acceptCase(ctx, cluster, pg, db, postmaster, CASES[i]!));
        if (CASES[i]!.store === "postgres") await emptySessions(db);
      }
    for (let r = 0; r < ROUNDS; r++)
      for (const i of rotated(r)) {
        echoes[i]!.push(await echoCase(ctx, cluster, pg, db, postmaster, CASES[i]!));
        if (CASES[i]!.store === "postgres") await emptySessions(db);
      }
    return report(accepts, echoes);
  } finally {
    await db?.close();
    await cluster?.stop();
    pg.stop();
  }
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const mean = (xs: number[]) => sum(xs) / xs.length;

function report(accepts: AcceptResult[][], echoes: EchoResult[][]): Report {
  const pct = (v: number) => `${(v * 100).toFixed(0)}%`;
  const cores = (v: number) => (Number.isNaN(v) ? "-" : pct(v));
  /** Milliseconds with two decimals ("-" for the SQLite case's Postgres figures). */
  const ms2 = (v: number) => (Number.isNaN(v) ? "-" : `${v.toFixed(2)} ms`);
  const signed = (v: number) => `${v >= 0 ? "+" : ""}${v.toFixed(2)} ms`;

  const rate = (i: number) => mean(accepts[i]!.map((r) => r.rate));
  /** Postgres CPU seconds per accept: CPU in cores over the rate, per round, averaged. */
  const pgPerAccept = (i: number) => mean(accepts[i]!.map((r) => (r.pgCpu / r.rate) * 1000));
  const echoSeconds = (i: number) => sum(echoes[i]!.map((r) => r.seconds));
  const echoSessions = (i: number) => ECHO_SESSIONS * echoes[i]!.length;
  const echoRate = (i: number) => echoSessions(i) / echoSeconds(i);
  const wallPer = (i: number) => (echoSeconds(i) * 1000) / echoSessions(i);
  const echoCpuPer = (i: number, f: (r: EchoResult) => number) => (sum(echoes[i]!.map(f)) * 1000) / echoSessions(i);

  const row = (figure: string, f: (i: number) => string) => [figure, ...CASES.map((_, i) => f(i))];
  const rounds = (f: (r: AcceptResult) => string) => (i: number) => accepts[i]!.map(f).join(", ");
  const acceptsMean = (f: (r: AcceptResult) => number) => (i: number) => mean(accepts[i]!.map(f));
  const all = accepts.flat();
  const consistent = all.every((r) => r.stored === r.okTotal);
  const problems = all.filter((r) => r.failed > 0).map((r) => r.firstError);
  const pgCases = CASES.map((_, i) => i).filter((i) => CASES[i]!.store === "postgres");
  const across = (f: (i: number) => string) => pgCases.map(f).join(", ");
  return {
    title:
      `Replicas on Postgres: pai serve --kubernetes --database (test/pg.ts, fsync off) with 1, 2 and 3 replicas, beside one pai serve --kubernetes on SQLite, ` +
      `same fake cluster (test/cluster.ts), same run, ${ROUNDS} rounds per case, interleaved — on 2 cores this shows overhead, not speed-up`,
    rows: [
      ["figure", ...CASES.map((c) => c.label)],
      row(`1. webhook 200s/s (parked), mean of ${ROUNDS}`, (i) => `${rate(i).toFixed(0)}/s`),
      row("1. 200s/s per round", rounds((r) => r.rate.toFixed(0))),
      row("1. of SQLite", (i) => pct(rate(i) / rate(0))),
      row("1. p50 / p99 (mean of rounds)", (i) => `${ms(acceptsMean((r) => r.p50)(i))} / ${ms(acceptsMean((r) => r.p99)(i))}`),
      row("1. non-200 and errors", (i) => String(sum(accepts[i]!.map((r) => r.failed)))),
      row("1. CPU, cores: pai / Postgres / generators", (i) => [acceptsMean((r) => r.paiCpu), acceptsMean((r) => r.pgCpu), acceptsMean((r) => r.generatorCpu)].map((f) => cores(f(i))).join(" / ")),
      row("1. Postgres CPU per accept", (i) => (CASES[i]!.store === "postgres" ? ms2(pgPerAccept(i)) : "-")),
      row("1. backlog left (Pending), per round", rounds((r) => String(r.pending))),
      row(`2. echo sessions/s (${ECHO_SESSIONS} per round)`, (i) => `${echoRate(i).toFixed(1)}/s`),
      row("2. per round", (i) => echoes[i]!.map((r) => (ECHO_SESSIONS / r.seconds).toFixed(1)).join(", ")),
      row("2. of SQLite", (i) => pct(echoRate(i) / echoRate(0))),
      row("2. ran per replica (last round)", (i) => (echoes[i]!.at(-1)!.spread.length ? echoes[i]!.at(-1)!.spread.join(" / ") : String(ECHO_SESSIONS))),
      row("3. wall per session", (i) => ms2(wallPer(i))),
      row("3. wall per session - SQLite", (i) => signed(wallPer(i) - wallPer(0))),
      row("3. Postgres CPU per session", (i) => ms2(echoCpuPer(i, (r) => r.pgCpu))),
      row("3. pai servers' CPU per session", (i) => ms2(echoCpuPer(i, (r) => r.paiCpu))),
      row("3. session children's CPU per session", (i) => ms2(echoCpuPer(i, (r) => r.childCpu))),
    ],
    notes: [
      `On 2 cores this shows overhead, not speed-up: the replicas, Postgres, the load generators and the session children all share the same two cores, ` +
        `so a second or third replica adds processes to schedule, not capacity. What the table measures is the price of the shared store.`,
      `Per-session cost of the shared store: an echo session costs Postgres ${across((i) => ms2(echoCpuPer(i, (r) => r.pgCpu)))} of CPU with 1, 2, 3 replicas, ` +
        `and ${across((i) => signed(wallPer(i) - wallPer(0)))} of wall time per session against the SQLite replica; an accepted webhook costs Postgres ` +
        `${across((i) => ms2(pgPerAccept(i)))} of CPU, and accepts run at ${across((i) => pct(rate(i) / rate(0)))} of SQLite's rate.`,
      `1. Accepts: fire-and-forget POSTs ${BODY} by bench/load.ts (raw HTTP/1.1, closed loop), ${CONNECTIONS} keep-alive connections in all, ` +
        `connection i to replica i mod N (one generator process per replica with its share), ${WARMUP_S} s warm-up, ${DURATION_S} s counted. ` +
        `bench/webhooks.ts's \`parked\` setting: default --max-sessions 8 per replica, an agent on a silent model (8 children per replica parked, ` +
        `the rest Pending), ${NO_PENDING_CAP.join(" ")}. Fresh replicas per round. The backlog does not carry over: after every Postgres round ` +
        `TRUNCATE sessions, session_events, webhook_deliveries empties the shared tables (the tens of thousands of Pending rows a round leaves could ` +
        `slow the next round: every replica counts Pending rows on each heartbeat); every SQLite replica starts on an empty data dir.`,
      `Store check: ${consistent ? "every round stored exactly the sessions it answered 200 for" : "MISMATCH between 200s and stored sessions"} (counted after the replicas stopped).`,
      `CPU: utime + stime from /proc between two samples ${CPU_INSET_S} s inside the counted window, in cores (100% = one core busy): pai = the replica ` +
        `processes without their session children; Postgres = the postmaster with its live and exited backends and workers. "Postgres CPU per accept" = Postgres cores / 200s per second.`,
      `2. Echo: ${ECHO_SESSIONS} fire-and-forget webhooks per round to a pai/echo agent, webhook i to replica i mod N, ${ECHO_SENDERS} in flight, after ` +
        `${ECHO_WARMUP_PER_REPLICA} warm-up sessions per replica; timed from the first request until the store counts them all Complete ` +
        `(Postgres queried directly, SQLite through pai.db opened read-only, every ${POLL_MS} ms). Default --max-sessions 8 per replica, so up to 8N ` +
        `sessions run at once; on Postgres any replica runs any session ("ran per replica": sessions.owner). Rates and per-session figures pool the rounds.`,
      `3. CPU over the timed echo sessions, per session: Postgres as in 1; the replica processes; their session children (dist/pai harness, the same work whatever the store).`,
      ...(problems.length ? [`First failure: ${problems[0]}`] : []),
    ],
  };
}
