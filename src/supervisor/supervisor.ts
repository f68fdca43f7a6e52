/**
 * The supervisor: runs Pending sessions as child processes of this same program (`pai harness`),
 * within a global limit and each agent's `spec.maxConcurrentSessions`, agents taking turns. It
 * enforces the deadline (SIGTERM, then SIGKILL), cancels on request, stores what the child
 * reports, and always ends a session with `session.status_closed` — also when the child crashes,
 * cannot be started, or the server restarts.
 *
 * Scheduling never runs on a caller's stack: a start commits, then the next event-loop turn
 * spawns, a few children per turn, so a burst of runnable sessions does not hold the loop that
 * accepts webhooks. The spawns themselves run on a thread of their own (./spawner.ts): fork and
 * exec never stall the loop. Children run at a lower CPU priority than the server (`sessionNice`).
 * That thread also keeps warm children, started ahead of demand, each for one session; agents
 * with `spec.harness.reuse` have their children spawned and kept on this thread (`keeper`).
 */
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { getPriority } from "node:os";
import { join } from "node:path";
import { DEFAULT_REUSE_IDLE_SECONDS, DEFAULT_REUSE_MAX_SESSIONS, type ValueVar } from "../domain/agent";
import { ConflictError } from "../domain/errors";
import { DEFAULT_TIMEOUT_SECONDS, EventType, Phase, addUsage, isFinal, mustBeSetAtSpawn, type Session, type SessionUsage } from "../domain/session";
import type { Logger } from "../lib/log";
import type { SessionService } from "../service/sessions";
import type { HarnessMessage, HarnessResult, ModelCredentials, ResolvedMcpServer, StartMessage, ToolPolicy } from "../harness/protocol";
import { childEnv } from "./env";
import { PendingQueue, type QueueLimits } from "./queue";
import { createLocalWorkSource, type WorkSource } from "./work";
import { createSpawner, type ChildStart, type SpawnEvent, type Spawner } from "./spawner";

export const DEFAULT_SESSION_NICE = 10;
/** Children spawned per event-loop turn before yielding to the requests waiting behind them. */
export const SPAWNS_PER_TURN = 4;
/** Session processes started ahead of demand (`--warm-processes`). */
export const DEFAULT_WARM_CHILDREN = 2;

export interface SupervisorDeps {
  sessions: SessionService;
  log: Logger;
  maxSessions: number;
  /** argv that starts this program; `harness` is appended. */
  command: string[];
  baseEnv: Record<string, string | undefined>;
  credentials: ModelCredentials;
  /** Time between SIGTERM and SIGKILL. */
  graceMs?: number;
  /** Each session runs in `<workDir>/<namespace>/<session>`; a webhook payload is put there as webhook.json. */
  workDir: string;
  /** Added to the server's nice value for each child (capped at 19); 0 runs children at the server's priority. */
  sessionNice?: number;
  /** How tools may run (sandbox policy, hidden paths, private fetches). */
  tools?: ToolPolicy;
  /** A key of a Secret, for MCP servers' `valueFrom.secretKeyRef` (undefined: no such Secret or key). */
  secretValue?: (namespace: string, name: string, key: string) => string | undefined;
  /** How much of the backlog is held in memory (tests make it small). */
  queue?: Partial<QueueLimits>;
  /** Where the next session comes from; default: this process's store (the session service, if it is the local one). */
  work?: WorkSource;
  /** Replicas: asks the replica running a session to cancel it (it is Running, but not here). */
  cancelElsewhere?: (s: Session) => Promise<Session>;
  spawnsPerTurn?: number;
  /** Session processes kept started ahead of demand, each for one session (default DEFAULT_WARM_CHILDREN; 0: none). */
  warmChildren?: number;
  /** Told how each session's child came to be (for the metrics). */
  onChildStart?: (how: ChildStart) => void;
}

interface Run {
  /** The spawner's handle on the run. */
  id: number;
  /** The spawner that holds its child. */
  via: Spawner;
  session: Session;
  /** Known once the spawner reports the child running. */
  pid?: number;
  result?: HarnessResult;
  /** Token counts of the model calls reported so far. */
  usage: SessionUsage | null;
  stopReason?: { phase: Phase; error: string };
  deadline?: ReturnType<typeof setTimeout>;
  kill?: ReturnType<typeof setTimeout>;
  /** Settles once the run is over: its end handled, or its child never started. */
  over: Promise<void>;
  settle: () => void;
}

const STDERR_TAIL = 2000;
const key = (s: { namespace: string; name: string }) => `${s.namespace}/${s.name}`;

/** An error's message without file paths (they would tell session readers where the data dir is). */
function reasonOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/\s*'[^']*'/g, "").replace(/,\s*$/, "") || "unknown error";
}

export function createSupervisor(deps: SupervisorDeps) {
  const { sessions, log } = deps;
  const graceMs = deps.graceMs ?? 5000;
  const spawnsPerTurn = deps.spawnsPerTurn ?? SPAWNS_PER_TURN;
  const work: WorkSource =
    deps.work ??
    createLocalWorkSource({ sessions: sessions as unknown as Parameters<typeof createLocalWorkSource>[0]["sessions"], topics: sessions.topics, queue: deps.queue });
  /** Runs whose child is asked for, running, or not yet reported gone, by session and by spawner id. */
  const running = new Map<string, Run>();
  const runs = new Map<number, Run>();
  let lastId = 0;
  /** Runs not over yet (also those whose end is still being committed), for stop() to wait on. */
  const unsettled = new Set<Promise<void>>();
  const perAgent = new Map<string, number>();
  /** Pending sessions being cancelled: their Cancelled is not committed yet, so they must not start meanwhile. */
  const cancelling = new Set<string>();
  let stopping = false;
  let started = false;
  let scheduled = false;
  const childNice = Math.min(19, ownNice() + (deps.sessionNice ?? DEFAULT_SESSION_NICE));
  let niceFailed = false;
  /** Made at the first spawn, so a server that runs no session holds no spawner thread. */
  let spawner: Spawner | undefined;
  /** After the spawner thread failed once, children are spawned on this thread. */
  let spawnInline = false;
  /**
   * The children of agents that reuse them (`spec.harness.reuse`), on this thread: such a child is
   * spawned once for up to maxSessionsPerProcess sessions, so the few ms a spawn holds this thread
   * are rare, while every session it runs saves two hops between threads (~0.3 ms of its round
   * trip, measured on the core with pai/echo). Made at the first such session.
   */
  let keeper: Spawner | undefined;
  const spawnerOptions = (warmChildren: number) => {
    // Children started before their session wait in the sessions folder, with no session's env.
    try {
      mkdirSync(deps.workDir, { recursive: true, mode: 0o700 });
    } catch {
      // Each session's own folder fails to be made too, and says why.
    }
    return {
      childNice: childNice > 0 ? childNice : -1,
      stderrTail: STDERR_TAIL,
      warmChildren,
      early: { cmd: [...deps.command, "harness", "--warm"], cwd: deps.workDir, env: childEnv(deps.baseEnv) },
      // Idle children of agents that reuse them: at most one per session slot.
      maxIdle: deps.maxSessions,
    };
  };
  const spawnerOf = () => (spawner ??= createSpawner(spawnerOptions(deps.warmChildren ?? DEFAULT_WARM_CHILDREN), onSpawnEvent, onSpawnerError, spawnInline));
  const keeperOf = () => (keeper ??= createSpawner(spawnerOptions(0), onSpawnEvent, () => {}, true));

  const agentKey = (s: Session) => PendingQueue.agentKey(s.namespace, s.agentDefinition);

  function ownNice(): number {
    try {
      return getPriority();
    } catch {
      return 0;
    }
  }

  /** Runs the scheduler on a later turn of the event loop, once however often it is asked. */
  function schedule() {
    if (scheduled || stopping || !started) return;
    scheduled = true;
    setImmediate(runQueue);
  }

  /** True while a pass of the queue runs (a pass may wait on the source); a schedule meanwhile asks for another. */
  let draining = false;
  let again = false;

  async function runQueue() {
    scheduled = false;
    if (stopping) return;
    if (draining) {
      again = true;
      return;
    }
    draining = true;
    try {
      const runningHere = (k: string) => perAgent.get(k) ?? 0;
      const skip = (s: Session) => cancelling.has(key(s));
      let spawned = 0;
      while (running.size < deps.maxSessions && !stopping) {
        if (spawned >= spawnsPerTurn) return schedule(); // yield: requests wait behind this turn
        let session: Session | undefined;
        try {
          const next = work.next(runningHere, skip);
          session = next instanceof Promise ? await next : next;
        } catch (err) {
          // The store could not be read: try again on a later turn rather than stall for good.
          log.error("failed to read the session queue", { error: (err as Error).message });
          setTimeout(schedule, 1000);
          return;
        }
        if (!session) return;
        if (stopping) return;
        // A failed spawn counts too: a cause that fails every spawn (EMFILE, ENOMEM) must not hold the loop either.
        spawn(session);
        spawned++;
      }
    } finally {
      draining = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  }

  /**
   * Asks the spawner for a session's child. The slot is held from now; the session is Running once
   * the child runs, and a failure to start it ends the session Error and frees the slot.
   */
  function spawn(session: Session) {
    let start: StartMessage;
    let env: Record<string, string>;
    try {
      // Made before the child exists: anything in the session that cannot be turned into a start
      // message fails this session alone, not the scheduler.
      const { models, system, tools, maxTurns, maxTokens, sandbox, mcpServers } = session.spec;
      const { sender, event, delivery } = session.origin;
      start = {
        type: "start",
        session: { name: session.name, namespace: session.namespace, title: session.title, origin: { sender, event, delivery }, hasPayload: session.payload !== undefined },
        spec: { models, system, tools, maxTurns, maxTokens, sandbox, mcpServers },
        ...(mcpServers?.length ? { mcpServers: resolveMcpServers(session) } : {}),
        credentials: deps.credentials,
        tools: deps.tools ?? { allowUnsandboxed: false, allowPrivateFetch: false, hidden: [] },
      };
      env = childEnv(deps.baseEnv, session.spec.env, session.env);
    } catch (err) {
      failToStart(session, err);
      return;
    }
    let settle!: () => void;
    const over = new Promise<void>((resolve) => (settle = resolve));
    unsettled.add(over);
    over.then(() => unsettled.delete(over));
    const run: Run = { id: ++lastId, via: undefined as never, session, usage: null, over, settle };
    running.set(key(session), run);
    runs.set(run.id, run);
    perAgent.set(agentKey(session), (perAgent.get(agentKey(session)) ?? 0) + 1);
    const cwd = join(deps.workDir, session.namespace, session.name);
    const ownEnv = [...(session.spec.env ?? []), ...(session.env ?? [])];
    // A variable read as the runtime starts needs a child spawned with it; any other session may
    // run in a child started before it (warm, or kept by its agent).
    const early = !ownEnv.some((e) => mustBeSetAtSpawn(e.name));
    const h = session.spec.harness;
    const reuse =
      h?.reuse && early
        ? {
            // Never across agents or namespaces, nor across versions of the agent's spec.
            key: `${session.namespace}/${session.agentDefinition}/${Bun.hash(JSON.stringify(session.spec)).toString(36)}`,
            maxRuns: h.maxSessionsPerProcess ?? DEFAULT_REUSE_MAX_SESSIONS,
            idleMs: (h.idleSeconds ?? DEFAULT_REUSE_IDLE_SECONDS) * 1000,
          }
        : undefined;
    run.via = reuse ? keeperOf() : spawnerOf();
    run.via.send({ t: "spawn", id: run.id, cmd: [...deps.command, "harness"], cwd, env, payload: session.payload, hasPayload: session.payload !== undefined, start, early, ...(reuse ? { reuse } : {}) });
  }

  /**
   * The agent's MCP servers with `valueFrom` resolved from its namespace's Secrets. A server whose
   * Secret or key is missing is left out, with an error event that names it: the run goes on.
   */
  function resolveMcpServers(s: Session): ResolvedMcpServer[] {
    const out: ResolvedMcpServer[] = [];
    for (const srv of s.spec.mcpServers ?? []) {
      const missing: string[] = [];
      const values = (vars: ValueVar[] | undefined) => {
        const map: Record<string, string> = {};
        for (const v of vars ?? []) {
          if ("value" in v) map[v.name] = v.value;
          else {
            const ref = v.valueFrom.secretKeyRef;
            const value = deps.secretValue?.(s.namespace, ref.name, ref.key);
            if (value === undefined) missing.push(`Secret ${ref.name} key ${ref.key}`);
            else map[v.name] = value;
          }
        }
        return map;
      };
      const resolved: ResolvedMcpServer =
        "command" in srv
          ? { name: srv.name, command: srv.command, args: srv.args, env: values(srv.env), tools: srv.tools }
          : { name: srv.name, url: srv.url, headers: values(srv.headers), tools: srv.tools };
      if (missing.length) {
        sessions.appendEvent(s.namespace, s.name, EventType.Error, { message: `MCP server ${srv.name} was not started: ${missing.join(", ")} does not exist`, server: srv.name });
        continue;
      }
      out.push(resolved);
    }
    return out;
  }

  function onSpawnEvent(e: SpawnEvent) {
    if (e.t === "warning") return log.warn(e.message);
    if (e.t === "closed") return;
    const run = runs.get(e.id);
    if (!run) return;
    switch (e.t) {
      case "spawned":
        return onSpawned(run, e);
      case "message":
        return onMessage(run, e.msg);
      case "failed":
        release(run);
        // The spawner removed the folder if it made it.
        failToStart(run.session, new Error(e.message), false);
        // The slot is free: the next session need not wait.
        schedule();
        return run.settle();
      case "exit":
        onExit(run, e.code, e.signal, e.stderr).finally(run.settle);
        return;
      case "done":
        // The child reported its result and stays for the agent's next session.
        onExit(run, 0, null, "").finally(run.settle);
    }
  }

  function onSpawned(run: Run, e: Extract<SpawnEvent, { t: "spawned" }>) {
    const again = run.pid !== undefined;
    run.pid = e.pid;
    deps.onChildStart?.(e.how);
    // The waiting child it was given died before it took the run; this one runs it (already Running, its deadline set).
    if (again) return;
    if (e.niceError && !niceFailed) {
      log.warn("cannot lower the priority of session processes", { error: e.niceError });
      niceFailed = true;
    }
    const session = run.session;
    sessions.markRunning(session);
    const seconds = session.spec.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
    run.deadline = setTimeout(() => {
      terminate(run, { phase: Phase.Error, error: `deadline exceeded: the session ran longer than its timeout of ${seconds} s` });
    }, seconds * 1000);
    // The child runs but cannot be told what to do: stop it; onExit ends the session.
    if (e.sendError !== undefined) terminate(run, { phase: Phase.Error, error: `failed to start the harness: ${reasonOf(new Error(e.sendError))}` });
  }

  /** The spawner thread failed: its children cannot be heard any more, so they are killed and their sessions end Error. */
  function onSpawnerError(err: unknown) {
    log.error("the thread that starts session processes failed", { error: (err as Error)?.message ?? String(err) });
    const lost = [...runs.values()].filter((r) => r.via === spawner);
    void spawner?.close();
    spawner = undefined;
    spawnInline = true;
    for (const run of lost) {
      if (run.pid !== undefined) {
        try {
          process.kill(run.pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
      run.stopReason ??= { phase: Phase.Error, error: "the server lost track of the session's process" };
      onExit(run, null, "SIGKILL", "").finally(run.settle);
    }
  }

  /** Frees a run's slot. */
  function release(run: Run) {
    const s = run.session;
    runs.delete(run.id);
    running.delete(key(s));
    perAgent.set(agentKey(s), (perAgent.get(agentKey(s)) ?? 1) - 1);
  }

  /** A session whose child could not be started: Error with the reason, nothing held. */
  function failToStart(s: Session, err: unknown, removeFolder = true) {
    const error = `failed to start the harness: ${reasonOf(err)}`;
    log.error("failed to start a session", { session: key(s), error: (err as Error)?.message ?? String(err) });
    if (removeFolder) removeIfEmpty(join(deps.workDir, s.namespace, s.name));
    sessions.appendEvent(s.namespace, s.name, EventType.Error, { message: error });
    sessions.finish(s, { phase: Phase.Error, response: null, error }).catch((e) => log.error("failed to end a session", { session: key(s), error: (e as Error).message }));
  }

  function removeIfEmpty(dir: string) {
    try {
      if (readdirSync(dir).length === 0) rmSync(dir, { recursive: true });
    } catch {
      // Already gone.
    }
  }

  function onMessage(run: Run, msg: HarnessMessage) {
    // Once the supervisor stops a session (deadline, cancel, shutdown), what the child still says
    // (typically that its model call was aborted) is noise beside the real reason.
    if (!run || run.stopReason || isFinal(run.session.phase)) return;
    if (msg.type === "event") {
      // The closing event is the supervisor's alone, so it is written exactly once.
      if ((msg.event.type as string) === EventType.StatusClosed) return;
      if (msg.event.type === EventType.Usage) run.usage = addUsage(run.usage, msg.event.content.model, msg.event.content);
      sessions.appendEvent(run.session.namespace, run.session.name, msg.event.type, msg.event.content);
    } else if (msg.type === "result") run.result = msg;
  }

  /** SIGTERM now, SIGKILL after the grace period. The first reason given wins. */
  function terminate(run: Run, reason: { phase: Phase; error: string }) {
    run.stopReason ??= reason;
    // The spawner takes requests in order: a child asked for and not yet started is killed once it is.
    run.via.send({ t: "kill", id: run.id, signal: "SIGTERM" });
    run.kill ??= setTimeout(() => run.via.send({ t: "kill", id: run.id, signal: "SIGKILL" }), graceMs);
  }

  /** The child is gone (and the spawner removed its folder if it was left empty). */
  async function onExit(run: Run, code: number | null, signal: string | null, stderr: string) {
    clearTimeout(run.deadline);
    clearTimeout(run.kill);
    const s = run.session;
    let phase: Phase;
    let error: string | null = null;
    if (run.stopReason) {
      phase = run.stopReason.phase;
      error = run.stopReason.error;
    } else if (run.result) {
      phase = run.result.phase === "Complete" ? Phase.Complete : Phase.Error;
      error = run.result.phase === "Error" ? run.result.error : null;
    } else {
      phase = Phase.Error;
      const tail = stderr.trim().split("\n").slice(-3).join(" | ");
      error = `harness exited unexpectedly (${signal ? `killed by ${signal}` : `exit code ${code}`})${tail ? `: ${tail}` : ""}`;
    }
    // The harness reports its own errors; the supervisor reports the ones it saw or caused.
    const harnessReported = !run.stopReason && run.result;
    if (phase === Phase.Error && error && !harnessReported) sessions.appendEvent(s.namespace, s.name, EventType.Error, { message: error });
    release(run);
    log.info("session finished", { session: key(s), phase, ...(error ? { error } : {}) });
    // The slot is free now; the next session need not wait for this commit.
    schedule();
    // The reply is the harness's, when it finished on its own; a session stopped from outside has none.
    const response = !run.stopReason && run.result ? run.result.response : null;
    const finished = await sessions.finish(s, { phase, response, error, usage: run.usage });
    run.session = finished;
  }

  /**
   * Ends every session a previous process left Running, and learns which agents have Pending
   * sessions (not the sessions: they are read from the store in turn).
   */
  async function recover() {
    const stale = await sessions.running();
    for (const s of stale) {
      sessions.appendEvent(s.namespace, s.name, EventType.Error, { message: "interrupted by server restart" });
      await sessions.finish(s, { phase: Phase.Error, response: null, error: "interrupted by server restart" });
    }
    if (stale.length) log.warn("ended sessions interrupted by a restart", { count: stale.length });
    await work.load();
    started = true;
  }

  async function cancel(namespace: string, name: string): Promise<Session> {
    const s = await sessions.get(namespace, name);
    const k = key(s);
    if (isFinal(s.phase)) throw new ConflictError(`session "${name}" already finished (${s.phase})`);
    const run = running.get(k);
    if (run) {
      const closed = new Promise<Session>((resolve) => {
        const off = sessions.topics.sessionEnded.subscribeKey(k, (ended) => {
          off();
          resolve(ended);
        });
      });
      terminate(run, { phase: Phase.Cancelled, error: "cancelled" });
      return closed;
    }
    if (s.phase === Phase.Running && deps.cancelElsewhere) return deps.cancelElsewhere(s);
    if (s.phase !== Phase.Pending) throw new ConflictError(`session "${name}" is not running`);
    if (cancelling.has(k)) throw new ConflictError(`session "${name}" is being cancelled`);
    // Held in memory or waiting in the store only: either way it must not start before Cancelled is committed.
    work.remove(namespace, s.agentDefinition, name);
    cancelling.add(k);
    try {
      return await sessions.finish(s, { phase: Phase.Cancelled, response: null, error: "cancelled" });
    } finally {
      cancelling.delete(k);
    }
  }

  work.onWork(schedule);

  return {
    async start() {
      await recover();
      schedule();
    },
    cancel,
    /** Stops every child; their sessions end Error ("server stopped") before this resolves. */
    async stop() {
      stopping = true;
      for (const run of running.values()) terminate(run, { phase: Phase.Error, error: "interrupted: the server stopped" });
      await Promise.allSettled([...unsettled]);
      await sessions.flush();
      await Promise.all([spawner?.close(), keeper?.close()]);
      spawner = undefined;
      keeper = undefined;
    },
    /** `queued`: Pending sessions in the store (all of them, not only those held in memory). */
    stats: () => {
      const w = work.stats();
      return { running: running.size, queued: w.pending, held: w.held };
    },
    pids: () => [...running.values()].flatMap((r) => (r.pid === undefined ? [] : [r.pid])),
    /** Whether this process runs the session now. */
    runsHere: (namespace: string, name: string) => running.has(`${namespace}/${name}`),
  };
}

export type Supervisor = ReturnType<typeof createSupervisor>;
