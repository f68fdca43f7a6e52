/**
 * Webhook benchmarks, over real HTTP against `dist/pai serve`:
 *
 * 1. Fire-and-forget accepts per second with 64 keep-alive connections (every 200 only after its
 *    session is committed), beside a bare Bun.serve that parses the same JSON and answers
 *    (bench/bare-webhook.ts, same build flags), both driven by the same load generator
 *    (bench/load.ts, a separate Bun process) with the same settings, rounds interleaved. After
 *    each pai round the server is stopped and pai.db is opened read-only: the sessions stored must
 *    equal the 200s counted. Two aims, in the same run:
 *    - durable accepts: pai with its one session held on a silent model (`hold`) against raw;
 *    - sessions working: pai at the default --max-sessions 8 with an agent on pai/echo and no
 *      limit of its own (`busy`: up to 8 CPU-busy children, spawned back to back while the load
 *      runs) against the same flags with an agent on the silent model (`parked`: 8 children that
 *      started and then wait). Same machine, same load; what differs is only what the children do.
 * 2. The round trip of a `"wait"` request to a pai/echo agent, beside a bare spawn of the same
 *    binary (`dist/pai harness` without IPC, as in bench/sessions.ts), interleaved.
 */
import { Database } from "bun:sqlite";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildBinary } from "../build";
import type { LoadResult } from "./load";
import { bareSpawn } from "./sessions";
import { freePort, hangingModel, median, ms, msUntilOk, percentile, serveCommand, spawnChild, track, type BenchContext, type Child, type Report } from "./lib";

const ACCEPT_AIM = 0.5;
export const CONNECTIONS = 64;
export const WARMUP_S = 1;
export const DURATION_S = 5;
/** Rounds per target; the order of the targets rotates from round to round. */
export const ROUNDS = 2;
export const BODY = '{"title":"Analyse Q1 results"}';
const WAIT_RUNS = 100;
const WAIT_WARMUP = 5;
const API = "/apis/pai.io/v1/namespaces/default";

// ---- a pai server with a webhook agent ----------------------------------------------------------

interface PaiServer {
  child: Child;
  base: string;
  port: number;
  dataDir: string;
  api(path: string, init?: { method?: string; json?: unknown }): Promise<unknown>;
}

async function startPai(
  ctx: BenchContext,
  opts: { extra?: string[]; env?: Record<string, string>; onStderr?: (text: string) => void } = {},
): Promise<PaiServer> {
  const port = freePort();
  const dataDir = ctx.tmp.dir("data-webhooks");
  const child = spawnChild(serveCommand(ctx.pai, port, dataDir, opts.extra), { cwd: ctx.cwd, env: { ...ctx.env, ...opts.env }, onStderr: opts.onStderr });
  const base = `http://127.0.0.1:${port}`;
  try {
    await msUntilOk(child, `${base}/readyz`);
  } catch (err) {
    await child.stop();
    throw err;
  }
  const token = readFileSync(join(dataDir, "admin-token"), "utf8").trim();
  const api = async (path: string, init: { method?: string; json?: unknown } = {}) => {
    const res = await fetch(`${base}${path}`, {
      method: init.method ?? "GET",
      headers: { authorization: `Bearer ${token}`, ...(init.json !== undefined ? { "content-type": "application/json" } : {}) },
      body: init.json !== undefined ? JSON.stringify(init.json) : undefined,
      signal: AbortSignal.timeout(10_000),
    });
    const body = await res.json().catch(() => null);
    if (!res.ok) throw new Error(`${init.method ?? "GET"} ${path}: HTTP ${res.status} ${JSON.stringify(body)}\n${child.stderr()}`);
    return body;
  };
  return { child, base, port, dataDir, api };
}

/** PUTs an agent with a webhook trigger and returns its webhook URL, pointed at this server. */
async function webhookAgent(server: PaiServer, name: string, spec: Record<string, unknown>): Promise<string> {
  await server.api(`${API}/agents/${name}`, {
    method: "PUT",
    json: { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name }, spec: { ...spec, triggers: [{ webhook: {} }] } },
  });
  const deadline = performance.now() + 10_000;
  for (;;) {
    const agent = (await server.api(`${API}/agents/${name}`)) as { status?: { webhookUrl?: string } };
    const url = agent.status?.webhookUrl;
    if (url) {
      const u = new URL(url); // made with --public-url's default, http://localhost:<port>
      return `${server.base}${u.pathname}${u.search}`;
    }
    if (performance.now() > deadline) throw new Error(`agent ${name}: no status.webhookUrl after 10 s`);
    await Bun.sleep(10);
  }
}

// ---- the load generator, as a child process ------------------------------------------------------

/** Established TCP connections whose local port is `port` (the server's side), from /proc/net/tcp. */
function establishedTo(port: number): number {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  let n = 0;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[1]?.endsWith(hex) && f[3] === "01") n++;
    }
  }
  return n;
}

interface Load extends LoadResult {
  /** Connections open at the server's port in the middle of the counted window, less those open before the generator started. */
  seen: number;
  /** CPU the server and the generator used during the counted window (sampled from /proc by this process), seconds. */
  serverCpu: number;
  generatorCpu: number;
}

/** utime + stime of `pid` so far, in seconds (/proc/<pid>/stat; clock ticks assumed 100/s). */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN; // gone
  }
}

/** bench/load.ts against `url` with `connections` and the benchmark's other settings. */
export const loadCommand = (url: string, connections: number) => [
  process.execPath, join(import.meta.dir, "load.ts"), "--url", url, "--connections", String(connections),
  "--warmup", String(WARMUP_S), "--duration", String(DURATION_S), "--body", BODY, "--client", "raw",
];

/** Runs bench/load.ts against `url` (served by `serverPid`) with the benchmark's settings; killed if it overruns. */
export async function load(url: string, port: number, serverPid: number): Promise<Load> {
  const before = establishedTo(port);
  const proc = Bun.spawn(loadCommand(url, CONNECTIONS), { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const exited = track(proc);
  const kill = setTimeout(() => proc.kill("SIGKILL"), (WARMUP_S + DURATION_S + 20) * 1000);
  try {
    let seen = NaN;
    let serverCpu = NaN;
    let generatorCpu = NaN;
    const sample = (async () => {
      await Bun.sleep(WARMUP_S * 1000);
      const [server0, generator0] = [cpuSeconds(serverPid), cpuSeconds(proc.pid)];
      await Bun.sleep((DURATION_S / 2) * 1000);
      seen = establishedTo(port) - before;
      await Bun.sleep((DURATION_S / 2) * 1000);
      [serverCpu, generatorCpu] = [cpuSeconds(serverPid) - server0, cpuSeconds(proc.pid) - generator0];
    })();
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), exited]);
    await sample;
    if (code !== 0 || !out.trim()) throw new Error(`bench/load.ts exited ${code}:\n${out}${err}`);
    return { ...(JSON.parse(out) as LoadResult), seen, serverCpu, generatorCpu };
  } finally {
    clearTimeout(kill);
    proc.kill("SIGKILL");
    await exited;
  }
}

// ---- 1. fire-and-forget accepts -----------------------------------------------------------------

interface PaiRound extends Load {
  /** Rows in pai.db's sessions table after the server stopped, and how many had completed. */
  stored: number;
  complete: number;
  /** "UNIQUE constraint failed: sessions…" lines in the server's log: session names drawn twice. */
  collisions: number;
}

async function rawRound(ctx: BenchContext, bin: string): Promise<Load> {
  const port = freePort();
  const child = spawnChild(serveCommand(bin, port, ctx.tmp.dir("data-bare")), { cwd: ctx.cwd, env: ctx.env });
  try {
    await msUntilOk(child, `http://127.0.0.1:${port}/readyz`);
    return await load(`http://127.0.0.1:${port}/webhooks/default/bench/x`, port, child.pid);
  } finally {
    await child.stop();
  }
}

/**
 * Every pai round raises the server-wide Pending cap (--max-pending, default 100,000) out of reach:
 * at tens of thousands of accepts a second the default cap is met within the round, and the 429s
 * after it would be measured instead of accepts.
 */
const NO_PENDING_CAP = ["--max-pending", "100000000"];

type PaiMode = "echo" | "hold" | "busy" | "parked";

/**
 * One round on a fresh `pai serve`.
 * - `echo`, `hold`: --max-sessions 1 and an agent that runs one session at a time
 *   (maxConcurrentSessions 1): the others wait Pending, committed all the same. `echo`: pai/echo,
 *   so sessions run one after another during the round; `hold`: a model on a local fake API that
 *   never answers, so the first session holds the only slot and no child is spawned after it.
 * - `busy`, `parked`: the default --max-sessions (8) and an agent with no limit of its own, so up
 *   to 8 children run at once. `busy`: pai/echo, so every child boots, answers and exits at once
 *   and the next is spawned as soon as a slot frees (CPU-busy children, spawned back to back);
 *   `parked`: the silent model, so 8 children start, then wait on their model call for the rest
 *   of the round.
 */
async function paiRound(ctx: BenchContext, mode: PaiMode): Promise<PaiRound> {
  const silent = mode === "hold" || mode === "parked";
  const fake = silent ? hangingModel() : undefined;
  let collisions = 0;
  const server = await startPai(ctx, {
    extra: [...(mode === "echo" || mode === "hold" ? ["--max-sessions", "1"] : []), ...NO_PENDING_CAP],
    env: fake ? { ANTHROPIC_API_KEY: "x", ANTHROPIC_BASE_URL: fake.url } : {},
    onStderr: (text) => (collisions += text.match(/UNIQUE constraint failed: sessions\./g)?.length ?? 0),
  });
  let result: Load;
  try {
    const models = silent ? ["anthropic/claude-bench-hold"] : ["pai/echo"];
    const url = await webhookAgent(server, "bench", { models, ...(mode === "echo" || mode === "hold" ? { maxConcurrentSessions: 1 } : {}) });
    result = await load(url, server.port, server.child.pid);
  } finally {
    await server.child.stop(15_000);
    await fake?.stop();
  }
  const db = new Database(join(server.dataDir, "pai.db"), { readonly: true });
  try {
    const count = (where: string) => (db.query(`SELECT count(*) AS n FROM sessions${where}`).get() as { n: number }).n;
    return { ...result, stored: count(""), complete: count(" WHERE phase = 'Complete'"), collisions };
  } finally {
    db.close();
  }
}

/** Aim 1: accepts with CPU-busy session children (busy) against accepts with parked ones (parked), same flags. */
const BUSY_AIM = 0.5;

export async function webhookAccepts(ctx: BenchContext): Promise<Report> {
  const bare = await buildBinary("bench/bare-webhook.ts", join(ctx.tmp.root, "bare-webhook"));
  const cases = {
    raw: { label: "raw: Bun.serve, JSON.parse, answer (bench/bare-webhook.ts)", run: () => rawRound(ctx, bare.outfile) },
    echo: { label: "--max-sessions 1, agent pai/echo, maxConcurrentSessions 1: one session runs at a time, the rest Pending", run: () => paiRound(ctx, "echo") },
    hold: { label: "--max-sessions 1, agent's one session held on a silent model: all the rest Pending", run: () => paiRound(ctx, "hold") },
    busy: { label: "default --max-sessions 8, agent pai/echo, no agent limit: up to 8 CPU-busy children, spawned back to back", run: () => paiRound(ctx, "busy") },
    parked: { label: "default --max-sessions 8, agent on a silent model, no agent limit: 8 children parked, the rest Pending", run: () => paiRound(ctx, "parked") },
  };
  type Case = keyof typeof cases;
  const order = Object.keys(cases) as Case[];
  const results: Record<Case, Load[]> = { raw: [], echo: [], hold: [], busy: [], parked: [] };
  for (let i = 0; i < ROUNDS; i++)
    for (let j = 0; j < order.length; j++) {
      const c = order[(i + j) % order.length]!; // rotate, so no case always runs right after another
      results[c].push(await cases[c].run());
    }

  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const rate = (c: Case) => mean(results[c].map((r) => r.rate));
  const share = (c: Case) => rate(c) / rate("raw");
  const verdict = (c: Case) => (share(c) >= ACCEPT_AIM ? "met" : "MISSED");
  const busyShare = rate("busy") / rate("parked");
  const busyVerdict = busyShare >= BUSY_AIM ? "met" : "MISSED";
  const pct = (v: number) => `${(v * 100).toFixed(0)}%`;
  const aim: Record<Case, string> = {
    raw: "",
    echo: `${verdict("echo")} (of raw)`,
    hold: `${verdict("hold")} (of raw)`,
    busy: `${pct(busyShare)} of parked: ${busyVerdict}`,
    parked: "",
  };
  const failed = (r: Load) => Object.values(r.statuses).reduce((a, b) => a + b, 0) + r.errors;
  const cpu = (v: number) => `${((v / DURATION_S) * 100).toFixed(0)}%`;
  const row = (c: Case) => {
    const rs = results[c];
    return [
      cases[c].label, `${rate(c).toFixed(0)}/s`, rs.map((r) => r.rate.toFixed(0)).join(", "),
      ms(mean(rs.map((r) => r.p50))), ms(mean(rs.map((r) => r.p99))), rs.map((r) => String(r.seen)).join(", "),
      String(rs.reduce((a, r) => a + failed(r), 0)), cpu(mean(rs.map((r) => r.serverCpu))), cpu(mean(rs.map((r) => r.generatorCpu))),
      c === "raw" ? "" : rs.map((r) => String((r as PaiRound).complete)).join(", "),
      pct(share(c)), aim[c],
    ];
  };
  const paiCases = order.filter((c) => c !== "raw");
  const pai = paiCases.flatMap((c) => results[c].map((r) => [c, r as PaiRound] as const));
  const consistent = pai.every(([, r]) => r.stored === r.okTotal);
  const problems = Object.values(results).flat().filter((r) => failed(r) > 0).map((r) => r.firstError);
  return {
    title:
      `Webhook accepts: fire-and-forget POSTs ${BODY} on ${CONNECTIONS} keep-alive connections in a closed loop, ${WARMUP_S} s warm-up then ${DURATION_S} s counted; ` +
      `load generator bench/load.ts (raw HTTP/1.1 over Bun.connect, its own process), the same for every target; ${ROUNDS} rounds per target, interleaved, each on a fresh server; ` +
      `every pai serve with ${NO_PENDING_CAP.join(" ")} (the default cap of 100,000 Pending would be met within a round)`,
    rows: [
      ["target", "200s/s (mean)", "rounds", "p50", "p99", "connections", "non-200", "server CPU", "generator CPU", "sessions Complete per round", "of raw", "aim"],
      ...order.map(row),
    ],
    notes: [
      `Aim 1, sessions working: busy/parked = ${pct(busyShare)} (${rate("busy").toFixed(0)}/s with up to 8 pai/echo children spawned back to back, ` +
        `${rate("parked").toFixed(0)}/s with 8 children parked on a silent model; aim: at least ${BUSY_AIM * 100}%) — ${busyVerdict}.`,
      `Aim 2, durable accepts: pai/raw = ${pct(share("hold"))} with no session child after the first (aim: at least ${ACCEPT_AIM * 100}%) — ${verdict("hold")}; ` +
        `${pct(share("echo"))} with pai/echo sessions running one at a time — ${verdict("echo")}. Every 200 from pai answers a session committed to pai.db before it ` +
        `(group commit: the inserts of concurrent requests share one transaction).`,
      ...pai.map(
        ([c, r]) =>
          `${c} round: ${r.okTotal} 200s in all (warm-up, window, drain), ${r.stored} sessions in pai.db after the server stopped — ` +
          `${r.stored === r.okTotal ? "equal" : "DIFFERENT"}; ${r.complete} ran to Complete during the round` +
          (failed(r) ? `; ${failed(r)} non-200, ${r.collisions} of them session-name collisions (UNIQUE constraint failed: sessions…, in the server log)` : "") +
          ".",
      ),
      `Store check: ${consistent ? "every pai round stored exactly the sessions it answered 200 for" : "MISMATCH between 200s and stored sessions"}.`,
      `p50/p99: latency from send to full answer at the generator, mean over the rounds. Connections: established at the server's port mid-window, less those open before the generator started. ` +
        `CPU: utime + stime over the counted window as a share of one core, from /proc (the server process without its session children).`,
      ...(problems.length ? [`First failure: ${problems[0]}`] : []),
    ],
  };
}

// ---- 2. wait latency ------------------------------------------------------------------------------

/** `dist/pai harness` without an IPC channel: the session child's binary and module graph, exiting at once (code 2). */
const bareHarness = (ctx: BenchContext) => bareSpawn(ctx, [ctx.pai, "harness"], 2);

export async function webhookWait(ctx: BenchContext): Promise<Report> {
  const server = await startPai(ctx);
  try {
    const url = await webhookAgent(server, "echo", { models: ["pai/echo"] });
    const body = JSON.stringify({ title: "hi", wait: 30 });
    const wait = async () => {
      const t0 = performance.now();
      const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body, signal: AbortSignal.timeout(40_000) });
      const reply = (await res.json()) as { phase?: string; response?: string | null };
      const t = performance.now() - t0;
      if (res.status !== 200 || reply.phase !== "Complete" || !reply.response) throw new Error(`wait request: HTTP ${res.status} ${JSON.stringify(reply)}\n${server.child.stderr()}`);
      return t;
    };
    const cases = {
      wait: { label: `POST {"title":"hi","wait":30} to a pai/echo webhook, round trip`, run: wait },
      bare: { label: "bare: dist/pai harness without IPC (exits 2 at once)", run: () => bareHarness(ctx) },
    };
    type Case = keyof typeof cases;
    const order = Object.keys(cases) as Case[];
    for (let i = 0; i < WAIT_WARMUP; i++) for (const c of order) await cases[c].run();
    const times: Record<Case, number[]> = { wait: [], bare: [] };
    for (let i = 0; i < WAIT_RUNS; i++)
      for (let j = 0; j < order.length; j++) {
        const c = order[(i + j) % order.length]!;
        times[c].push(await cases[c].run());
      }
    const bare = median(times.bare);
    const signed = (v: number) => `${v >= 0 ? "+" : ""}${v.toFixed(1)} ms`;
    const row = (c: Case) => {
      const m = median(times[c]);
      return [cases[c].label, ms(m), ms(percentile(times[c], 99)), signed(m - bare), ms(percentile(times[c], 99) - percentile(times.bare, 99))];
    };
    return {
      title: `Webhook wait latency: pai serve (default --max-sessions), ${WAIT_RUNS} sequential runs of each case, interleaved, after ${WAIT_WARMUP} warm-up runs each`,
      rows: [["case", "p50", "p99", "p50 - bare p50", "p99 - bare p99"], ...order.map(row)],
      notes: [
        `The round trip holds: HTTP in, session committed, child spawned (dist/pai harness), start message over IPC, echo, child exit and reap, final phase committed, answer.`,
      ],
    };
  } finally {
    await server.child.stop(15_000);
  }
}
