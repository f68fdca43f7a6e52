/**
 * Session rows and their events. The supervisor writes through a small group-commit writer so
 * that many concurrent sessions share one transaction per tick; reads use prepared statements.
 */
import { and, asc, desc, eq, gt, lt, sql } from "drizzle-orm";
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
    usage: (r.usage as unknown as Session["usage"]) ?? null,
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
  // The queries below read the partial indexes of schema.sql.ts. Each spells its index's WHERE
  // literally and names it (INDEXED BY): without statistics the planner might pick another index
  // and scan the whole backlog, and INDEXED BY turns that mistake into an error instead.
  const q = <T>(text: string) => lazy(() => db.$client.prepare<T, (string | number)[]>(text));
  const countPending = q<{ n: number }>(`SELECT count(*) AS n FROM sessions INDEXED BY sessions_pending_idx WHERE phase = 'Pending'`);
  const countPendingOf = q<{ n: number }>(
    `SELECT count(*) AS n FROM sessions INDEXED BY sessions_pending_idx WHERE phase = 'Pending' AND namespace = ?1 AND agent_definition = ?2`,
  );
  const pendingPage = q<{ name: string; seq: number; lim: number | null }>(
    `SELECT name, seq, json_extract(spec, '$.maxConcurrentSessions') AS lim FROM sessions INDEXED BY sessions_pending_idx
     WHERE phase = 'Pending' AND namespace = ?1 AND agent_definition = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4`,
  );
  // Two seeks, not one row-value comparison: SQLite walks `(namespace, agent) > (?, ?)` entry by
  // entry through the agent's own backlog (450 ms over a million), but seeks past it with these.
  const nextPendingAgentIn = q<{ namespace: string; agent: string }>(
    `SELECT namespace, agent_definition AS agent FROM sessions INDEXED BY sessions_pending_idx
     WHERE phase = 'Pending' AND namespace = ?1 AND agent_definition > ?2 ORDER BY agent_definition LIMIT 1`,
  );
  const firstPendingAgentAfter = q<{ namespace: string; agent: string }>(
    `SELECT namespace, agent_definition AS agent FROM sessions INDEXED BY sessions_pending_idx
     WHERE phase = 'Pending' AND namespace > ?1 ORDER BY namespace, agent_definition LIMIT 1`,
  );
  const nextNamespace = q<{ namespace: string }>(`SELECT namespace FROM sessions INDEXED BY sessions_namespace_seq_idx WHERE namespace > ?1 ORDER BY namespace LIMIT 1`);
  const maxSeqIn = q<{ seq: number | null }>(`SELECT max(seq) AS seq FROM sessions INDEXED BY sessions_namespace_seq_idx WHERE namespace = ?1`);
  const newestIn = lazy(() =>
    db.select().from(sessions).where(eq(sessions.namespace, sql.placeholder("namespace"))).orderBy(desc(sessions.seq)).limit(sql.placeholder("limit")).prepare()
  );
  const olderIn = lazy(() =>
    db
      .select()
      .from(sessions)
      .where(and(eq(sessions.namespace, sql.placeholder("namespace")), lt(sessions.seq, sql.placeholder("before"))))
      .orderBy(desc(sessions.seq))
      .limit(sql.placeholder("limit"))
      .prepare()
  );
  const runningRows = lazy(() =>
    db.select().from(sessions).where(sql`phase = 'Running'`).orderBy(asc(sessions.seq)).prepare()
  );
  const callbacksDue = lazy(() =>
    db.select().from(sessions).where(sql`callback_state = 'pending' AND finished_at IS NOT NULL`).orderBy(asc(sessions.seq)).prepare()
  );
  const phaseOf = q<{ phase: string }>(`SELECT phase FROM sessions WHERE namespace = ?1 AND name = ?2`);
  const markRunning = q<never>(`UPDATE sessions SET phase = 'Running', started_at = ?3 WHERE namespace = ?1 AND name = ?2 AND phase = 'Pending'`);
  // Updates by the set of columns they write, each a prepared statement made on first use: a
  // session's end is written once per session, and building the query each time cost ~50 µs.
  const updateColumns = { phase: "phase", response: "response", error: "error", startedAt: "started_at", finishedAt: "finished_at", callbackState: "callback_state", usage: "usage" } as const;
  const updates = new Map<string, ReturnType<typeof db.$client.prepare>>();
  function updateStatement(keys: (keyof typeof updateColumns)[]) {
    const k = keys.join(",");
    let stmt = updates.get(k);
    if (!stmt) {
      const set = keys.map((key, i) => `${updateColumns[key]} = ?${i + 3}`).join(", ");
      updates.set(k, (stmt = db.$client.prepare(`UPDATE sessions SET ${set} WHERE namespace = ?1 AND name = ?2`)));
    }
    return stmt;
  }
  const lastName = q<{ name: string }>(
    `SELECT name FROM sessions WHERE namespace = ?1 AND name BETWEEN ?2 AND ?3 AND agent_definition = ?4 AND length(name) = length(?2) ORDER BY name DESC LIMIT 1`,
  );

  /** Every namespace that has sessions: a skip-scan of the (namespace, seq) index, one step per namespace. */
  function namespaces(): string[] {
    const out: string[] = [];
    for (let r = nextNamespace().get(""); r; r = nextNamespace().get(r.namespace)) out.push(r.namespace);
    return out;
  }

  const toEvent = (r: typeof sessionEvents.$inferSelect): SessionEvent => ({ id: r.id, type: r.type, content: r.content, timestamp: r.timestamp });

  return {
    get(namespace: string, name: string): Session | undefined {
      const r = byKey().get({ namespace, name });
      return r ? rowToSession(r) : undefined;
    },
    /** The largest seq in use: one index lookup per namespace (no scan of the table). */
    maxSeq: () => Math.max(0, ...namespaces().map((ns) => maxSeqIn().get(ns)?.seq ?? 0)),
    /** Pending sessions, all agents: counts the entries of the pending index (~50 ms per million). */
    countPending: () => countPending().get()!.n,
    /** Pending sessions of one agent; costs one index entry per such session. */
    pendingCount: (namespace: string, agent: string) => countPendingOf().get(namespace, agent)!.n,
    /** Up to `limit` Pending sessions of one agent with seq > `after`, oldest first: names and the limit their spec snapshot carries. */
    pendingPage(namespace: string, agent: string, after: number, limit: number): { name: string; seq: number; maxConcurrentSessions?: number }[] {
      return pendingPage()
        .all(namespace, agent, after, limit)
        .map((r) => (r.lim === null ? { name: r.name, seq: r.seq } : { name: r.name, seq: r.seq, maxConcurrentSessions: r.lim }));
    },
    /** The agents that have Pending sessions: a skip-scan of the pending index, one step per agent. */
    pendingAgents(): { namespace: string; agent: string }[] {
      const out: { namespace: string; agent: string }[] = [];
      for (let r = firstPendingAgentAfter().get(""); r; r = nextPendingAgentIn().get(r.namespace, r.agent) ?? firstPendingAgentAfter().get(r.namespace)) out.push(r);
      return out;
    },
    /**
     * The largest 8-hex-digit suffix among the names `<agent>-<kind>-<suffix>` of one agent
     * (0 if none); a lookup at the end of the range in the primary key.
     */
    lastSuffix(namespace: string, agent: string, kinds: readonly string[]): number {
      let max = 0;
      for (const kind of kinds) {
        const prefix = `${agent}-${kind}-`;
        const r = lastName().get(namespace, `${prefix}00000000`, `${prefix}ffffffff`, agent);
        const n = r ? parseInt(r.name.slice(prefix.length), 16) : 0;
        if (Number.isFinite(n) && n > max) max = n;
      }
      return max;
    },
    phaseOf: (namespace: string, name: string) => phaseOf().get(namespace, name)?.phase,
    /** Pending → Running; false (and nothing changed) if the session is no longer Pending. */
    markRunning: (namespace: string, name: string, startedAt: string) => markRunning().run(namespace, name, startedAt).changes > 0,
    insert(s: Session & { seq?: number }, seq = s.seq!) {
      insertSession().run(
        s.namespace,
        s.name,
        s.uid,
        s.agentDefinition,
        s.generation,
        jsonOfSpec(s.spec),
        s.title,
        s.env.length === 0 ? "[]" : JSON.stringify(s.env),
        JSON.stringify(s.origin),
        s.phase,
        s.payload === undefined ? null : JSON.stringify(s.payload),
        s.callbackUrl ?? null,
        s.callbackState ?? null,
        seq,
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
      return callbacksDue().all().map(rowToSession);
    },
    update(namespace: string, name: string, values: Partial<Pick<SessionRow, "phase" | "response" | "error" | "startedAt" | "finishedAt" | "callbackState">> & { usage?: Session["usage"] }) {
      // As drizzle's set(): keys whose value is undefined are left out.
      const keys: (keyof typeof updateColumns)[] = [];
      const args: (string | null)[] = [namespace, name];
      for (const key in values) {
        const v = values[key as keyof typeof values];
        if (v === undefined) continue;
        if (!(key in updateColumns)) {
          keys.length = 0;
          break;
        }
        keys.push(key as keyof typeof updateColumns);
        args.push(key === "usage" ? (v === null ? null : JSON.stringify(v)) : (v as string | null));
      }
      if (!keys.length) {
        // Nothing or something unusual to set: drizzle says what is wrong.
        db.update(sessions).set(values as Parameters<ReturnType<typeof db.update<typeof sessions>>["set"]>[0]).where(and(eq(sessions.namespace, namespace), eq(sessions.name, name))).run();
        return;
      }
      updateStatement(keys).run(...args);
    },
    appendEvent(namespace: string, session: string, e: SessionEvent) {
      insertEvent().run({ namespace, session, id: e.id, type: e.type, content: e.content, timestamp: e.timestamp });
    },
    events(namespace: string, session: string, opts: { after?: number; limit?: number; type?: string } = {}): SessionEvent[] {
      const args = { namespace, session, after: opts.after ?? 0, limit: opts.limit ?? -1 };
      return (opts.type ? eventsOfTypeAfter().all({ ...args, type: opts.type }) : eventsAfter().all(args)).map(toEvent);
    },
    lastEventId: (namespace: string, session: string) => lastEventId().get({ namespace, session })!.id,
    /** Running sessions, oldest first (from their partial index: start-up reads no Pending row). */
    running(): Session[] {
      return runningRows().all().map(rowToSession);
    },
    /** The newest `limit` sessions of a namespace, or of all (merged from each namespace's newest, not a sort of the table). */
    list(namespace: string | undefined, limit: number): Session[] {
      const rows = (namespace ? [namespace] : namespaces()).flatMap((ns) => newestIn().all({ namespace: ns, limit }));
      return rows.sort((a, b) => b.seq - a.seq).slice(0, limit).map(rowToSession);
    },
    /** A page of a list: up to `limit` sessions older than seq `before` (default: the newest), newest first, each with its seq (the next page's `before`). */
    page(namespace: string | undefined, limit: number, before = Number.MAX_SAFE_INTEGER): { session: Session; seq: number }[] {
      const rows = (namespace ? [namespace] : namespaces()).flatMap((ns) => olderIn().all({ namespace: ns, before, limit }));
      return rows.sort((a, b) => b.seq - a.seq).slice(0, limit).map((r) => ({ session: rowToSession(r), seq: r.seq }));
    },
  };
}

export type SessionRepo = ReturnType<typeof createSessionRepo>;
