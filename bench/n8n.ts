/**
 * pai beside a peer on the same machine, in the same run (issue 12): n8n executing a Webhook → Set
 * workflow against pai running pai/echo sessions started by fire-and-forget webhooks, both driven by
 * the same closed-loop load (POSTS requests, IN_FLIGHT at a time), rounds alternated with bare spawns
 * of `dist/pai harness`; then the `wait` round trip beside a bare spawn. The issue's three aims are
 * reported met or missed against these baselines, never against figures from another machine.
 *
 * n8n is not a dependency of pai: `npm run bench:peers` installs it into bench/peers (see
 * bench/peers/install.sh for why it needs overrides and --ignore-scripts). This benchmark never
 * installs it; without it the table says so and nothing runs.
 *
 * Counting, for both: from the first request sent to the last run finished, as the server itself
 * stamped it (n8n: execution_entity.stoppedAt of `success` rows; pai: sessions.finished_at of
 * `Complete` rows), read from the server's own SQLite file opened read-only. n8n's default SQLite
 * is not in WAL mode and its driver sets no busy timeout, so a reader during the round could make
 * its writes fail: while n8n runs, completion is followed in the event log it appends to
 * (n8nEventLog.log), and its database is opened only after it has stopped. pai.db is WAL, so it is
 * polled while pai runs.
 */
import { Database } from "bun:sqlite";
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isFinal, Phase } from "../src/domain/session";
import { bareSpawn } from "./sessions";
import { BODY } from "./webhooks";
import { freePort, mb, median, memory, ms, msUntilOk, percentile, serveCommand, spawnChild, track, type BenchContext, type Report } from "./lib";

const PEERS = join(import.meta.dir, "peers");
const N8N_PACKAGE = join(PEERS, "node_modules", "n8n");
const N8N_BIN = join(N8N_PACKAGE, "bin", "n8n");
/** Written by bench/peers/install.sh after a complete install: the sha256 of bench/peers/package.json. */
const STAMP = join(PEERS, "node_modules", ".pai-bench-peers");
const WORKFLOW = join(PEERS, "n8n-webhook-set.json");
const WORKFLOW_ID = "paiBenchWebhook1";
const N8N_WEBHOOK = "/webhook/pai-bench";
/** The pai side's agent: the example pai/echo agent with a webhook trigger, copied to a temp manifests folder. */
const MANIFEST = join(import.meta.dir, "..", "manifests", "examples", "echo.yaml");
const AGENT = "echo";

const ROUNDS = 4;
const POSTS = 300;
const IN_FLIGHT = 16;
const WAIT_RUNS = 40;
const WAIT_WARMUP = 5;
/** Bounds, not measurements: a server that never finishes fails the benchmark with its log. */
const N8N_READY_MS = 60_000;
const RUNS_DONE_MS = 60_000;

const AIM_PEER = 2;
const AIM_BARE = 1.5;
const AIM_WAIT = 0.5;

const SKIP_TITLE = `n8n beside pai: Webhook → Set executions/s against pai/echo sessions/s, ${POSTS} POSTs with ${IN_FLIGHT} in flight`;

/** Why n8n cannot run here, or undefined when bench/peers holds a complete install of the current package.json. */
function notInstalled(): string | undefined {
  if (!existsSync(STAMP) || !existsSync(N8N_BIN)) return "skipped: run npm run bench:peers first";
  const want = new Bun.CryptoHasher("sha256").update(readFileSync(join(PEERS, "package.json"))).digest("hex");
  if (readFileSync(STAMP, "utf8").trim() !== want) return "skipped: bench/peers/package.json changed since it was installed; run npm run bench:peers";
  if (!Bun.which("node")) return "skipped: n8n runs on Node.js and there is no node on PATH";
  return undefined;
}

// ---- the load: the same closed loop for both servers ---------------------------------------------

interface Posted {
  ok: number;
  /** Answers other than 200, by status, and transport errors. */
  statuses: Record<string, number>;
  errors: number;
  firstError?: string;
  /** Epoch ms (the clock the servers stamp their runs with): first request sent, last answer received. */
  firstSentAt: number;
  lastAnsweredAt: number;
}

/** POSTS POSTs of BODY to `url`, IN_FLIGHT outstanding at a time (keep-alive fetch). */
async function post(url: string): Promise<Posted> {
  const r: Posted = { ok: 0, statuses: {}, errors: 0, firstSentAt: Infinity, lastAnsweredAt: 0 };
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < POSTS) {
        next++;
        r.firstSentAt = Math.min(r.firstSentAt, Date.now());
        try {
          const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: BODY, signal: AbortSignal.timeout(30_000) });
          const text = await res.text();
          if (res.status === 200) r.ok++;
          else {
            r.statuses[res.status] = (r.statuses[res.status] ?? 0) + 1;
            r.firstError ??= `HTTP ${res.status}: ${text.slice(0, 300)}`;
          }
        } catch (err) {
          r.errors++;
          r.firstError ??= String((err as Error)?.message ?? err);
        }
        r.lastAnsweredAt = Math.max(r.lastAnsweredAt, Date.now());
      }
    }),
  );
  return r;
}

interface Round extends Posted {
  /** Runs that ended successfully (n8n: execution_entity success; pai: sessions Complete). */
  done: number;
  /** Epoch ms of the last of them. */
  lastFinishedAt: number;
  /** Server (without children) peak RSS, read before it was stopped. */
  peakRss: number;
  /** Spawn until the server took webhooks. */
  startMs: number;
}

/** Runs per second from the first request to the last finished run. */
const rate = (r: Round) => r.done / ((r.lastFinishedAt - r.firstSentAt) / 1000);

// ---- n8n ------------------------------------------------------------------------------------------

/** Environment of every n8n command: its user folder and the flags issue 12 found necessary; telemetry off (no internet here). */
function n8nEnv(ctx: BenchContext, userFolder: string, port = 0): Record<string, string> {
  return {
    ...ctx.env,
    N8N_USER_FOLDER: userFolder,
    ...(port ? { N8N_PORT: String(port), N8N_LISTEN_ADDRESS: "127.0.0.1" } : {}),
    N8N_EXPRESSION_ENGINE: "legacy", // the default engine needs isolated-vm, which --ignore-scripts leaves unbuilt
    N8N_DIAGNOSTICS_ENABLED: "false",
    N8N_VERSION_NOTIFICATIONS_ENABLED: "false",
    N8N_TEMPLATES_ENABLED: "false",
  };
}

/** Runs an n8n CLI command to completion; throws with its output if it fails. */
async function n8nCommand(ctx: BenchContext, userFolder: string, args: string[]): Promise<void> {
  const proc = Bun.spawn(["node", N8N_BIN, ...args], { cwd: ctx.cwd, env: n8nEnv(ctx, userFolder), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), track(proc)]);
  if (code !== 0) throw new Error(`n8n ${args.join(" ")} exited ${code}:\n${out}${err}`);
}

/**
 * A user folder with the database migrated and the workflow imported and activated, made once and
 * copied for every round (so each round starts with no executions). In regular mode
 * `import:workflow` always imports workflows inactive; `update:workflow --active=true` marks it
 * active, and `n8n start` activates it (registers its webhook) at boot.
 */
async function n8nTemplate(ctx: BenchContext): Promise<string> {
  const folder = ctx.tmp.dir("n8n-template");
  await n8nCommand(ctx, folder, ["import:workflow", `--input=${WORKFLOW}`]);
  await n8nCommand(ctx, folder, ["update:workflow", `--id=${WORKFLOW_ID}`, "--active=true"]);
  return folder;
}

/** Counts `n8n.workflow.success`/`failed` events appended to n8n's event log since the last call, reading only the new bytes. */
function eventLog(file: string) {
  let offset = 0;
  let carry = "";
  let success = 0;
  let failed = 0;
  const buf = Buffer.alloc(1 << 20);
  return () => {
    if (!existsSync(file)) return { success, failed };
    const fd = openSync(file, "r");
    try {
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, offset);
        if (n <= 0) break;
        offset += n;
        const lines = (carry + buf.toString("utf8", 0, n)).split("\n");
        carry = lines.pop()!; // a line n8n is still writing
        for (const line of lines) {
          if (line.includes('"eventName":"n8n.workflow.success"')) success++;
          else if (line.includes('"eventName":"n8n.workflow.failed"')) failed++;
        }
      }
    } finally {
      closeSync(fd);
    }
    return { success, failed };
  };
}

/** n8n stamps datetime columns as "YYYY-MM-DD HH:MM:SS.SSS" in UTC. */
const n8nTime = (s: string) => Date.parse(`${s.replace(" ", "T")}Z`);

async function n8nRound(ctx: BenchContext, template: string): Promise<Round> {
  const folder = ctx.tmp.dir("n8n-round");
  mkdirSync(join(folder, ".n8n"));
  for (const f of ["config", "database.sqlite"]) copyFileSync(join(template, ".n8n", f), join(folder, ".n8n", f));
  const port = freePort();
  const t0 = performance.now();
  const proc = Bun.spawn(["node", N8N_BIN, "start"], { cwd: ctx.cwd, env: n8nEnv(ctx, folder, port), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const exited = track(proc);
  let log = "";
  let activated = false;
  let ready!: () => void;
  const readyNow = new Promise<void>((resolve) => (ready = resolve));
  const read = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      if (log.length < 65536) log += decoder.decode(chunk, { stream: true });
      activated ||= log.includes(`Activated workflow "`);
      // Printed once start-up is over, after the active workflows were activated (or failed to be).
      if (log.includes("Editor is now accessible")) ready();
    }
  };
  read(proc.stdout).catch(() => {});
  read(proc.stderr).catch(() => {});
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGTERM"); // n8n waits for its running executions before it exits
    const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
    await exited;
    clearTimeout(timer);
  };
  let posted: Posted;
  let peakRss = NaN;
  let startMs = NaN;
  try {
    const timeout = Bun.sleep(N8N_READY_MS).then(() => "timeout" as const);
    const outcome = await Promise.race([readyNow.then(() => "ready" as const), exited.then(() => "exited" as const), timeout]);
    if (outcome !== "ready" || !activated) throw new Error(`n8n start: ${outcome === "ready" ? "the workflow was not activated" : outcome}:\n${log}`);
    startMs = performance.now() - t0;
    posted = await post(`http://127.0.0.1:${port}${N8N_WEBHOOK}`);
    const events = eventLog(join(folder, ".n8n", "n8nEventLog.log"));
    const deadline = performance.now() + RUNS_DONE_MS;
    for (;;) {
      const { success, failed } = events();
      if (success + failed >= posted.ok) break;
      if (performance.now() > deadline || proc.exitCode !== null) break; // counted from the database below, short or not
      await Bun.sleep(50);
    }
    peakRss = memory(proc.pid).peak;
  } finally {
    await stop();
  }
  const db = new Database(join(folder, ".n8n", "database.sqlite"), { readonly: true });
  try {
    const row = db
      .query("SELECT count(*) AS n, max(stoppedAt) AS last FROM execution_entity WHERE workflowId = ? AND status = 'success'")
      .get(WORKFLOW_ID) as { n: number; last: string | null };
    return { ...posted, done: row.n, lastFinishedAt: row.last ? n8nTime(row.last) : NaN, peakRss, startMs };
  } finally {
    db.close();
    rmSync(folder, { recursive: true, force: true }); // its editor assets alone take ~76 MB
  }
}

// ---- pai ------------------------------------------------------------------------------------------

/** dist/pai serve with default flags and the example echo agent from a manifests folder; its webhook URL. */
/**
 * The example agent as shipped (`spec.harness.reuse: true`: a process runs its sessions one after
 * another), or with that stanza removed (`oneEach`: one process per session, warm ones taken first).
 */
function echoManifest(oneEach: boolean): string {
  const text = readFileSync(MANIFEST, "utf8");
  if (!oneEach) return text;
  const stripped = text.replace(/^  harness:\n(?:    .*\n)+/m, "");
  if (stripped === text) throw new Error(`${MANIFEST}: no spec.harness stanza to remove`);
  return stripped;
}

async function startPai(ctx: BenchContext, oneEach = false, args: string[] = []) {
  const manifests = ctx.tmp.dir("manifests");
  writeFileSync(join(manifests, "echo.yaml"), echoManifest(oneEach)); // a copy: the server writes status back into its manifests
  const port = freePort();
  const dataDir = ctx.tmp.dir("data-n8n-bench");
  const child = spawnChild(serveCommand(ctx.pai, port, dataDir, ["--manifests", manifests, ...args]), { cwd: ctx.cwd, env: ctx.env });
  const base = `http://127.0.0.1:${port}`;
  try {
    await msUntilOk(child, `${base}/readyz`);
    const token = readFileSync(join(dataDir, "admin-token"), "utf8").trim();
    const deadline = performance.now() + 10_000;
    for (;;) {
      const res = await fetch(`${base}/apis/pai.io/v1/namespaces/default/agents/${AGENT}`, { headers: { authorization: `Bearer ${token}` } });
      const agent = (await res.json().catch(() => null)) as { status?: { webhookUrl?: string } } | null;
      const url = res.ok ? agent?.status?.webhookUrl : undefined;
      if (url) {
        const u = new URL(url); // made with --public-url's default, http://localhost:<port>
        return { child, dataDir, url: `${base}${u.pathname}${u.search}`, startMs: performance.now() - child.spawnedAt };
      }
      if (performance.now() > deadline) throw new Error(`agent ${AGENT} from the manifests folder: no status.webhookUrl after 10 s (HTTP ${res.status})\n${child.stderr()}`);
      await Bun.sleep(10);
    }
  } catch (err) {
    await child.stop();
    throw err;
  }
}

/** pai's stored timestamps are ISO 8601. */
const paiTime = (s: string) => Date.parse(s);

async function paiRound(ctx: BenchContext, oneEach = false): Promise<Round> {
  const server = await startPai(ctx, oneEach);
  let posted: Posted;
  let peakRss = NaN;
  try {
    posted = await post(server.url);
    const db = new Database(join(server.dataDir, "pai.db"), { readonly: true });
    try {
      const phases = db.query("SELECT phase, count(*) AS n FROM sessions GROUP BY phase");
      const deadline = performance.now() + RUNS_DONE_MS;
      for (;;) {
        const rows = phases.all() as { phase: string; n: number }[];
        const ended = rows.filter((r) => isFinal(r.phase)).reduce((a, r) => a + r.n, 0);
        if (ended >= posted.ok || performance.now() > deadline) break; // counted again below, short or not
        await Bun.sleep(50);
      }
    } finally {
      db.close();
    }
    peakRss = memory(server.child.pid).peak;
  } finally {
    await server.child.stop(15_000);
  }
  const db = new Database(join(server.dataDir, "pai.db"), { readonly: true });
  try {
    const row = db.query("SELECT count(*) AS n, max(finished_at) AS last FROM sessions WHERE phase = ?").get(Phase.Complete) as { n: number; last: string | null };
    return { ...posted, done: row.n, lastFinishedAt: row.last ? paiTime(row.last) : NaN, peakRss, startMs: server.startMs };
  } finally {
    db.close();
  }
}

// ---- bare spawns ----------------------------------------------------------------------------------

/** `dist/pai harness` without an IPC channel: the session child's binary and module graph, exiting at once (code 2). */
const bareHarness = (ctx: BenchContext) => bareSpawn(ctx, [ctx.pai, "harness"], 2);

/** POSTS bare spawns, IN_FLIGHT at a time; spawns per second. */
async function bareRound(ctx: BenchContext): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < POSTS) {
        next++;
        await bareHarness(ctx);
      }
    }),
  );
  return POSTS / ((performance.now() - t0) / 1000);
}

// ---- wait round trip ------------------------------------------------------------------------------

async function waitLatency(ctx: BenchContext, oneEach = false, args: string[] = []): Promise<{ wait: number[]; bare: number[] }> {
  const server = await startPai(ctx, oneEach, args);
  try {
    const body = JSON.stringify({ title: "hi", wait: 30 });
    const wait = async () => {
      const t0 = performance.now();
      const res = await fetch(server.url, { method: "POST", headers: { "content-type": "application/json" }, body, signal: AbortSignal.timeout(40_000) });
      const reply = (await res.json().catch(() => null)) as { phase?: string } | null;
      const t = performance.now() - t0;
      if (res.status !== 200 || reply?.phase !== Phase.Complete) throw new Error(`wait request: HTTP ${res.status} ${JSON.stringify(reply)}\n${server.child.stderr()}`);
      return t;
    };
    const times = { wait: [] as number[], bare: [] as number[] };
    for (let i = 0; i < WAIT_WARMUP; i++) {
      await wait();
      await bareHarness(ctx);
    }
    // One at a time, so neither shares the machine with the other; which goes first alternates.
    for (let i = 0; i < WAIT_RUNS; i++) {
      if (i % 2) times.bare.push(await bareHarness(ctx));
      times.wait.push(await wait());
      if (!(i % 2)) times.bare.push(await bareHarness(ctx));
    }
    return times;
  } finally {
    await server.child.stop(15_000);
  }
}

// ---- the benchmark --------------------------------------------------------------------------------

export async function n8n(ctx: BenchContext): Promise<Report> {
  const skip = notInstalled();
  if (skip) return { title: SKIP_TITLE, rows: [["target", "result"], ["n8n (bench/peers)", skip]] };

  const n8nVersion = (JSON.parse(readFileSync(join(N8N_PACKAGE, "package.json"), "utf8")) as { version: string }).version;
  const nodeVersion = new TextDecoder().decode(Bun.spawnSync(["node", "--version"]).stdout).trim();
  const template = await n8nTemplate(ctx);

  const cases = {
    n8n: () => n8nRound(ctx, template),
    pai: () => paiRound(ctx),
    paiOneEach: () => paiRound(ctx, true),
    bare: () => bareRound(ctx),
  };
  type Case = keyof typeof cases;
  const order = Object.keys(cases) as Case[];
  const rounds = { n8n: [] as Round[], pai: [] as Round[], paiOneEach: [] as Round[], bare: [] as number[] };
  for (let i = 0; i < ROUNDS; i++)
    for (let j = 0; j < order.length; j++) {
      const c = order[(i + j) % order.length]!; // rotate, so no case always runs right after another
      if (c === "bare") rounds.bare.push(await cases.bare());
      else rounds[c].push(await cases[c]());
    }
  const waits = await waitLatency(ctx);
  const waitsOneEach = await waitLatency(ctx, true);
  const waitsCold = await waitLatency(ctx, true, ["--warm-processes", "0"]);

  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const n8nRate = mean(rounds.n8n.map(rate));
  const paiRate = mean(rounds.pai.map(rate));
  const bareRate = mean(rounds.bare);
  const waitP50 = median(waits.wait);
  const bareP50 = median(waits.bare);
  const verdict = (ok: boolean) => (ok ? "met" : "MISSED");
  const x = (v: number) => `${v.toFixed(2)}x`;
  const perRound = (xs: number[]) => xs.map((v) => v.toFixed(1)).join(", ");
  const s = (msValue: number) => `${(msValue / 1000).toFixed(1)} s`;
  const failed = (r: Posted) => Object.values(r.statuses).reduce((a, b) => a + b, 0) + r.errors;
  const serverRow = (label: string, rs: Round[], unit: string) => [
    label,
    perRound(rs.map(rate)),
    `${mean(rs.map(rate)).toFixed(1)} ${unit}`,
    rs.map((r) => `${r.done}/${POSTS}`).join(", "),
    s(mean(rs.map((r) => r.lastAnsweredAt - r.firstSentAt))),
    s(mean(rs.map((r) => r.lastFinishedAt - r.firstSentAt))),
    mb(median(rs.map((r) => r.peakRss))),
    s(mean(rs.map((r) => r.startMs))),
  ];
  const all = [...rounds.n8n, ...rounds.pai, ...rounds.paiOneEach];
  const oneEachRate = mean(rounds.paiOneEach.map(rate));
  const problems = all.filter((r) => failed(r) > 0 || r.done < POSTS);
  const aims = [
    `Aim 1, pai against n8n: pai sessions/s ÷ n8n executions/s = ${x(paiRate / n8nRate)} (aim: at least ${AIM_PEER}x) — ${verdict(paiRate >= AIM_PEER * n8nRate)}.`,
    `Aim 2, pai against bare spawns: pai sessions/s ÷ bare spawns/s of dist/pai harness = ${x(paiRate / bareRate)} (aim: at least ${AIM_BARE}x) — ${verdict(paiRate >= AIM_BARE * bareRate)}.`,
    `Aim 3, wait round trip: p50 ${ms(waitP50)} ÷ bare spawn p50 ${ms(bareP50)} = ${x(waitP50 / bareP50)} (aim: at most ${AIM_WAIT}x) — ${verdict(waitP50 <= AIM_WAIT * bareP50)}.`,
  ];
  return {
    title:
      `n8n beside pai, same machine, same run: ${POSTS} POSTs ${BODY} with ${IN_FLIGHT} in flight (one closed loop of keep-alive fetches, the same for both), ` +
      `${ROUNDS} rounds of each case, alternated, each server fresh; runs counted from the first request to the last finished run`,
    rows: [
      ["case", "rounds (runs/s)", "mean", "runs counted per round", "all answered after", "last run finished after", "server peak RSS (median)", "server start"],
      serverRow(`n8n ${n8nVersion} (node ${nodeVersion}, regular mode, default SQLite): Webhook → Set, execution_entity success`, rounds.n8n, "executions/s"),
      serverRow("pai: dist/pai serve, default flags, the example pai/echo agent (manifests/examples/echo.yaml: spec.harness.reuse) from a manifests folder, fire-and-forget webhook: sessions Complete in pai.db", rounds.pai, "sessions/s"),
      serverRow("pai, one process per session: the same agent without spec.harness.reuse (warm processes, --warm-processes 2 by default)", rounds.paiOneEach, "sessions/s"),
      [`bare: ${POSTS} spawns of dist/pai harness without IPC (exits 2 at once), ${IN_FLIGHT} at a time`, perRound(rounds.bare), `${bareRate.toFixed(1)} spawns/s`, "", "", "", "", ""],
      [`wait: POST {"title":"hi","wait":30} to the pai/echo webhook, ${WAIT_RUNS} sequential`, "", `p50 ${ms(waitP50)}`, `p99 ${ms(percentile(waits.wait, 99))}`, "", "", "", ""],
      [`bare spawn, one at a time, interleaved with the wait requests`, "", `p50 ${ms(bareP50)}`, `p99 ${ms(percentile(waits.bare, 99))}`, "", "", "", ""],
      [`wait, one process per session (warm): the same requests`, "", `p50 ${ms(median(waitsOneEach.wait))}`, `p99 ${ms(percentile(waitsOneEach.wait, 99))}`, "", "", "", ""],
      [`bare spawn, interleaved with those`, "", `p50 ${ms(median(waitsOneEach.bare))}`, `p99 ${ms(percentile(waitsOneEach.bare, 99))}`, "", "", "", ""],
      [`wait, one process per session spawned for it (--warm-processes 0)`, "", `p50 ${ms(median(waitsCold.wait))}`, `p99 ${ms(percentile(waitsCold.wait, 99))}`, "", "", "", ""],
      [`bare spawn, interleaved with those`, "", `p50 ${ms(median(waitsCold.bare))}`, `p99 ${ms(percentile(waitsCold.bare, 99))}`, "", "", "", ""],
    ],
    notes: [
      ...aims,
      `One process per session (the agent without spec.harness.reuse): ${x(oneEachRate / n8nRate)} n8n, ${x(oneEachRate / bareRate)} bare spawns, wait p50 ${x(median(waitsOneEach.wait) / median(waitsOneEach.bare))} a bare spawn (${x(median(waitsCold.wait) / median(waitsCold.bare))} with no warm process).`,
      `What is compared: n8n executes the workflow inside its own process (the webhook answers "Workflow was started", the execution is saved to SQLite); ` +
        `pai commits a session, then starts an isolated agent run in a child process of its own (dist/pai harness), which echoes and exits. ` +
        `Both webhooks answer before the run. n8n runs with N8N_EXPRESSION_ENGINE=legacy (isolated-vm is not built) and telemetry off; pai with its defaults (--max-sessions 8).`,
      `Server start: spawn until webhooks are taken (n8n: the workflow activated; pai: /readyz and the agent's webhook URL). Peak RSS: the server process alone, not pai's session children.`,
      ...problems.map((r) => `A round counted ${r.done} of ${POSTS} runs${failed(r) ? `, ${failed(r)} POSTs not answered 200 (first: ${r.firstError})` : ""}.`),
    ],
  };
}
