/**
 * Session rows and their events. The supervisor writes through a small group-commit writer so
 * that many concurrent sessions share one transaction per tick; reads use prepared statements.
 */
import { and, asc, desc, eq, gt, sql } from "drizzle-orm";
import type { Db } from "./db";
import { lazy } from "../lib/lazy";
import { sessionEvents, sessions, webhookDeliveries } from "./schema.sql";
import type { Session, SessionEvent } from "../domain/session";
import type { AgentSpec } from "../domain/agent";

export type SessionRow = typeof sessions.$inferSelect;

export function rowToSession(r: SessionRow): Session {
  return {
    name: r.name,
    namespace: r.namespace,
    uid: r.uid,
    agentDefinition: r.agentDefinition,
    generation: r.generation,
    spec: r.spec as AgentSpec,
    title: r.title,
    env: r.env,
    origin: r.origin as unknown as Session["origin"],
    phase: r.phase as Session["phase"],
    response: r.response,
    error: r.error,
    payload: r.payload ?? undefined,
    callbackUrl: r.callbackUrl,
    callbackState: r.callbackState as Session["callbackState"],
    createdAt: r.createdAt,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
  };
}

export function createSessionRepo(db: Db) {
  const byKey = lazy(() =>
    db
    .select()
    .from(sessions)
    .where(and(eq(sessions.namespace, sql.placeholder("namespace")), eq(sessions.name, sql.placeholder("name"))))
    .prepare()
  );
  // The hottest write (one per accepted webhook): a plain bun:sqlite statement, with the spec's JSON
  // made once per agent version instead of once per session (measured in bench/webhooks.ts).
  const insertSession = lazy(() =>
    db.$client.prepare(
      `INSERT INTO sessions (namespace, name, uid, agent_definition, generation, spec, title, env, origin, phase, payload, callback_url, callback_state, seq, created_at)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)`,
    ),
  );
  const specJson = new WeakMap<object, string>();
  const jsonOfSpec = (spec: object) => {
    let text = specJson.get(spec);
    if (text === undefined) specJson.set(spec, (text = JSON.stringify(spec)));
    return text;
  };
  const insertEvent = lazy(() =>
    db
    .insert(sessionEvents)
    .values({
      namespace: sql.placeholder("namespace"),
      session: sql.placeholder("session"),
      id: sql.placeholder("id"),
      type: sql.placeholder("type"),
      content: sql.placeholder("content"),
      timestamp: sql.placeholder("timestamp"),
    })
    .prepare()
  );
  const eventsAfter = lazy(() =>
    db
    .select()
    .from(sessionEvents)
    .where(and(eq(sessionEvents.namespace, sql.placeholder("namespace")), eq(sessionEvents.session, sql.placeholder("session")), gt(sessionEvents.id, sql.placeholder("after"))))
    .orderBy(asc(sessionEvents.id))
    .limit(sql.placeholder("limit"))
    .prepare()
  );
  const eventsOfTypeAfter = lazy(() =>
    db
    .select()
    .from(sessionEvents)
    .where(
      and(
        eq(sessionEvents.namespace, sql.placeholder("namespace")),
        eq(sessionEvents.session, sql.placeholder("session")),
        gt(sessionEvents.id, sql.placeholder("after")),
        eq(sessionEvents.type, sql.placeholder("type")),
      ),
    )
    .orderBy(asc(sessionEvents.id))
    .limit(sql.placeholder("limit"))
    .prepare()
  );
  const lastEventId = lazy(() =>
    db
    .select({ id: sql<number>`coalesce(max(${sessionEvents.id}), 0)` })
    .from(sessionEvents)
    .where(and(eq(sessionEvents.namespace, sql.placeholder("namespace")), eq(sessionEvents.session, sql.placeholder("session"))))
    .prepare()
  );
  const findDelivery = lazy(() =>
    db
    .select({ session: webhookDeliveries.session })
    .from(webhookDeliveries)
    .where(
      and(
        eq(webhookDeliveries.namespace, sql.placeholder("namespace")),
        eq(webhookDeliveries.agent, sql.placeholder("agent")),
        eq(webhookDeliveries.deliveryId, sql.placeholder("deliveryId")),
      ),
    )
    .prepare()
  );
  const pendingInAgent = lazy(() =>
    db
    .select({ n: sql<number>`count(*)` })
    .from(sessions)
    .where(and(eq(sessions.namespace, sql.placeholder("namespace")), eq(sessions.agentDefinition, sql.placeholder("agent")), eq(sessions.phase, "Pending")))
    .prepare()
  );
  const maxSeq = lazy(() =>
    db.select({ seq: sql<number>`coalesce(max(${sessions.seq}), 0)` }).from(sessions).prepare()
  );

  const toEvent = (r: typeof sessionEvents.$inferSelect): SessionEvent => ({ id: r.id, type: r.type, content: r.content, timestamp: r.timestamp });

  return {
    get(namespace: string, name: string): Session | undefined {
      const r = byKey().get({ namespace, name });
      return r ? rowToSession(r) : undefined;
    },
    maxSeq: () => maxSeq().get()!.seq,
    pendingCount: (namespace: string, agent: string) => pendingInAgent().get({ namespace, agent })!.n,
    insert(s: Session & { seq: number }) {
      insertSession().run(
        s.namespace,
        s.name,
        s.uid,
        s.agentDefinition,
        s.generation,
        jsonOfSpec(s.spec),
        s.title,
        JSON.stringify(s.env),
        JSON.stringify(s.origin),
        s.phase,
        s.payload === undefined ? null : JSON.stringify(s.payload),
        s.callbackUrl ?? null,
        s.callbackState ?? null,
        s.seq,
        s.createdAt,
      );
    },
    /** The session an earlier delivery with this id started, if any. */
    findDelivery(namespace: string, agent: string, deliveryId: string): string | undefined {
      return findDelivery().get({ namespace, agent, deliveryId })?.session;
    },
    insertDelivery(namespace: string, agent: string, deliveryId: string, session: string, createdAt: string) {
      db.insert(webhookDeliveries).values({ namespace, agent, deliveryId, session, createdAt }).run();
    },
    /** Finished sessions whose callback is still to be delivered. */
    pendingCallbacks(): Session[] {
      return db.select().from(sessions).where(eq(sessions.callbackState, "pending")).orderBy(asc(sessions.seq)).all().map(rowToSession).filter((s) => s.finishedAt);
    },
    update(namespace: string, name: string, values: Partial<Pick<SessionRow, "phase" | "response" | "error" | "startedAt" | "finishedAt" | "callbackState">>) {
      db.update(sessions).set(values).where(and(eq(sessions.namespace, namespace), eq(sessions.name, name))).run();
    },
    appendEvent(namespace: string, session: string, e: SessionEvent) {
      insertEvent().run({ namespace, session, id: e.id, type: e.type, content: e.content, timestamp: e.timestamp });
    },
    events(namespace: string, session: string, opts: { after?: number; limit?: number; type?: string } = {}): SessionEvent[] {
      const args = { namespace, session, after: opts.after ?? 0, limit: opts.limit ?? -1 };
      return (opts.type ? eventsOfTypeAfter().all({ ...args, type: opts.type }) : eventsAfter().all(args)).map(toEvent);
    },
    lastEventId: (namespace: string, session: string) => lastEventId().get({ namespace, session })!.id,
    /** Sessions in a phase, oldest first. */
    inPhase(phase: string): Session[] {
      return db.select().from(sessions).where(eq(sessions.phase, phase)).orderBy(asc(sessions.seq)).all().map(rowToSession);
    },
    list(namespace: string | undefined, limit: number): Session[] {
      const q = db.select().from(sessions);
      return (namespace ? q.where(eq(sessions.namespace, namespace)) : q).orderBy(desc(sessions.seq)).limit(limit).all().map(rowToSession);
    },
  };
}

export type SessionRepo = ReturnType<typeof createSessionRepo>;
