/**
 * Session use cases: start a session (committed before the caller hears of it), append events in
 * order, move phases, read. Writes go through group commit; live readers are told after commit.
 * Back-pressure (an agent's `maxPending`, the server-wide cap) is decided inside the same write
 * as the insert, against counters that move only inside writes, so concurrent starts cannot all
 * pass a check made before any of them committed.
 */
import type { Store } from "../store";
import type { Agent } from "../domain/agent";
import { BadRequestError, NotFoundError, TooManyRequestsError } from "../domain/errors";
import { CallbackState, EventType, Phase, envValueProblem, forbiddenEnvNames, type EnvVar, type Session, type SessionEvent, type SessionOrigin } from "../domain/session";
import { createGroupCommit, type GroupCommit } from "../lib/group-commit";
import { uuid } from "../lib/crypto";
import type { Logger } from "../lib/log";
import { createTopics, sessionKey, type Topics } from "./topics";

export interface StartOptions {
  title: string;
  env?: EnvVar[];
  origin: SessionOrigin;
  /** `wh` for webhook runs (`<agent>-wh-<8 hex>`), `run` for the CLI and API. */
  kind?: "wh" | "run";
  /** The raw event, given to the agent as webhook.json. */
  payload?: unknown;
  callbackUrl?: string;
  /** Refuse (429) when this many sessions of the agent already wait Pending: a webhook trigger's `maxPending`. */
  maxPending?: number;
  /**
   * The verified signature of a signed delivery: kept like a delivery id, so the same signed body
   * sent again (under another delivery id or event name) returns the session it started.
   */
  signature?: string;
}

/** Refuses (400) an env a session may not have: names that belong to the server, values it cannot pass. */
export function checkStartEnv(env: EnvVar[] | undefined) {
  // An empty env (most starts) has nothing to check.
  if (!env?.length) return;
  const bad = forbiddenEnvNames(env);
  if (bad.length) throw new BadRequestError(`env: these variables may not be set for a session: ${bad.join(", ")}`);
  const problem = envValueProblem(env);
  if (problem) throw new BadRequestError(problem);
}

const NO_KEYS: string[] = [];
/** What identifies a delivery: the sender's delivery id and, for signed ones, the signature. */
export function deliveryKeys(opts: StartOptions): string[] {
  const { delivery } = opts.origin;
  if (!delivery && opts.signature === undefined) return NO_KEYS; // the common case, without allocating
  return [delivery, opts.signature === undefined ? undefined : `signature:${opts.signature}`].filter((k): k is string => !!k);
}

/**
 * A new Pending session of `agent`, named `<agent>-<kind>-<suffix as 8 hex digits>`: a counter per
 * agent, unique (random 32-bit suffixes collide around 90k sessions of one agent), ordered,
 * index-friendly (an agent's inserts land on one page), and it tells a caller nothing of other
 * agents. The global order (seq) is stored, never shown.
 */
export function newSession(agent: Agent, opts: StartOptions, suffix: number, createdAt: string): Session {
  const { namespace, name: agentName } = agent.metadata;
  return {
    name: `${agentName}-${opts.kind ?? "run"}-${suffix.toString(16).padStart(8, "0")}`,
    namespace,
    uid: uuid(),
    agentDefinition: agentName,
    generation: agent.metadata.generation,
    spec: agent.spec,
    title: opts.title,
    env: opts.env ?? [],
    origin: opts.origin,
    phase: Phase.Pending,
    response: null,
    error: null,
    payload: opts.payload,
    callbackUrl: opts.callbackUrl ?? null,
    callbackState: opts.callbackUrl ? CallbackState.Pending : null,
    createdAt,
    startedAt: null,
    finishedAt: null,
  };
}

/**
 * Deliveries being committed now, by agent and delivery key: a duplicate arriving meanwhile joins
 * the first (and hears `created: false`) instead of racing it to the store. `create` gets the
 * delivery's keys.
 */
export function deliveriesInFlight() {
  const inFlight = new Map<string, Promise<StartResult>>();
  return (agent: Agent, opts: StartOptions, create: (keys: string[]) => Promise<StartResult>): Promise<StartResult> => {
    const delivered = deliveryKeys(opts);
    if (!delivered.length) return create(delivered);
    const keys = delivered.map((d) => `${agent.metadata.namespace}/${agent.metadata.name}/${d}`);
    for (const k of keys) {
      const running = inFlight.get(k);
      if (running) return running.then((r) => ({ ...r, created: false }));
    }
    const p = create(delivered).finally(() => keys.forEach((k) => inFlight.delete(k)));
    for (const k of keys) inFlight.set(k, p);
    return p;
  };
}

/** Retry-After of a refused start (429). */
export const RETRY_AFTER_SECONDS = 10;
export const DEFAULT_MAX_PENDING = 100_000;
export const SESSION_KINDS = ["wh", "run"] as const;

export interface StartResult {
  session: Session;
  /** False when `origin.delivery` was seen before: `session` is the one that delivery started. */
  created: boolean;
}

export interface SessionServiceDeps {
  store: Store;
  log: Logger;
  /** Where starts, events and ends are announced (after commit). */
  topics?: Pick<Topics, "sessionStarted" | "sessionEvent" | "sessionEnded">;
  now?: () => Date;
  /** Server-wide cap on Pending sessions (all agents): the last safety valve. Default DEFAULT_MAX_PENDING. */
  maxPending?: number;
}

export function createSessionService(deps: SessionServiceDeps) {
  const { store, log } = deps;
  const topics = deps.topics ?? createTopics(log);
  // The clock as ISO text; under load many sessions start in the same millisecond, so the last
  // text is kept for the millisecond it names.
  let lastMs = NaN;
  let lastIso = "";
  const now = (): string => {
    if (deps.now) return deps.now().toISOString();
    const ms = Date.now();
    if (ms !== lastMs) {
      lastMs = ms;
      lastIso = new Date(ms).toISOString();
    }
    return lastIso;
  };
  const maxPendingTotal = deps.maxPending ?? DEFAULT_MAX_PENDING;

  // Pending sessions in the store, as of the writes run so far (so the inserts earlier in the same
  // transaction count). They move only inside writes; if a whole transaction rolls back they are
  // counted again from the store. Per agent they are counted on first need (an agent's check),
  // then kept.
  let pendingTotal = store.sessions.countPending();
  const pendingOf = new Map<string, number>();
  const agentKey = (namespace: string, agent: string) => `${namespace}/${agent}`;
  function agentPending(namespace: string, agent: string): number {
    const k = agentKey(namespace, agent);
    let n = pendingOf.get(k);
    if (n === undefined) pendingOf.set(k, (n = store.sessions.pendingCount(namespace, agent)));
    return n;
  }
  function leftPending(namespace: string, agent: string) {
    pendingTotal--;
    const k = agentKey(namespace, agent);
    const n = pendingOf.get(k);
    if (n !== undefined) pendingOf.set(k, n - 1);
  }

  const writer: GroupCommit = createGroupCommit(
    (fn) => {
      try {
        store.tx(fn);
      } catch (err) {
        pendingTotal = store.sessions.countPending();
        pendingOf.clear();
        throw err;
      }
    },
    (err) => log.error("failed to write session data", { error: (err as Error).message }),
  );
  let seq = store.sessions.maxSeq();
  /** Last name suffix used per agent: names count per agent, so they say nothing of other agents or the server's total. */
  const suffixes = new Map<string, number>();
  function nextSuffix(namespace: string, agent: string): number {
    const k = agentKey(namespace, agent);
    const n = (suffixes.get(k) ?? store.sessions.lastSuffix(namespace, agent, SESSION_KINDS)) + 1;
    suffixes.set(k, n);
    return n;
  }
  /** Next event id per session that has events in flight. */
  const nextId = new Map<string, number>();

  function get(namespace: string, name: string): Session {
    const s = store.sessions.get(namespace, name);
    if (!s) throw new NotFoundError(`session "${name}" not found in namespace "${namespace}"`);
    return s;
  }

  /** Creates a Pending session; resolves once it is committed. */
  async function start(agent: Agent, opts: StartOptions): Promise<Session> {
    return (await startOnce(agent, opts)).session;
  }

  const joinDuplicates = deliveriesInFlight();


  /**
   * Like `start`, but a delivery seen before (by `opts.origin.delivery` or `opts.signature`)
   * returns the session it started instead of a new one. The keys and the session are committed
   * together.
   */
  function startOnce(agent: Agent, opts: StartOptions): Promise<StartResult> {
    return joinDuplicates(agent, opts, (keys) => create(agent, opts, keys));
  }

  async function create(agent: Agent, opts: StartOptions, keys = deliveryKeys(opts)): Promise<StartResult> {
    checkStartEnv(opts.env);
    const { namespace, name: agentName } = agent.metadata;
    const mySeq = ++seq;
    const session = newSession(agent, opts, nextSuffix(namespace, agentName), now());
    const existing = await writer.run(() => {
      for (const key of keys) {
        const earlier = store.sessions.findDelivery(namespace, agentName, key);
        if (earlier) return earlier;
      }
      // Checked before anything is written: a refused start leaves no row (writes in a batch have no savepoints).
      if (pendingTotal >= maxPendingTotal)
        throw new TooManyRequestsError("the server has too many sessions waiting to run; retry later", RETRY_AFTER_SECONDS);
      if (opts.maxPending !== undefined && agentPending(namespace, agentName) >= opts.maxPending)
        throw new TooManyRequestsError(`agent "${agentName}" already has ${opts.maxPending} sessions waiting to run (maxPending); retry later`, RETRY_AFTER_SECONDS);
      for (const key of keys) store.sessions.insertDelivery(namespace, agentName, key, session.name, session.createdAt);
      store.sessions.insert(session, mySeq);
      pendingTotal++;
      const k = agentKey(namespace, agentName);
      const n = pendingOf.get(k);
      if (n !== undefined) pendingOf.set(k, n + 1);
      return undefined;
    });
    if (existing) return { session: get(namespace, existing), created: false };
    // Committed. A listener that throws is logged by the topic: the caller still gets its session.
    topics.sessionStarted.publish({ session, seq: mySeq });
    return { session, created: true };
  }

  /** Queues an event; it gets the next id of its session and is published after commit. */
  function appendEvent(namespace: string, name: string, type: string, content: unknown): SessionEvent {
    const k = sessionKey(namespace, name);
    const id = nextId.get(k) ?? store.sessions.lastEventId(namespace, name) + 1;
    nextId.set(k, id + 1);
    const event: SessionEvent = { id, type, content, timestamp: now() };
    writer.queue(
      () => store.sessions.appendEvent(namespace, name, event),
      () => topics.sessionEvent.publish({ namespace, session: name, event }, k),
    );
    if (type === EventType.StatusClosed) nextId.delete(k);
    return event;
  }

  function markRunning(s: Session) {
    const startedAt = now();
    writer.queue(() => {
      if (store.sessions.markRunning(s.namespace, s.name, startedAt)) leftPending(s.namespace, s.agentDefinition);
    });
    appendEvent(s.namespace, s.name, EventType.StatusRunning, { phase: Phase.Running });
  }

  /**
   * Ends a session: its final phase, response and error, then `session.status_closed` as its last
   * event. Resolves after commit; waiters are told then.
   */
  function finish(s: Session, result: { phase: Phase; response: string | null; error: string | null; usage?: Session["usage"] }): Promise<Session> {
    const finishedAt = now();
    appendEvent(s.namespace, s.name, EventType.StatusClosed, {
      phase: result.phase,
      ...(result.error ? { reason: result.error } : {}),
    });
    return writer
      .run(() => {
        if (store.sessions.phaseOf(s.namespace, s.name) === Phase.Pending) leftPending(s.namespace, s.agentDefinition);
        store.sessions.update(s.namespace, s.name, { phase: result.phase, response: result.response, error: result.error, finishedAt, usage: result.usage ?? undefined });
      })
      .then(() => {
        const done = { ...s, ...result, finishedAt };
        topics.sessionEnded.publish(done, sessionKey(s.namespace, s.name));
        return done;
      });
  }

  return {
    topics,
    start,
    startOnce,
    /** Pending sessions of one agent (one index entry read per such session). */
    pendingCount: (namespace: string, agent: string) => store.sessions.pendingCount(namespace, agent),
    /** Pending sessions of all agents (kept as a counter, not counted per call). */
    pendingTotal: () => pendingTotal,
    /** For the supervisor: the agents with Pending sessions, and one agent's backlog page by page. */
    pendingAgents: () => store.sessions.pendingAgents(),
    pendingPage: (namespace: string, agent: string, after: number, limit: number) => store.sessions.pendingPage(namespace, agent, after, limit),
    findDelivery: (namespace: string, agent: string, delivery: string) => store.sessions.findDelivery(namespace, agent, delivery),
    pendingCallbacks: () => store.sessions.pendingCallbacks(),
    setCallbackState: (s: Session, state: CallbackState) => writer.run(() => store.sessions.update(s.namespace, s.name, { callbackState: state })),
    get,
    find: (namespace: string, name: string) => store.sessions.get(namespace, name),
    list: (namespace?: string, limit = 100) => store.sessions.list(namespace, limit),
    /** A page of a list, newest first, with each session's position (pass the last one as `before` for the next page). */
    page: (namespace: string | undefined, limit: number, before?: number) => store.sessions.page(namespace, limit, before),
    /** Sessions Running in the store (at start-up: those a previous server left behind). */
    running: () => store.sessions.running(),
    events: (namespace: string, name: string, opts?: { after?: number; limit?: number; type?: string }) => store.sessions.events(namespace, name, opts),
    appendEvent,
    markRunning,
    finish,
    flush: () => writer.flush(),
  };
}

/** The session service of this process's own store (reads are synchronous there). */
export type LocalSessionService = ReturnType<typeof createSessionService>;

type MaybePromise<T> = T | Promise<T>;

/**
 * What the API, the webhook path, the supervisor and the callbacks use: the local service above, or
 * the one on a database shared by replicas (./sessions-pg.ts), whose reads are promises. Callers
 * await every read.
 */
export interface SessionService {
  readonly topics: Pick<Topics, "sessionStarted" | "sessionEvent" | "sessionEnded">;
  start(agent: Agent, opts: StartOptions): Promise<Session>;
  startOnce(agent: Agent, opts: StartOptions): Promise<StartResult>;
  /** Throws NotFoundError. */
  get(namespace: string, name: string): MaybePromise<Session>;
  find(namespace: string, name: string): MaybePromise<Session | undefined>;
  list(namespace?: string, limit?: number): MaybePromise<Session[]>;
  page(namespace: string | undefined, limit: number, before?: number): MaybePromise<{ session: Session; seq: number }[]>;
  events(namespace: string, name: string, opts?: { after?: number; limit?: number; type?: string }): MaybePromise<SessionEvent[]>;
  /** Sessions this process must end at start-up (a previous run of it left them Running). */
  running(): MaybePromise<Session[]>;
  pendingCallbacks(): MaybePromise<Session[]>;
  findDelivery(namespace: string, agent: string, delivery: string): MaybePromise<string | undefined>;
  /** Pending sessions of all agents (a counter, or the last count read). */
  pendingTotal(): number;
  setCallbackState(s: Session, state: CallbackState): Promise<unknown>;
  appendEvent(namespace: string, name: string, type: string, content: unknown): SessionEvent;
  markRunning(s: Session): void;
  finish(s: Session, result: { phase: Phase; response: string | null; error: string | null; usage?: Session["usage"] }): Promise<Session>;
  /** Writes whatever is queued; resolves once it is committed. */
  flush(): MaybePromise<void>;
}
