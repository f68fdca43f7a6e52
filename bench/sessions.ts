/**
 * Session benchmarks: the spawn path (startSession until session.status_closed for a pai/echo
 * session) and throughput with 8 in flight, each beside bare spawns of the same binary exiting at
 * once; the memory of an idle harness child; and the server's memory with 50 sessions running.
 *
 * The first two compose the real pieces in this process the way src/server.ts does (store, session
 * service, supervisor whose children are dist/pai), without HTTP in between.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { createCore } from "../src/core";
import { sessionKey } from "../src/service/topics";
import { childEnv as sessionChildEnv } from "../src/supervisor/env";
import type { HarnessMessage, StartMessage } from "../src/harness/protocol";
import { EventType, Phase, isFinal, type Session } from "../src/domain/session";
import { createLogger } from "../src/lib/log";
import {
  childPids, freePort, mb, median, memory, ms, msUntilOk, percentile, serveCommand, spawnChild, track,
  type BenchContext, type Report,
  hangingModel,
} from "./lib";

const SPAWN_AIM_MS = 5;
const THROUGHPUT_AIM = 0.6;
const IN_FLIGHT = 8;
const HARNESS_RSS_AIM = 30 * 1024 * 1024;
const HARNESS_SETTLE_MS = 300;
const LOADED_SESSIONS = 50;
const IDLE_MS = 1000;
const WARMUP = 5;

// ---- the pieces of `pai serve`, in this process ------------------------------------------------

interface Timings {
  /** sessions.start() resolved: the Pending row is committed and the child spawned. */
  committed: number;
  /** session.status_running published (committed). */
  running: number;
  /** agent.message published: the child booted, took the start message and ran pai/echo. */
  message: number;
  /** onClosed fired: the child exited, was reaped, and the final phase is committed. */
  closed: number;
}

/** The server's core (src/core.ts, as `pai serve` runs it, without HTTP), with an echo agent. */
async function openRig(ctx: BenchContext, maxSessions = IN_FLIGHT) {
  const dataDir = ctx.tmp.dir("data-rig");
  const log = createLogger("warn");
  const core = createCore({ dataDir, maxSessions, trustedProxies: [], allowPrivateCallbacks: false }, log, { command: [ctx.pai], env: ctx.env, credentials: {} });
  const { sessions, supervisor, topics } = core;
  await core.start("http://localhost");
  const agent = (await core.agents.apply({ name: "echo", namespace: "default", spec: { models: ["pai/echo"] } }, "api")).agent;
  const killChildren = () => {
    for (const pid of supervisor.pids()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  };
  process.on("exit", killChildren);

  /** One pai/echo session, from start() until its closing is observed; times since the call. */
  async function run(): Promise<Timings> {
    const t0 = performance.now();
    const s = await sessions.start(agent, { title: "ping", origin: { kind: "api" } });
    const committed = performance.now() - t0;
    const seen: Record<string, number> = {};
    const k = sessionKey(s.namespace, s.name);
    const unsubscribe = topics.sessionEvent.subscribeKey(k, ({ event: e }) => (seen[e.type] ??= performance.now() - t0));
    const done = await new Promise<Session>((resolve) => {
      const off = topics.sessionEnded.subscribeKey(k, resolve);
      const now = sessions.find(s.namespace, s.name) as Session | undefined; // the local store answers at once
      if (now && isFinal(now.phase)) {
        off();
        resolve(now);
      }
    });
    const closed = performance.now() - t0;
    unsubscribe();
    if (done.phase !== Phase.Complete) throw new Error(`session ${s.name} ended ${done.phase}: ${done.error}`);
    return {
      committed,
      running: seen[EventType.StatusRunning] ?? NaN,
      message: seen[EventType.AgentMessage] ?? NaN,
      closed,
    };
  }

  return {
    run,
    async close() {
      await core.stop();
      process.off("exit", killChildren);
    },
  };
}

// ---- bare spawns --------------------------------------------------------------------------------

/** Spawns `cmd`, which exits at once with `expect`, and waits until it is reaped; ms. */
export async function bareSpawn(ctx: BenchContext, cmd: string[], expect = 0): Promise<number> {
  const t0 = performance.now();
  const proc = Bun.spawn(cmd, { cwd: ctx.cwd, env: ctx.env, stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  const code = await track(proc);
  if (code !== expect) throw new Error(`${cmd.join(" ")} exited ${code}, expected ${expect}`);
  return performance.now() - t0;
}

/**
 * The baselines. `pai harness` without an IPC channel is the same binary and the same module
 * graph as a session's child, and exits at once (code 2, one line on stderr); `pai version` loads
 * the whole CLI first, so it is slower than a session and no fair "bare" spawn.
 */
const baselines = (ctx: BenchContext) => ({
  bare: { label: "bare: dist/pai harness without IPC (exits 2 at once)", run: () => bareSpawn(ctx, [ctx.pai, "harness"], 2) },
  version: { label: "dist/pai version (loads the CLI modules first)", run: () => bareSpawn(ctx, [ctx.pai, "version"]) },
  bareExit: { label: "Bun binary that exits at once (bench/bare-exit.ts)", run: () => bareSpawn(ctx, [ctx.bareExit]) },
  floor: { label: "floor: true", run: () => bareSpawn(ctx, ["true"]) },
});

// `prompt` is for versions of the harness before the prompt was composed in the harness from `title`.
const startSession = { name: "bench-run-00000000", namespace: "default", prompt: "ping", title: "ping", origin: {}, hasPayload: false };
const startMessage: StartMessage = {
  type: "start",
  session: startSession,
  spec: { models: ["pai/echo"] },
  credentials: {},
  tools: { allowUnsandboxed: false, allowPrivateFetch: false, hidden: [] },
};

/** Spawns `pai harness` as the supervisor does (IPC, json, stderr piped), sends the start message, waits for exit; ms. */
async function harnessAlone(ctx: BenchContext): Promise<{ total: number; spawnCall: number; message: number }> {
  const t0 = performance.now();
  let message = NaN;
  let result: HarnessMessage | undefined;
  const proc = Bun.spawn([ctx.pai, "harness"], {
    cwd: ctx.cwd,
    env: sessionChildEnv(ctx.env),
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
    serialization: "json",
    ipc: (m: HarnessMessage) => {
      if (m.type === "event") message = Number.isNaN(message) ? performance.now() - t0 : message;
      else result = m;
    },
  });
  const spawnCall = performance.now() - t0;
  const stderr = new Response(proc.stderr).text();
  proc.send(startMessage);
  const code = await track(proc);
  const total = performance.now() - t0;
  if (result?.type !== "result" || result.phase !== "Complete") throw new Error(`pai harness exited ${code} without a Complete result:\n${await stderr}`);
  return { total, spawnCall, message };
}

const signed = (v: number) => `${v >= 0 ? "+" : ""}${v.toFixed(1)} ms`;

// ---- 1. spawn path ------------------------------------------------------------------------------

export async function spawnPath(ctx: BenchContext): Promise<Report> {
  const rig = await openRig(ctx);
  try {
    const timings: Timings[] = [];
    const alone: Awaited<ReturnType<typeof harnessAlone>>[] = [];
    const base = baselines(ctx);
    const cases = {
      session: {
        label: "pai/echo session, start() → status_closed",
        run: async () => {
          const t = await rig.run();
          timings.push(t);
          return t.closed;
        },
      },
      harness: {
        label: "pai harness alone, as spawned by the supervisor: IPC start message, echo, exit (no store)",
        run: async () => {
          const t = await harnessAlone(ctx);
          alone.push(t);
          return t.total;
        },
      },
      ...base,
    };
    type Case = keyof typeof cases;
    const order = Object.keys(cases) as Case[];
    const times = Object.fromEntries(order.map((c) => [c, [] as number[]])) as Record<Case, number[]>;
    for (let i = 0; i < WARMUP; i++) for (const c of order) await cases[c].run();
    timings.length = 0;
    alone.length = 0;
    for (let i = 0; i < ctx.samples; i++)
      for (let j = 0; j < order.length; j++) {
        const c = order[(i + j) % order.length]!; // rotate, so no case always runs right after another
        times[c].push(await cases[c].run());
      }

    const bare = median(times.bare);
    const diff = median(times.session) - bare;
    const verdict = diff <= SPAWN_AIM_MS ? "met" : "MISSED";
    const row = (c: Case) => {
      const m = median(times[c]);
      return [cases[c].label, ms(m), ms(percentile(times[c], 99)), signed(m - bare), c === "session" ? verdict : ""];
    };
    const step = (pick: (t: Timings) => number) => ms(median(timings.map(pick)));
    return {
      title: `Spawn path: sessions.start() until session.status_closed for pai/echo, store + supervisor composed in this process as src/server.ts does (no HTTP), children are dist/pai; ${ctx.samples} sequential runs of each case, interleaved`,
      rows: [["case", "p50", "p99", "p50 - bare p50", `aim: p50 within +${SPAWN_AIM_MS} ms of bare`], ...order.map(row)],
      notes: [
        `p50 difference, session - bare: ${signed(diff)} (aim: at most +${SPAWN_AIM_MS} ms) — ${verdict}. ` +
          `Stricter: session - Bun binary that exits at once ${signed(median(times.session) - median(times.bareExit))}; ` +
          `session - harness alone (what the store and supervisor add) ${signed(median(times.session) - median(times.harness))}.`,
        `Session, p50 of each step: start() (insert committed, then Bun.spawn) ${step((t) => t.committed)}; ` +
          `→ status_running committed ${step((t) => t.running - t.committed)}; ` +
          `→ agent.message committed (child booted, got the start message, ran echo) ${step((t) => t.message - t.running)}; ` +
          `→ closed (child exited and reaped, final phase committed) ${step((t) => t.closed - t.message)}.`,
        `Harness alone, p50 since spawn: Bun.spawn() returned ${ms(median(alone.map((a) => a.spawnCall)))}, first event over IPC ${ms(median(alone.map((a) => a.message)))}, reaped ${ms(median(alone.map((a) => a.total)))}.`,
      ],
    };
  } finally {
    await rig.close();
  }
}

// ---- 2. throughput ------------------------------------------------------------------------------

/** Runs `job` `n` times with `inFlight` outstanding; completions per second. */
async function perSecond(n: number, inFlight: number, job: () => Promise<unknown>): Promise<{ seconds: number; rate: number }> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < n) {
        next++;
        await job();
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, rate: n / seconds };
}

export async function sessionThroughput(ctx: BenchContext): Promise<Report> {
  const n = ctx.samples;
  const rig = await openRig(ctx, IN_FLIGHT);
  try {
    const cases = { session: { label: "pai/echo sessions, start() → status_closed", run: () => rig.run() }, ...baselines(ctx) };
    type Case = keyof typeof cases;
    const order = Object.keys(cases) as Case[];
    for (const c of order) await perSecond(IN_FLIGHT * 2, IN_FLIGHT, cases[c].run); // warm-up
    const results = {} as Record<Case, { seconds: number; rate: number }>;
    for (const c of order) results[c] = await perSecond(n, IN_FLIGHT, cases[c].run);
    const bare = results.bare.rate;
    const share = results.session.rate / bare;
    const verdict = share >= THROUGHPUT_AIM ? "met" : "MISSED";
    const row = (c: Case) => [
      cases[c].label, `${results[c].seconds.toFixed(2)} s`, `${results[c].rate.toFixed(1)}/s`, `${((results[c].rate / bare) * 100).toFixed(0)}%`, c === "session" ? verdict : "",
    ];
    return {
      title: `Throughput: ${n} completions with ${IN_FLIGHT} in flight (in-process supervisor, maxSessions ${IN_FLIGHT}, children are dist/pai)`,
      rows: [["case", "elapsed", "rate", "of bare", `aim: at least ${THROUGHPUT_AIM * 100}% of bare`], ...order.map(row)],
      notes: [`sessions/bare: ${(share * 100).toFixed(0)}% (aim: at least ${THROUGHPUT_AIM * 100}%) — ${verdict}; stricter: sessions/Bun binary that exits at once ${((results.session.rate / results.bareExit.rate) * 100).toFixed(0)}%`],
    };
  } finally {
    await rig.close();
  }
}

// ---- 3. memory of one idle harness child --------------------------------------------------------

type Memory = ReturnType<typeof memory>;

/** Spawns `pai harness` the way the supervisor does, sends nothing (it waits), reads its memory after HARNESS_SETTLE_MS. */
async function idleHarness(ctx: BenchContext, warm = false): Promise<Memory> {
  const proc: Subprocess = Bun.spawn([ctx.pai, "harness", ...(warm ? ["--warm"] : [])], {
    cwd: ctx.cwd,
    env: sessionChildEnv(ctx.env),
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
    serialization: "json",
    ipc: () => {},
  });
  const exited = track(proc);
  try {
    await Bun.sleep(HARNESS_SETTLE_MS);
    if (proc.exitCode !== null) throw new Error(`pai harness exited ${proc.exitCode} while waiting for its start message`);
    return memory(proc.pid);
  } finally {
    proc.kill("SIGKILL");
    await exited;
  }
}

/** The bare Bun server binary, HARNESS_SETTLE_MS after it answered /readyz. */
async function idleBare(ctx: BenchContext): Promise<Memory> {
  const port = freePort();
  const child = spawnChild(serveCommand(ctx.bare, port, ctx.tmp.dir("data-bare")), { cwd: ctx.cwd, env: ctx.env });
  try {
    await msUntilOk(child, `http://127.0.0.1:${port}/readyz`);
    await Bun.sleep(HARNESS_SETTLE_MS);
    return memory(child.pid);
  } finally {
    await child.stop();
  }
}

export async function harnessMemory(ctx: BenchContext): Promise<Report> {
  const runs = Math.max(3, Math.ceil(ctx.runs / 3));
  const harness: Memory[] = [];
  const warm: Memory[] = [];
  const bare: Memory[] = [];
  for (let i = 0; i < runs; i++) {
    harness.push(await idleHarness(ctx));
    warm.push(await idleHarness(ctx, true));
    bare.push(await idleBare(ctx));
  }
  const rss = median(harness.map((m) => m.rss));
  const row = (label: string, m: Memory[], verdict = "") => [label, mb(median(m.map((x) => x.rss))), mb(median(m.map((x) => x.peak))), verdict];
  return {
    title: `Harness memory: one idle \`pai harness\` child (IPC open, no start message), ${HARNESS_SETTLE_MS} ms after spawn, median of ${runs} runs`,
    rows: [
      ["process", "RSS (VmRSS)", "peak (VmHWM)", `aim: at most ${mb(HARNESS_RSS_AIM)}`],
      row("pai harness, idle", harness, rss <= HARNESS_RSS_AIM ? "met" : "MISSED"),
      row("a warm process (pai harness --warm: agent code loaded, pai/echo run once), idle; --warm-processes of these wait once sessions ran", warm),
      row("bare Bun server binary (bench/bare-server.ts), after /readyz", bare),
    ],
  };
}

// ---- 4. the server with 50 sessions running -----------------------------------------------------

/** The server's children and their memory now (a child may exit while it is read). */
function childrenMemory(pid: number): { count: number; rss: number } {
  let count = 0;
  let rss = 0;
  for (const child of childPids(pid)) {
    try {
      rss += memory(child).rss;
      count++;
    } catch {
      // gone
    }
  }
  return { count, rss };
}

export async function serverMemoryWithSessions(ctx: BenchContext): Promise<Report> {
  const fake = hangingModel();
  const port = freePort();
  const dataDir = ctx.tmp.dir("data-loaded");
  const env = { ...ctx.env, ANTHROPIC_API_KEY: "x", ANTHROPIC_BASE_URL: fake.url };
  const child = spawnChild(serveCommand(ctx.pai, port, dataDir, ["--max-sessions", String(LOADED_SESSIONS)]), { cwd: ctx.cwd, env });
  const seenChildren = new Set<number>();
  const base = `http://127.0.0.1:${port}`;
  try {
    await msUntilOk(child, `${base}/readyz`);
    const token = readFileSync(join(dataDir, "admin-token"), "utf8").trim();
    const api = async (path: string, init: RequestInit & { json?: unknown } = {}) => {
      const res = await fetch(`${base}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${token}`, ...(init.json !== undefined ? { "content-type": "application/json" } : {}) },
        body: init.json !== undefined ? JSON.stringify(init.json) : undefined,
        signal: AbortSignal.timeout(10_000),
      });
      const body = await res.json().catch(() => null);
      if (!res.ok) throw new Error(`${init.method ?? "GET"} ${path}: HTTP ${res.status} ${JSON.stringify(body)}`);
      return body;
    };
    await api("/apis/pai.io/v1/namespaces/default/agents/hang", {
      method: "PUT",
      json: { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name: "hang" }, spec: { models: ["anthropic/claude-hang"] } },
    });
    await Bun.sleep(IDLE_MS);
    const idle = memory(child.pid);
    const idleChildren = childrenMemory(child.pid);

    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: LOADED_SESSIONS }, (_, i) =>
        api("/apis/pai.io/v1/namespaces/default/sessions", { method: "POST", json: { agentDefinition: "hang", title: `hang ${i}` } }),
      ),
    );
    const deadline = t0 + 60_000;
    let running = 0;
    for (;;) {
      const list = (await api("/apis/pai.io/v1/namespaces/default/sessions")) as { items: { session: string; phase: string; error: string | null }[] };
      const ended = list.items.find((s) => isFinal(s.phase));
      if (ended) throw new Error(`session ${ended.session} ended ${ended.phase} instead of waiting on the model: ${ended.error}\n${child.stderr()}`);
      running = list.items.filter((s) => s.phase === Phase.Running).length;
      if (running === LOADED_SESSIONS && fake.received() >= LOADED_SESSIONS) break;
      if (performance.now() > deadline)
        throw new Error(`after 60 s: ${running} of ${LOADED_SESSIONS} sessions Running, ${fake.received()} model requests\n${child.stderr()}`);
      await Bun.sleep(50);
    }
    const allWaiting = performance.now() - t0;
    for (const pid of childPids(child.pid)) seenChildren.add(pid);
    await Bun.sleep(IDLE_MS);
    const loaded = memory(child.pid);
    const kids = childrenMemory(child.pid);
    for (const pid of childPids(child.pid)) seenChildren.add(pid);

    const t1 = performance.now();
    await child.stop(15_000); // SIGTERM: the server ends its sessions, then exits
    const stopMs = performance.now() - t1;
    const perChild = kids.count ? kids.rss / kids.count : NaN;
    return {
      title: `Server memory with ${LOADED_SESSIONS} sessions running: dist/pai serve --max-sessions ${LOADED_SESSIONS}, each session's model request hanging on a local fake Anthropic API`,
      rows: [
        ["", "server RSS (VmRSS)", "server peak (VmHWM)", "children", "children RSS total", "per child"],
        ["idle: ready, agent applied, 1 s later", mb(idle.rss), mb(idle.peak), String(idleChildren.count), mb(idleChildren.rss), "-"],
        [`${running} sessions Running, 1 s after all waited on the model`, mb(loaded.rss), mb(loaded.peak), String(kids.count), mb(kids.rss), mb(perChild)],
        ["difference", mb(loaded.rss - idle.rss), mb(loaded.peak - idle.peak), "", "", ""],
      ],
      notes: [
        `${LOADED_SESSIONS} sessions started over HTTP were all Running with ${fake.received()} model requests open after ${ms(allWaiting)}; SIGTERM stopped the server and its sessions in ${ms(stopMs)}.`,
        `A child here has loaded the Anthropic SDK and holds a request open: compare "per child" with the idle harness above (aim ${mb(HARNESS_RSS_AIM)}).`,
      ],
    };
  } finally {
    await child.stop(5000);
    // A harness exits with its server; make sure (only pids that still run `pai harness`).
    for (const pid of seenChildren) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes("harness")) process.kill(pid, "SIGKILL");
      } catch {
        // gone, as it should be
      }
    }
    await fake.stop();
  }
}
