/**
 * Sessions on a Postgres database shared by replicas (`pai serve --database postgres://…`).
 *
 * - A start is one transaction: its delivery keys and the session, or, for a key seen before (on
 *   any replica), the session that key started. Names come from per-agent counters reserved in
 *   blocks, so replicas never pick the same one.
 * - Any replica runs any session: the supervisor's work source claims Pending sessions with
 *   `FOR UPDATE SKIP LOCKED`, and an agent's `maxConcurrentSessions` holds across replicas there.
 * - Events and ends are written in batches (many sessions per round trip), then announced here on
 *   the topics and to the other replicas with NOTIFY; a replica with a waiter or an SSE reader on a
 *   session reads what the notification points at and hands it to them.
 * - Each replica writes a heartbeat. A replica that stops writing it (killed, cut off) holds no
 *   session for long: once its heartbeat is older than the lease, any replica ends its Running
 *   sessions Error ("replica lost"), and tells their waiters and callbacks.
 *
 * A notification that is missed (a dropped LISTEN connection) costs latency, not correctness: the
 * claimers also poll, and readers re-read everything they follow when the connection comes back.
 */
import type { Agent } from "../domain/agent";
import { DomainError, NotFoundError, ServiceUnavailableError, TooManyRequestsError } from "../domain/errors";
import { CallbackState, EventType, Phase, type Session, type SessionEvent } from "../domain/session";
import type { Logger } from "../lib/log";
import type { WorkSource } from "../supervisor/work";
import type { PgRunRepo } from "../store/pg/run-repo";
import { checkStartEnv, deliveriesInFlight, DEFAULT_MAX_PENDING, newSession, RETRY_AFTER_SECONDS, type SessionService, type StartOptions, type StartResult } from "./sessions";
import { createTopics, sessionKey, type Topics } from "./topics";

/** NOTIFY channels. Payloads are JSON with the sender's replica id, so a replica ignores its own. */
export const CHANNELS = { work: "pai_work", events: "pai_events", ended: "pai_ended", cancel: "pai_cancel" } as const;

/** Names reserved per agent at a time: one counter update per this many sessions of an agent. */
const NAME_BLOCK = 32;
export const DEFAULT_REPLICA_LEASE_MS = 15_000;

export interface PgSessionDeps {
  repo: PgRunRepo;
  log: Logger;
  /** This replica's identity (owner of the sessions it claims). */
  replicaId: string;
  topics?: Pick<Topics, "sessionStarted" | "sessionEvent" | "sessionEnded">;
  maxPending?: number;
  /** A replica whose heartbeat is older than this has lost its sessions (default 15 s). */
  leaseMs?: number;
  /** How often claimers look for work without a notification, and heartbeats are written (default lease / 5). */
  pollMs?: number;
  now?: () => Date;
}

export type PgSessionService = SessionService & {
  /** The supervisor's source: claims from the shared backlog. */
  work: WorkSource;
  /** Starts the heartbeat, the reaper and the listeners. */
  open(): Promise<void>;
  /** Writes what is queued and stops listening (the replica's sessions are ended by the supervisor first). */
  close(): Promise<void>;
  /** Asks for cancels of sessions that run here (another replica was asked). */
  onCancelRequest(fn: (namespace: string, name: string) => void): void;
  /** Callbacks this replica took over from a lost one, to deliver. */
  onAdoptedCallback(fn: (s: Session) => void): void;
  /** Asks the replica running a session to cancel it; resolves with the session once it ended. */
  cancelElsewhere(s: Session, timeoutMs?: number): Promise<Session>;
};

export function createPgSessionService(deps: PgSessionDeps): PgSessionService {
  const { repo, log, replicaId } = deps;
  const topics = deps.topics ?? createTopics(log);
  const leaseMs = deps.leaseMs ?? DEFAULT_REPLICA_LEASE_MS;
  const pollMs = deps.pollMs ?? Math.max(50, Math.round(leaseMs / 5));
  const maxPendingTotal = deps.maxPending ?? DEFAULT_MAX_PENDING;
  const startedAt = new Date().toISOString();
  const now = () => (deps.now?.() ?? new Date()).toISOString();

  // ---- names ---------------------------------------------------------------------------------
  const blocks = new Map<string, { next: number; end: number }>();
  const reserving = new Map<string, Promise<void>>();
  async function nextSuffix(namespace: string, agent: string): Promise<number> {
    const k = `${namespace}/${agent}`;
    for (;;) {
      const b = blocks.get(k);
      if (b && b.next < b.end) return b.next++;
      let p = reserving.get(k);
      if (!p) {
        p = repo
          .allocateNames(namespace, agent, NAME_BLOCK)
          .then((first) => void blocks.set(k, { next: first, end: first + NAME_BLOCK }))
          .finally(() => reserving.delete(k));
        reserving.set(k, p);
      }
      await p;
    }
  }

  // ---- the pending count (metrics, the server-wide cap) ----------------------------------------
  let pendingTotal = 0;

  // ---- writes: events and updates in batches ---------------------------------------------------
  type Op =
    | { kind: "event"; namespace: string; session: string; event: SessionEvent }
    | { kind: "update"; namespace: string; name: string; values: Parameters<PgRunRepo["update"]>[2] };
  interface Queued {
    op: Op;
    done?: () => void;
    fail?: (err: unknown) => void;
    after?: () => void;
  }
  let queued: Queued[] = [];
  let flushing: Promise<void> | undefined;
  let scheduled = false;
  /** Sessions whose events went out in the batch, with their last id (one NOTIFY each). */
  async function writeBatch(batch: Queued[]) {
    const events = batch.flatMap((q) => (q.op.kind === "event" ? [{ namespace: q.op.namespace, session: q.op.session, event: q.op.event }] : []));
    try {
      // Events of sessions this replica has not written to yet (another one ran them): their ids
      // continue after the last stored one.
      for (const e of events) {
        if (e.event.id !== 0) continue;
        const k = sessionKey(e.namespace, e.session);
        let next = nextId.get(k);
        if (next === undefined) next = (await repo.lastEventId(e.namespace, e.session)) + 1;
        e.event.id = next;
        nextId.set(k, next + 1);
        if (e.event.type === EventType.StatusClosed) nextId.delete(k);
      }
      // Events before the updates that end a session: a reader who sees it ended finds its closing event.
      if (events.length) await repo.appendEvents(events);
      for (const q of batch) if (q.op.kind === "update") await repo.update(q.op.namespace, q.op.name, q.op.values);
    } catch (err) {
      for (const q of batch) q.fail ? q.fail(err) : log.error("failed to write session data", { error: (err as Error).message });
      return;
    }
    for (const q of batch) {
      q.done?.();
      q.after?.();
    }
    const last = new Map<string, { ns: string; s: string; id: number }>();
    for (const e of events) last.set(sessionKey(e.namespace, e.session), { ns: e.namespace, s: e.session, id: e.event.id });
    for (const v of last.values()) notify(CHANNELS.events, v);
  }
  function schedule() {
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      void flush();
    });
  }
  function flush(): Promise<void> {
    if (flushing) return flushing.then(() => (queued.length ? flush() : undefined));
    if (!queued.length) return Promise.resolve();
    const batch = queued;
    queued = [];
    flushing = writeBatch(batch).finally(() => (flushing = undefined));
    return flushing;
  }
  function enqueue(op: Op, after?: () => void): Promise<void> {
    return new Promise((done, fail) => {
      queued.push({ op, done, fail, after });
      schedule();
    });
  }

  let workAnnounced = false;
  function announceWork() {
    if (workAnnounced) return;
    workAnnounced = true;
    setImmediate(() => {
      workAnnounced = false;
      notify(CHANNELS.work, {});
    });
  }

  function notify(channel: string, payload: Record<string, unknown>) {
    repo.notify(channel, JSON.stringify({ ...payload, r: replicaId })).catch((err) => log.warn("NOTIFY failed (other replicas will poll)", { channel, error: (err as Error).message }));
  }

  // ---- events --------------------------------------------------------------------------------
  /** Next event id of sessions that have events in flight here (a session's events are written by one replica at a time). */
  const nextId = new Map<string, number>();
  function appendEvent(namespace: string, name: string, type: string, content: unknown): SessionEvent {
    const k = sessionKey(namespace, name);
    // Where a session runs (claimed here) its ids are known; elsewhere (a callback or a cancel of a
    // session another replica ran) the id is 0 until the batch reads the last stored one.
    const known = nextId.get(k);
    const event: SessionEvent = { id: known ?? 0, type, content, timestamp: now() };
    if (known !== undefined) {
      nextId.set(k, known + 1);
      if (type === EventType.StatusClosed) nextId.delete(k);
    }
    enqueue({ kind: "event", namespace, session: name, event }, () => topics.sessionEvent.publish({ namespace, session: name, event }, k)).catch(() => {});
    return event;
  }

  // ---- starts --------------------------------------------------------------------------------
  /** Sessions to insert, written together on the next tick: one round trip and one commit for many starts. */
  const inserter = (() => {
    let waiting: { session: Session; done: (seq: number) => void; fail: (err: unknown) => void }[] = [];
    let scheduled = false;
    async function write() {
      scheduled = false;
      const batch = waiting;
      waiting = [];
      try {
        const seqs = await repo.insertSessions(batch.map((w) => w.session));
        batch.forEach((w, i) => w.done(seqs[i]!));
      } catch (err) {
        for (const w of batch) w.fail(err);
      }
    }
    return {
      insert(session: Session): Promise<number> {
        return new Promise((done, fail) => {
          waiting.push({ session, done, fail });
          if (!scheduled) {
            scheduled = true;
            setImmediate(() => void write());
          }
        });
      },
    };
  })();

  async function get(namespace: string, name: string): Promise<Session> {
    const s = await repo.get(namespace, name);
    if (!s) throw new NotFoundError(`session "${name}" not found in namespace "${namespace}"`);
    return s;
  }

  async function create(agent: Agent, opts: StartOptions, keys: string[]): Promise<StartResult> {
    checkStartEnv(opts.env);
    const { namespace, name: agentName } = agent.metadata;
    // Counted across replicas by the store; starts racing on other replicas may pass it together.
    if (pendingTotal >= maxPendingTotal) throw new TooManyRequestsError("the server has too many sessions waiting to run; retry later", RETRY_AFTER_SECONDS);
    if (opts.maxPending !== undefined && (await repo.countPendingOf(namespace, agentName)) >= opts.maxPending)
      throw new TooManyRequestsError(`agent "${agentName}" already has ${opts.maxPending} sessions waiting to run (maxPending); retry later`, RETRY_AFTER_SECONDS);
    const session = newSession(agent, opts, await nextSuffix(namespace, agentName), now());
    // Starts without a delivery key (most) share one statement per tick; keyed ones go alone.
    const r = keys.length ? await repo.insertSession(session, keys) : { created: true as const, seq: await inserter.insert(session) };
    if (!r.created) return { session: await get(namespace, r.existing), created: false };
    pendingTotal++;
    topics.sessionStarted.publish({ session, seq: r.seq });
    // This replica's claimer first (it hears no notification of its own), then the others: one
    // notification per tick, however many sessions started in it.
    wake();
    announceWork();
    return { session, created: true };
  }

  const joinDuplicates = deliveriesInFlight();
  /** A start the database could not take is the server's trouble, not the caller's: 503 with Retry-After, never a 500. */
  const unavailable = (err: unknown): never => {
    if (err instanceof DomainError) throw err;
    log.error("failed to store a session", { error: (err as Error)?.message });
    throw new ServiceUnavailableError("the session could not be stored (the database did not answer); retry later", RETRY_AFTER_SECONDS);
  };
  const startOnce = (agent: Agent, opts: StartOptions): Promise<StartResult> => joinDuplicates(agent, opts, (keys) => create(agent, opts, keys).catch(unavailable));

  // ---- ends ----------------------------------------------------------------------------------
  const cancelHandlers: ((namespace: string, name: string) => void)[] = [];
  const adoptHandlers: ((s: Session) => void)[] = [];

  async function finish(s: Session, result: { phase: Phase; response: string | null; error: string | null; usage?: Session["usage"] }): Promise<Session> {
    const finishedAt = now();
    if (s.phase === Phase.Pending) {
      // Not claimed by anyone: end it here, unless a replica claimed it meanwhile (then that one is asked).
      const ended = await repo.finishIfPending(s.namespace, s.name, { phase: result.phase, error: result.error, finishedAt });
      if (!ended) return cancelElsewhere({ ...s, phase: Phase.Running });
      pendingTotal = Math.max(0, pendingTotal - 1);
      // Never claimed, so it has no events: its closing event is its first.
      nextId.set(sessionKey(s.namespace, s.name), 1);
    }
    appendEvent(s.namespace, s.name, EventType.StatusClosed, { phase: result.phase, ...(result.error ? { reason: result.error } : {}) });
    await enqueue({ kind: "update", namespace: s.namespace, name: s.name, values: { phase: result.phase, response: result.response, error: result.error, finishedAt, usage: result.usage ?? undefined } });
    const done = { ...s, ...result, finishedAt };
    topics.sessionEnded.publish(done, sessionKey(s.namespace, s.name));
    notify(CHANNELS.ended, { ns: s.namespace, s: s.name });
    return done;
  }

  async function cancelElsewhere(s: Session, timeoutMs = 30_000): Promise<Session> {
    const k = sessionKey(s.namespace, s.name);
    const ended = new Promise<Session>((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`the replica running session "${s.name}" did not end it within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      const off = topics.sessionEnded.subscribeKey(k, (e) => {
        clearTimeout(timer);
        off();
        resolve(e);
      });
    });
    notify(CHANNELS.cancel, { ns: s.namespace, s: s.name });
    // Already over (before we subscribed)? The store says so.
    const current = await repo.get(s.namespace, s.name);
    if (current && current.finishedAt) return current;
    return ended;
  }

  // ---- news from other replicas --------------------------------------------------------------
  /** Per followed session, the last event id handed to its readers here. */
  const seen = new Map<string, number>();
  async function catchUpEvents(namespace: string, name: string) {
    const k = sessionKey(namespace, name);
    if (!topics.sessionEvent.keyedListeners(k)) {
      seen.delete(k);
      return;
    }
    const events = await repo.events(namespace, name, { after: seen.get(k) ?? 0 });
    for (const event of events) {
      seen.set(k, Math.max(seen.get(k) ?? 0, event.id));
      topics.sessionEvent.publishKeyed({ namespace, session: name, event }, k);
    }
  }
  async function catchUpEnd(namespace: string, name: string) {
    const k = sessionKey(namespace, name);
    if (!topics.sessionEnded.keyedListeners(k)) return;
    const s = await repo.get(namespace, name);
    if (s?.finishedAt) topics.sessionEnded.publishKeyed(s, k);
  }
  /** After a reconnect: everything followed here is read again (notifications may have been lost). */
  function catchUpAll() {
    for (const k of new Set([...topics.sessionEvent.keys(), ...topics.sessionEnded.keys()])) {
      const i = k.indexOf("/");
      const [ns, name] = [k.slice(0, i), k.slice(i + 1)];
      void catchUpEvents(ns, name).catch(() => {});
      void catchUpEnd(ns, name).catch(() => {});
    }
    for (const fn of workListeners) fn();
  }
  const parse = (payload: string): Record<string, string> | undefined => {
    try {
      const v = JSON.parse(payload);
      return v && typeof v === "object" && v.r !== replicaId ? v : undefined;
    } catch {
      return undefined;
    }
  };

  // ---- the work source -----------------------------------------------------------------------
  const workListeners = new Set<() => void>();
  const work: WorkSource = {
    load() {},
    async next() {
      const [s] = await repo.claim(replicaId, 1, now());
      if (!s) return undefined;
      pendingTotal = Math.max(0, pendingTotal - 1);
      // Claimed: Pending sessions have no events yet; this replica writes them from 1.
      nextId.set(sessionKey(s.namespace, s.name), 1);
      return s;
    },
    remove() {},
    onWork(fn) {
      workListeners.add(fn);
      return () => workListeners.delete(fn);
    },
    stats: () => ({ pending: pendingTotal, held: 0 }),
  };
  const wake = () => {
    for (const fn of workListeners) fn();
  };

  // ---- heartbeat and the reaper --------------------------------------------------------------
  let timer: ReturnType<typeof setInterval> | undefined;
  let ticking = false;
  async function tick() {
    if (ticking) return;
    ticking = true;
    try {
      await repo.heartbeat(replicaId, Date.now(), startedAt);
      pendingTotal = await repo.countPending();
      // The reaper becomes their owner: their callbacks are its to deliver (and no one else's to adopt).
      const lost = await repo.reapLost(Date.now(), leaseMs, now(), replicaId);
      for (const s of lost) {
        // Its events were written elsewhere: continue after the last.
        nextId.set(sessionKey(s.namespace, s.name), (await repo.lastEventId(s.namespace, s.name)) + 1);
        appendEvent(s.namespace, s.name, EventType.Error, { message: "replica lost: the replica running this session stopped answering" });
        appendEvent(s.namespace, s.name, EventType.StatusClosed, { phase: Phase.Error, reason: "replica lost" });
        await flush();
        topics.sessionEnded.publish(s, sessionKey(s.namespace, s.name));
        notify(CHANNELS.ended, { ns: s.namespace, s: s.name });
      }
      if (lost.length) log.warn("ended sessions of a lost replica", { count: lost.length });
      // Callbacks a lost (or stopped) replica had still to deliver: this one delivers them.
      const adopted = await repo.adoptCallbacks(replicaId, Date.now(), leaseMs);
      for (const s of adopted) for (const fn of adoptHandlers) fn(s);
      if (adopted.length) log.info("took over callbacks of a replica that is gone", { count: adopted.length });
      // Sessions nobody here follows any more.
      for (const k of seen.keys()) if (!topics.sessionEvent.keyedListeners(k)) seen.delete(k);
      // Also the fallback for missed notifications and slots freed elsewhere.
      wake();
    } catch (err) {
      log.error("replica heartbeat failed", { error: (err as Error).message });
    } finally {
      ticking = false;
    }
  }

  const unlisten: (() => Promise<void>)[] = [];

  return {
    topics,
    start: (agent, opts) => startOnce(agent, opts).then((r) => r.session),
    startOnce,
    get,
    find: (namespace, name) => repo.get(namespace, name),
    list: (namespace, limit = 100) => repo.list(namespace, limit),
    page: (namespace, limit, before) => repo.page(namespace, limit, before),
    events: (namespace, name, opts) => repo.events(namespace, name, opts),
    running: () => repo.runningOf(replicaId),
    /**
     * None at start: a replica has a new identity each start, and what a stopped or lost replica
     * left is taken over by exactly one replica (adoptCallbacks, on its heartbeat).
     */
    pendingCallbacks: async () => [],
    findDelivery: (namespace, agent, delivery) => repo.findDelivery(namespace, agent, delivery),
    pendingTotal: () => pendingTotal,
    setCallbackState: (s, state) => enqueue({ kind: "update", namespace: s.namespace, name: s.name, values: { callbackState: state } }),
    appendEvent,
    markRunning(s) {
      // The claim made it Running; the event says so to readers.
      appendEvent(s.namespace, s.name, EventType.StatusRunning, { phase: Phase.Running });
    },
    finish,
    flush,
    work,
    onCancelRequest: (fn) => void cancelHandlers.push(fn),
    onAdoptedCallback: (fn) => void adoptHandlers.push(fn),
    cancelElsewhere,
    async open() {
      await tick();
      unlisten.push(
        await repo.listen(CHANNELS.work, (p) => parse(p) && wake(), catchUpAll),
        await repo.listen(CHANNELS.events, (p) => {
          const m = parse(p);
          if (m) void catchUpEvents(m.ns!, m.s!).catch((err) => log.warn("failed to read another replica's events", { error: (err as Error).message }));
        }),
        await repo.listen(CHANNELS.ended, (p) => {
          const m = parse(p);
          if (!m) return;
          void catchUpEnd(m.ns!, m.s!).catch((err) => log.warn("failed to read another replica's session end", { error: (err as Error).message }));
          // A slot of a limited agent may have been freed.
          wake();
        }),
        await repo.listen(CHANNELS.cancel, (p) => {
          const m = parse(p);
          if (m) for (const fn of cancelHandlers) fn(m.ns!, m.s!);
        }),
      );
      timer = setInterval(() => void tick(), pollMs);
      timer.unref?.();
    },
    async close() {
      clearInterval(timer);
      await flush();
      // Gone cleanly: callbacks left to deliver are the other replicas' at once.
      await repo.retire(replicaId).catch((err) => log.warn("failed to remove this replica's heartbeat", { error: (err as Error).message }));
      for (const off of unlisten.splice(0)) await off().catch(() => {});
    },
  };
}
