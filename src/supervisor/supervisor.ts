/**
 * The supervisor: runs Pending sessions in order as child processes of this same program
 * (`pai harness`), within a global limit and each agent's `spec.maxConcurrentSessions`. It enforces
 * the deadline (SIGTERM, then SIGKILL), cancels on request, stores what the child reports, and
 * always ends a session with `session.status_closed` — also when the child crashes or the server
 * restarts.
 */
import type { Subprocess } from "bun";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConflictError } from "../domain/errors";
import { DEFAULT_TIMEOUT_SECONDS, EventType, Phase, isFinal, type Session } from "../domain/session";
import type { Logger } from "../lib/log";
import type { SessionService } from "../service/sessions";
import type { ModelCredentials } from "../harness/models/types";
import { childEnv } from "./env";
import type { HarnessMessage, StartMessage } from "./protocol";
import { PendingQueue } from "./queue";

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
}

/** The first user message: the title, and where to find the webhook's payload when one came. */
export function promptOf(s: Session): string {
  if (s.payload === undefined) return s.title;
  const from = [s.origin.sender && s.origin.sender !== "generic" ? s.origin.sender : undefined, s.origin.event].filter(Boolean).join(" ");
  const delivery = s.origin.delivery ? ` (delivery ${s.origin.delivery})` : "";
  return `${s.title}\n\nThe webhook's payload${from ? ` (${from} event)` : ""}${delivery} is in the file webhook.json in your working folder.`;
}

interface Run {
  session: Session;
  proc: Subprocess;
  result?: Extract<HarnessMessage, { type: "result" }>;
  response: string | null;
  stopReason?: { phase: Phase; error: string };
  deadline?: ReturnType<typeof setTimeout>;
  kill?: ReturnType<typeof setTimeout>;
  stderr: string;
}

const STDERR_TAIL = 2000;
const key = (s: { namespace: string; name: string }) => `${s.namespace}/${s.name}`;

export function createSupervisor(deps: SupervisorDeps) {
  const { sessions, log } = deps;
  const graceMs = deps.graceMs ?? 5000;
  const queue = new PendingQueue();
  const running = new Map<string, Run>();
  const perAgent = new Map<string, number>();
  const exited = new Set<Promise<unknown>>();
  let stopping = false;

  const agentKey = PendingQueue.agentKey;

  function schedule() {
    if (stopping) return;
    const canRun = (k: string, s: Session) => (perAgent.get(k) ?? 0) < (s.spec.maxConcurrentSessions ?? Infinity);
    while (running.size < deps.maxSessions) {
      const s = queue.take(canRun);
      if (!s) return;
      spawn(s);
    }
  }

  function spawn(session: Session) {
    sessions.markRunning(session);
    perAgent.set(agentKey(session), (perAgent.get(agentKey(session)) ?? 0) + 1);
    let run: Run;
    const cwd = join(deps.workDir, session.namespace, session.name);
    mkdirSync(cwd, { recursive: true, mode: 0o700 });
    if (session.payload !== undefined) writeFileSync(join(cwd, "webhook.json"), JSON.stringify(session.payload, null, 2) + "\n", { mode: 0o600 });
    const proc = Bun.spawn([...deps.command, "harness"], {
      cwd,
      env: childEnv(deps.baseEnv, session.spec.env, session.env),
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
      serialization: "json",
      ipc: (msg: HarnessMessage) => onMessage(run, msg),
    });
    run = { session, proc, response: null, stderr: "" };
    running.set(key(session), run);
    drainStderr(run);
    const start: StartMessage = {
      type: "start",
      session: { name: session.name, namespace: session.namespace, prompt: promptOf(session) },
      spec: { models: session.spec.models, system: session.spec.system },
      credentials: deps.credentials,
    };
    proc.send(start);
    const seconds = session.spec.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
    run.deadline = setTimeout(() => {
      terminate(run, { phase: Phase.Error, error: `deadline exceeded: the session ran longer than its timeout of ${seconds} s` });
    }, seconds * 1000);
    const done = proc.exited.then((code) => onExit(run, code, proc.signalCode ? String(proc.signalCode) : null));
    exited.add(done);
    done.finally(() => exited.delete(done));
  }

  function removeIfEmpty(dir: string) {
    try {
      if (readdirSync(dir).length === 0) rmSync(dir, { recursive: true });
    } catch {
      // Already gone.
    }
  }

  async function drainStderr(run: Run) {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of run.proc.stderr as ReadableStream<Uint8Array>) {
        run.stderr = (run.stderr + decoder.decode(chunk)).slice(-STDERR_TAIL);
      }
    } catch {
      // The pipe closes with the child.
    }
  }

  function onMessage(run: Run, msg: HarnessMessage) {
    // Once the supervisor stops a session (deadline, cancel, shutdown), what the child still says
    // (typically that its model call was aborted) is noise beside the real reason.
    if (!run || run.stopReason || isFinal(run.session.phase)) return;
    if (msg.type === "event") {
      // The closing event is the supervisor's alone, so it is written exactly once.
      if (msg.event.type === EventType.StatusClosed) return;
      if (msg.event.type === EventType.AgentMessage) {
        const text = (msg.event.content as { text?: unknown })?.text;
        if (typeof text === "string") run.response = text;
      }
      sessions.appendEvent(run.session.namespace, run.session.name, msg.event.type, msg.event.content);
    } else if (msg.type === "result") run.result = msg;
  }

  /** SIGTERM now, SIGKILL after the grace period. The first reason given wins. */
  function terminate(run: Run, reason: { phase: Phase; error: string }) {
    run.stopReason ??= reason;
    run.proc.kill("SIGTERM");
    run.kill ??= setTimeout(() => run.proc.kill("SIGKILL"), graceMs);
  }

  async function onExit(run: Run, code: number | null, signal: string | null) {
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
      error = run.result.error ?? null;
    } else {
      phase = Phase.Error;
      const tail = run.stderr.trim().split("\n").slice(-3).join(" | ");
      error = `harness exited unexpectedly (${signal ? `killed by ${signal}` : `exit code ${code}`})${tail ? `: ${tail}` : ""}`;
    }
    // The harness reports its own errors; the supervisor reports the ones it saw or caused.
    const harnessReported = !run.stopReason && run.result;
    if (phase === Phase.Error && error && !harnessReported) sessions.appendEvent(s.namespace, s.name, EventType.Error, { message: error });
    running.delete(key(s));
    removeIfEmpty(join(deps.workDir, s.namespace, s.name));
    perAgent.set(agentKey(s), (perAgent.get(agentKey(s)) ?? 1) - 1);
    log.info("session finished", { session: key(s), phase, ...(error ? { error } : {}) });
    const finished = await sessions.finish(s, { phase, response: run.response, error });
    run.session = finished;
    schedule();
  }

  /** Ends every session a previous process left Running, and queues the Pending ones. */
  async function recover() {
    const stale = sessions.inPhase(Phase.Running);
    for (const s of stale) {
      sessions.appendEvent(s.namespace, s.name, EventType.Error, { message: "interrupted by server restart" });
      await sessions.finish(s, { phase: Phase.Error, response: lastResponse(s), error: "interrupted by server restart" });
    }
    if (stale.length) log.warn("ended sessions interrupted by a restart", { count: stale.length });
    for (const s of sessions.inPhase(Phase.Pending)) queue.push(s);
  }

  function lastResponse(s: Session): string | null {
    const msgs = sessions.events(s.namespace, s.name, { type: EventType.AgentMessage });
    const text = (msgs[msgs.length - 1]?.content as { text?: unknown } | undefined)?.text;
    return typeof text === "string" ? text : null;
  }

  async function cancel(namespace: string, name: string): Promise<Session> {
    const s = sessions.get(namespace, name);
    if (isFinal(s.phase)) throw new ConflictError(`session "${name}" already finished (${s.phase})`);
    if (queue.remove(namespace, name, s.agentDefinition)) {
      return sessions.finish(s, { phase: Phase.Cancelled, response: null, error: "cancelled" });
    }
    const run = running.get(`${namespace}/${name}`);
    if (!run) throw new ConflictError(`session "${name}" is not running`);
    const closed = new Promise<Session>((resolve) => sessions.feed.onClosed(namespace, name, resolve));
    terminate(run, { phase: Phase.Cancelled, error: "cancelled" });
    return closed;
  }

  sessions.onStarted((s) => {
    queue.push(s);
    schedule();
  });

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
      await Promise.allSettled([...exited]);
      sessions.flush();
    },
    stats: () => ({ running: running.size, queued: queue.size }),
    pids: () => [...running.values()].map((r) => r.proc.pid),
  };
}

export type Supervisor = ReturnType<typeof createSupervisor>;
