/**
 * Where session children are started: on a thread of their own (a Worker), not on the server's
 * event loop. Bun.spawn uses vfork, which suspends the calling thread until the child has called
 * exec; with CPU-busy sessions on every core that wait is a few ms per spawn (the new child must
 * first be scheduled), and on the main thread it stalled accepting and answering HTTP. The thread
 * also makes each child's working folder, writes webhook.json, reads the child's stderr and IPC
 * pipe, and removes the folder when it is left empty, and it reports everything in order.
 *
 * The thread runs at the children's nice value, so a child is at its lower priority from its first
 * instruction (nice is per thread on Linux and inherited at fork) rather than from when the server
 * gets round to renicing it, and so are the threads its runtime starts early. One child per
 * session, each with its own environment and folder, exactly as before; only the thread that
 * calls spawn changed. If no Worker can be made, the same code runs on the main thread.
 *
 * It also keeps the children that wait for a session: warm ones started ahead of demand, and ones
 * an agent with `spec.harness.reuse` kept after a session (see `spawnerBody`).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import type { HarnessMessage, StartMessage } from "../harness/protocol";

/** Supervisor → spawner. */
export type SpawnRequest =
  | {
      t: "spawn";
      id: number;
      cmd: string[];
      cwd: string;
      env: Record<string, string>;
      /** Written to `<cwd>/webhook.json` as compact JSON when `hasPayload`. */
      payload?: unknown;
      hasPayload: boolean;
      start: StartMessage;
      /**
       * A child spawned before the session may run it: nothing in `env` must be there when the
       * runtime starts (see `mustBeSetAtSpawn`). False: a child is spawned for this session.
       */
      early: boolean;
      /** The agent opted into reuse (`spec.harness.reuse`): children run up to `maxRuns` of its sessions, kept idle up to `idleMs` between them. */
      reuse?: { key: string; maxRuns: number; idleMs: number };
    }
  | { t: "kill"; id: number; signal: "SIGTERM" | "SIGKILL" }
  /** Kills the children that wait for a session (warm or idle), and keeps none from now on. */
  | { t: "close" };

/** How a session's child came to be. */
export type ChildStart = "cold" | "warm" | "reused";

/** Spawner → supervisor, in the order things happened to each run. */
export type SpawnEvent =
  /** The run's child runs. `niceError`: it could not be given its lower priority; `sendError`: the start message could not be sent. */
  | { t: "spawned"; id: number; pid: number; how: ChildStart; niceError?: string; sendError?: string }
  /** The folder or the child could not be made; nothing runs (an empty folder made for it is gone). */
  | { t: "failed"; id: number; message: string }
  | { t: "message"; id: number; msg: HarnessMessage }
  /** The run's child is gone and the folder removed if empty; `stderr` is the tail read during the run. */
  | { t: "exit"; id: number; code: number | null; signal: string | null; stderr: string }
  /** The run is over (its result came before this) and its child kept for the agent's next session; the folder is removed if empty. */
  | { t: "done"; id: number }
  /** Warm children keep dying before they get a session: none is started for a while. */
  | { t: "warning"; message: string }
  | { t: "closed" };

export interface SpawnerOptions {
  /** The nice value children get (-1: leave them at the server's). */
  childNice: number;
  /** Characters of a child's stderr kept for the error message. */
  stderrTail: number;
  /** Children kept started ahead of demand (0: none). Made after the first session asks for a child. */
  warmChildren: number;
  /** How a child that waits for its session is started: argv, folder and environment (no session's). */
  early: { cmd: string[]; cwd: string; env: Record<string, string> };
  /** Children kept idle for agents' next sessions, across all agents, at most (the longest idle go first). */
  maxIdle: number;
  /** Warm children are refilled only while fewer runs than this are in flight (default: the number of CPUs). */
  calmBelow?: number;
}


/**
 * The spawner's code. Self-contained (it references nothing outside itself but globals and its
 * arguments), because for a Worker it is shipped as source text: `inThread` says whether it owns
 * its thread (then it renices that thread once) or runs on the server's (then it renices each child).
 *
 * A session's child is, in this order of preference: an idle child of the same agent (reuse), a
 * warm child, or one spawned now. A child spawned now for a session that needs its environment at
 * spawn runs in its folder with its environment; every other child is spawned in `early.cwd` with
 * `early.env` and gets both in the start message. Warm children are refilled REFILL_DELAY_MS after
 * one is taken (this thread is not the server's, so spawning here holds no request, but it does
 * hold the messages of running children this thread relays).
 */
export function spawnerBody(post: (e: SpawnEvent) => void, nodeFs: typeof fs, nodeOs: typeof os, opts: SpawnerOptions, inThread: boolean) {
  // Constants here, not at module level: this function is shipped to the Worker as its source alone.
  /** Consecutive warm children that die before their session, after which no warm child is started for POOL_PAUSE_MS. */
  const POOL_FAILURES = 3;
  const POOL_PAUSE_MS = 30_000;
  /** How long after a warm child is taken the pool is refilled. */
  const REFILL_DELAY_MS = 25;
  interface Child {
    proc: import("bun").Subprocess;
    /** The run it serves now; undefined while it waits (warm or idle). */
    run?: number;
    /** The run's folder, removed (if empty) when the run ends. */
    cwd?: string;
    tail: { text: string };
    /** Asked to stop: never kept or handed out again. */
    killed: boolean;
    /** This run's child stays for the agent's next session once it reports its result. */
    keep: boolean;
    runs: number;
    reuse?: { key: string; maxRuns: number; idleMs: number };
    /** The run's request, while a child started before it has not said it took the run. */
    untaken?: Extract<SpawnRequest, { t: "spawn" }>;
    idleTimer?: ReturnType<typeof setTimeout>;
  }
  const byRun = new Map<number, Child>();
  const warm: Child[] = [];
  /** Idle reusable children by agent key, and all of them oldest first (for the cap). */
  const idle = new Map<string, Child[]>();
  const idleOrder: Child[] = [];
  let warmFailures = 0;
  let warmPausedUntil = 0;
  let closed = false;
  let asked = false;

  let reniceEach = opts.childNice >= 0;
  let threadNiceError: string | undefined;
  if (inThread && reniceEach) {
    try {
      nodeOs.setPriority(0, opts.childNice); // 0: this thread only (Linux), inherited by what it spawns
      reniceEach = false;
    } catch (err) {
      threadNiceError = String((err as Error)?.message ?? err);
    }
  }
  /**
   * Removes a run's folder if nothing was left in it: rmdir removes only an empty folder, in one
   * system call (tens of µs). Synchronous: a promise would take a hop through the thread pool on
   * the way to every session's end.
   */
  const rmdirIfEmpty = (dir: string) => {
    try {
      nodeFs.rmdirSync(dir);
    } catch {
      // Not empty, or gone.
    }
  };
  const message = (err: unknown) => String((err as Error)?.message ?? err);

  async function drain(proc: import("bun").Subprocess, tail: { text: string }) {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) tail.text = (tail.text + decoder.decode(chunk)).slice(-opts.stderrTail);
    } catch {
      // The pipe closes with the child.
    }
  }

  function kill(c: Child, signal: "SIGTERM" | "SIGKILL") {
    c.killed = true;
    try {
      c.proc.kill(signal);
    } catch {
      // Gone already: its exit is on the way.
    }
  }

  /** Starts a child; `niceError` says why it could not be reniced. Throws when it cannot be spawned. */
  function start(cmd: string[], cwd: string, env: Record<string, string>): { child: Child; niceError?: string } {
    const child: Child = { proc: undefined as never, tail: { text: "" }, killed: false, keep: false, runs: 0 };
    child.proc = Bun.spawn(cmd, {
      cwd,
      env,
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
      serialization: "json",
      ipc: (msg: HarnessMessage) => onMessage(child, msg),
    });
    let niceError = threadNiceError;
    if (reniceEach) {
      try {
        nodeOs.setPriority(child.proc.pid, opts.childNice);
      } catch (err) {
        niceError = message(err);
      }
    }
    drain(child.proc, child.tail);
    child.proc.exited.then((code) => onExit(child, code));
    return { child, niceError };
  }

  function onMessage(c: Child, msg: HarnessMessage) {
    const id = c.run;
    if (id === undefined) return; // nothing to say while it waits
    if (msg.type === "taken") {
      c.untaken = undefined;
      return;
    }
    post({ t: "message", id, msg });
    if (msg.type !== "result" || !c.keep || c.killed) return;
    // Nothing is kept once the spawner closes: the child goes, and its exit ends the run.
    if (closed) return kill(c, "SIGTERM");
    // The child reported its run over and waits for the next: the run ends here, the child stays.
    c.run = undefined;
    byRun.delete(id);
    const cwd = c.cwd!;
    c.cwd = undefined;
    park(c);
    rmdirIfEmpty(cwd);
    post({ t: "done", id });
    runEnded();
  }

  function onExit(c: Child, code: number | null) {
    unpark(c);
    const w = warm.indexOf(c);
    if (w >= 0) {
      warm.splice(w, 1);
      if (!c.killed && ++warmFailures >= POOL_FAILURES) {
        warmPausedUntil = Date.now() + POOL_PAUSE_MS;
        warmFailures = 0;
        post({ t: "warning", message: `warm session processes keep exiting before their session (last: ${c.proc.signalCode ?? `exit code ${code}`}${c.tail.text.trim() ? `: ${c.tail.text.trim().split("\n").slice(-1)[0]}` : ""}); none is started for ${POOL_PAUSE_MS / 1000} s` });
        setTimeout(refill, POOL_PAUSE_MS + 10);
      } else refill();
    }
    const id = c.run;
    if (id === undefined) return;
    byRun.delete(id);
    if (c.untaken && !c.killed && !closed) {
      // It died before it got the start message: it did nothing, so a new child runs the session
      // (reported spawned again, with the new pid).
      const req = c.untaken;
      c.untaken = undefined;
      c.run = undefined;
      return spawnCold(req);
    }
    const cwd = c.cwd!;
    rmdirIfEmpty(cwd);
    post({ t: "exit", id, code, signal: c.proc.signalCode ? String(c.proc.signalCode) : null, stderr: c.tail.text });
    runEnded();
  }

  function park(c: Child) {
    const key = c.reuse!.key;
    const list = idle.get(key) ?? [];
    list.push(c);
    idle.set(key, list);
    idleOrder.push(c);
    c.idleTimer = setTimeout(() => {
      unpark(c);
      kill(c, "SIGTERM");
    }, c.reuse!.idleMs);
    while (idleOrder.length > opts.maxIdle) {
      const oldest = idleOrder[0]!;
      unpark(oldest);
      kill(oldest, "SIGTERM");
    }
  }

  function unpark(c: Child) {
    if (!c.reuse) return;
    clearTimeout(c.idleTimer);
    const list = idle.get(c.reuse.key);
    const i = list?.indexOf(c) ?? -1;
    if (i >= 0) {
      list!.splice(i, 1);
      if (!list!.length) idle.delete(c.reuse.key);
    }
    const j = idleOrder.indexOf(c);
    if (j >= 0) idleOrder.splice(j, 1);
  }

  let refillTimer: ReturnType<typeof setTimeout> | undefined;
  let refillWhenCalmer = false;
  const cpus = opts.calmBelow ?? Math.max(1, nodeOs.availableParallelism?.() ?? nodeOs.cpus().length);
  /** A run ended: a refill put off while the CPUs were busy may happen now. */
  const runEnded = () => {
    if (refillWhenCalmer && byRun.size < cpus) refillSoon();
  };
  /**
   * Refills a little later, not now: a spawn holds this thread (which also relays the running
   * children's messages) until the new child has called exec, and the new child's start takes CPU
   * the session just handed out would use.
   */
  function refillSoon() {
    refillTimer ??= setTimeout(() => {
      refillTimer = undefined;
      refill();
    }, REFILL_DELAY_MS);
  }

  /** Starts warm children until there are `warmChildren` of them (started or starting). */
  function refill() {
    if (closed || !asked || Date.now() < warmPausedUntil) return;
    if (warm.length < opts.warmChildren && byRun.size >= cpus) {
      // Busy: a warm child costs the CPU of a start (and its rehearsal) that running sessions
      // would use, and under a steady stream it is taken as soon as it is ready anyway. Refilled
      // once fewer sessions run than there are CPUs.
      refillWhenCalmer = true;
      return;
    }
    refillWhenCalmer = false;
    while (warm.length < opts.warmChildren) {
      try {
        warm.push(start(opts.early.cmd, opts.early.cwd, opts.early.env).child);
      } catch (err) {
        warmPausedUntil = Date.now() + POOL_PAUSE_MS;
        post({ t: "warning", message: `cannot start warm session processes (${message(err)}); none is started for ${POOL_PAUSE_MS / 1000} s` });
        setTimeout(refill, POOL_PAUSE_MS + 10);
        return;
      }
    }
  }

  /** An idle child of the agent, else a warm child (those still running). */
  function takeWaiting(req: Extract<SpawnRequest, { t: "spawn" }>): { child: Child; how: ChildStart } | undefined {
    if (req.reuse) {
      const list = idle.get(req.reuse.key);
      while (list?.length) {
        const c = list[list.length - 1]!; // the last parked: its memory is the warmest
        unpark(c);
        if (c.proc.exitCode === null && !c.killed) return { child: c, how: "reused" };
      }
    }
    while (warm.length) {
      const c = warm.shift()!;
      if (c.proc.exitCode === null && !c.killed) {
        warmFailures = 0;
        return { child: c, how: "warm" };
      }
    }
    return undefined;
  }

  /** Hands the run to `child`: its start message, with the place when the child was spawned before it. Returns the send error, if any. */
  function hand(req: Extract<SpawnRequest, { t: "spawn" }>, c: Child, placed: boolean, waited: boolean): string | undefined {
    c.run = req.id;
    c.cwd = req.cwd;
    c.tail.text = "";
    c.runs++;
    if (req.reuse) c.reuse = req.reuse;
    c.keep = !!req.reuse && c.runs < req.reuse.maxRuns;
    // A child that waited may have died meanwhile: until it says it took the run, the run can move.
    c.untaken = waited ? req : undefined;
    byRun.set(req.id, c);
    try {
      c.proc.send({ ...req.start, ...(placed ? { place: { cwd: req.cwd, env: req.env } } : {}), ...(c.keep ? { reuse: true } : {}) });
      return undefined;
    } catch (err) {
      return message(err);
    }
  }

  function spawn(req: Extract<SpawnRequest, { t: "spawn" }>) {
    const { id, cwd } = req;
    try {
      nodeFs.mkdirSync(cwd, { recursive: true, mode: 0o700 });
      // Compact: the payload came as compact JSON; indenting a deeply nested body multiplies its size.
      if (req.hasPayload) nodeFs.writeFileSync(`${cwd}/webhook.json`, JSON.stringify(req.payload), { mode: 0o600 });
    } catch (err) {
      rmdirIfEmpty(cwd);
      post({ t: "failed", id, message: message(err) });
      return;
    }
    if (req.early && !closed) {
      for (let taken = takeWaiting(req); taken; taken = takeWaiting(req)) {
        const sendError = hand(req, taken.child, true, true);
        if (sendError === undefined) {
          post({ t: "spawned", id, pid: taken.child.proc.pid, how: taken.how });
          return;
        }
        // A waiting child that cannot be told is of no use: the next one, or a new one, runs the session.
        byRun.delete(id);
        taken.child.run = undefined;
        taken.child.untaken = undefined;
        kill(taken.child, "SIGKILL");
      }
    }
    spawnCold(req);
  }

  /** Spawns a child for the run (its folder is made). */
  function spawnCold(req: Extract<SpawnRequest, { t: "spawn" }>) {
    const { id, cwd } = req;
    // A child for this session: in its folder with its environment, unless it may be kept for the
    // agent's next sessions (then it is placed by the start message like a warm one).
    const keepable = !!req.reuse && req.early && !closed;
    let started: ReturnType<typeof start>;
    try {
      started = keepable ? start(opts.early.cmd, opts.early.cwd, opts.early.env) : start(req.cmd, cwd, req.env);
    } catch (err) {
      rmdirIfEmpty(cwd);
      post({ t: "failed", id, message: message(err) });
      return;
    }
    const sendError = hand(req, started.child, keepable, false);
    post({ t: "spawned", id, pid: started.child.proc.pid, how: "cold", ...(started.niceError ? { niceError: started.niceError } : {}), ...(sendError !== undefined ? { sendError } : {}) });
  }

  return (req: SpawnRequest) => {
    switch (req.t) {
      case "kill": {
        const c = byRun.get(req.id);
        if (c) kill(c, req.signal);
        return;
      }
      case "close":
        closed = true;
        for (const c of [...warm, ...idleOrder]) {
          unpark(c);
          kill(c, "SIGKILL");
        }
        warm.length = 0;
        post({ t: "closed" });
        return;
      case "spawn":
        spawn(req);
        if (!asked) {
          asked = true;
          // After the first session's child: it is not kept waiting behind the warm ones.
          setTimeout(refill, 0);
        } else refillSoon();
    }
  };
}

export interface Spawner {
  send(req: SpawnRequest): void;
  /** Kills the children that wait for a session, then stops the thread (call once no session's child is left). */
  close(): Promise<void>;
}

/**
 * A spawner on a Worker thread (created now), or on this thread if no Worker can be made or
 * `inline` asks for it. `onError`: the thread failed (the caller deals with the children it held).
 */
export function createSpawner(opts: SpawnerOptions, onEvent: (e: SpawnEvent) => void, onError: (err: unknown) => void, inline = false): Spawner {
  let closing: (() => void) | undefined;
  const handle = (e: SpawnEvent) => {
    if (e.t === "closed") closing?.();
    else onEvent(e);
  };
  /** Waits for the spawner to report its waiting children killed (bounded: a failed thread reports nothing). */
  const closed = (send: () => void) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 1000);
      closing = () => {
        clearTimeout(timer);
        resolve();
      };
      send();
    });
  if (!inline) try {
    const source =
      `const h = (${spawnerBody.toString()})((e) => postMessage(e), require("node:fs"), require("node:os"), ${JSON.stringify(opts)}, true);\n` +
      `onmessage = (e) => h(e.data);\n`;
    const url = URL.createObjectURL(new Blob([source], { type: "application/javascript" }));
    const worker = new Worker(url);
    worker.onmessage = (e: MessageEvent<SpawnEvent>) => handle(e.data);
    worker.onerror = (e) => onError((e as ErrorEvent).error ?? new Error((e as ErrorEvent).message));
    // Not unref'd: the messages of an unref'd Worker reach this thread only once its event loop
    // wakes for something else (measured: 1.4–3.7 ms at p90 after 30–100 ms idle, on every hop of
    // every session). close() ends the thread when the supervisor stops.
    return {
      send: (req) => worker.postMessage(req),
      async close() {
        await closed(() => worker.postMessage({ t: "close" } satisfies SpawnRequest));
        worker.terminate();
        URL.revokeObjectURL(url);
      },
    };
  } catch {
    // No Worker here: spawn on this thread, as below.
  }
  const body = spawnerBody(handle, fs, os, opts, false);
  return { send: body, close: () => closed(() => body({ t: "close" })) };
}
