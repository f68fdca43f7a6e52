/**
 * Session use cases: start a session (committed before the caller hears of it), append events in
 * order, move phases, read. Writes go through group commit; live readers are told after commit.
 */
import type { Store } from "../store";
import type { Agent } from "../domain/agent";
import { BadRequestError, NotFoundError } from "../domain/errors";
import { CallbackState, EventType, Phase, forbiddenEnvNames, type EnvVar, type Session, type SessionEvent, type SessionOrigin } from "../domain/session";
import { createGroupCommit, type GroupCommit } from "../lib/group-commit";
import { uuid } from "../lib/crypto";
import type { Logger } from "../lib/log";
import { SessionFeed } from "./feed";

export interface StartOptions {
  title: string;
  env?: EnvVar[];
  origin: SessionOrigin;
  /** `wh` for webhook runs (`<agent>-wh-<8 hex>`), `run` for the CLI and API. */
  kind?: "wh" | "run";
  /** The raw event, given to the agent as webhook.json. */
  payload?: unknown;
  callbackUrl?: string;
}

export interface StartResult {
  session: Session;
  /** False when `origin.delivery` was seen before: `session` is the one that delivery started. */
  created: boolean;
}

export function createSessionService(deps: { store: Store; log: Logger; feed?: SessionFeed; now?: () => Date }) {
  const { store, log } = deps;
  const feed = deps.feed ?? new SessionFeed();
  const now = () => (deps.now?.() ?? new Date()).toISOString();
  const writer: GroupCommit = createGroupCommit(
    (fn) => store.tx(fn),
    (err) => log.error("failed to write session data", { error: (err as Error).message }),
  );
  let seq = store.sessions.maxSeq();
  /** Next event id per session that has events in flight. */
  const nextId = new Map<string, number>();
  const started = new Set<(s: Session) => void>();
  const finished = new Set<(s: Session) => void>();

  function get(namespace: string, name: string): Session {
    const s = store.sessions.get(namespace, name);
    if (!s) throw new NotFoundError(`session "${name}" not found in namespace "${namespace}"`);
    return s;
  }

  /** Creates a Pending session; resolves once it is committed. */
  async function start(agent: Agent, opts: StartOptions): Promise<Session> {
    return (await startOnce(agent, opts)).session;
  }

  /** Deliveries being committed now, so a duplicate arriving meanwhile joins the first. */
  const inFlight = new Map<string, Promise<StartResult>>();

  /**
   * Like `start`, but a delivery id (`opts.origin.delivery`) seen before returns the session it
   * started instead of a new one. The delivery and the session are committed together.
   */
  function startOnce(agent: Agent, opts: StartOptions): Promise<StartResult> {
    const delivery = opts.origin.delivery;
    if (!delivery) return create(agent, opts);
    const k = `${agent.metadata.namespace}/${agent.metadata.name}/${delivery}`;
    const running = inFlight.get(k);
    if (running) return running.then((r) => ({ ...r, created: false }));
    const p = create(agent, opts).finally(() => inFlight.delete(k));
    inFlight.set(k, p);
    return p;
  }

  async function create(agent: Agent, opts: StartOptions): Promise<StartResult> {
    const bad = forbiddenEnvNames(opts.env ?? []);
    if (bad.length) throw new BadRequestError(`env: these variables may not be set for a session: ${bad.join(", ")}`);
    const mySeq = ++seq;
    const session: Session = {
      // The suffix is the session's place in the store's order: unique (random 32-bit suffixes
      // collide around 90k sessions of one agent) and index-friendly (inserts land on one page).
      name: `${agent.metadata.name}-${opts.kind ?? "run"}-${mySeq.toString(16).padStart(8, "0")}`,
      namespace: agent.metadata.namespace,
      uid: uuid(),
      agentDefinition: agent.metadata.name,
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
      createdAt: now(),
      startedAt: null,
      finishedAt: null,
    };
    const delivery = opts.origin.delivery;
    const existing = await writer.run(() => {
      if (delivery) {
        const earlier = store.sessions.findDelivery(session.namespace, session.agentDefinition, delivery);
        if (earlier) return earlier;
        store.sessions.insertDelivery(session.namespace, session.agentDefinition, delivery, session.name, session.createdAt);
      }
      store.sessions.insert({ ...session, seq: mySeq });
      return undefined;
    });
    if (existing) return { session: get(session.namespace, existing), created: false };
    for (const fn of started) fn(session);
    return { session, created: true };
  }

  /** Queues an event; it gets the next id of its session and is published after commit. */
  function appendEvent(namespace: string, name: string, type: string, content: unknown): SessionEvent {
    const k = SessionFeed.key(namespace, name);
    const id = nextId.get(k) ?? store.sessions.lastEventId(namespace, name) + 1;
    nextId.set(k, id + 1);
    const event: SessionEvent = { id, type, content, timestamp: now() };
    writer.queue(
      () => store.sessions.appendEvent(namespace, name, event),
      () => feed.publish(namespace, name, event),
    );
    if (type === EventType.StatusClosed) nextId.delete(k);
    return event;
  }

  function markRunning(s: Session) {
    const startedAt = now();
    writer.queue(() => store.sessions.update(s.namespace, s.name, { phase: Phase.Running, startedAt }));
    appendEvent(s.namespace, s.name, EventType.StatusRunning, { phase: Phase.Running });
  }

  /**
   * Ends a session: its final phase, response and error, then `session.status_closed` as its last
   * event. Resolves after commit; waiters are told then.
   */
  function finish(s: Session, result: { phase: Phase; response: string | null; error: string | null }): Promise<Session> {
    const finishedAt = now();
    appendEvent(s.namespace, s.name, EventType.StatusClosed, {
      phase: result.phase,
      ...(result.error ? { reason: result.error } : {}),
    });
    return writer
      .run(() => store.sessions.update(s.namespace, s.name, { phase: result.phase, response: result.response, error: result.error, finishedAt }))
      .then(() => {
        const done = { ...s, ...result, finishedAt };
        feed.closed(done);
        for (const fn of finished) fn(done);
        return done;
      });
  }

  return {
    feed,
    start,
    startOnce,
    pendingCount: (namespace: string, agent: string) => store.sessions.pendingCount(namespace, agent),
    findDelivery: (namespace: string, agent: string, delivery: string) => store.sessions.findDelivery(namespace, agent, delivery),
    pendingCallbacks: () => store.sessions.pendingCallbacks(),
    setCallbackState: (s: Session, state: CallbackState) => writer.run(() => store.sessions.update(s.namespace, s.name, { callbackState: state })),
    get,
    find: (namespace: string, name: string) => store.sessions.get(namespace, name),
    list: (namespace?: string, limit = 100) => store.sessions.list(namespace, limit),
    inPhase: (phase: string) => store.sessions.inPhase(phase),
    events: (namespace: string, name: string, opts?: { after?: number; limit?: number; type?: string }) => store.sessions.events(namespace, name, opts),
    appendEvent,
    markRunning,
    finish,
    /** Called with each session right after its end is committed (callbacks go out then). */
    onFinished(fn: (s: Session) => void) {
      finished.add(fn);
    },
    /** Called with each session right after it is committed (the supervisor queues it). */
    onStarted(fn: (s: Session) => void) {
      started.add(fn);
    },
    flush: () => writer.flush(),
  };
}

export type SessionService = ReturnType<typeof createSessionService>;
