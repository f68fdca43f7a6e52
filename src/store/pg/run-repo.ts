/**
 * The run repository of replicas sharing one Postgres (`pai serve --database postgres://…`):
 * sessions, their events, webhook deliveries, access tokens, replica heartbeats and notifications.
 * One async method per SQL operation over Bun's built-in client; the session service and the
 * supervisor sit on top. A webhook accepted by one replica may run on another, so everything that
 * a lone server decides in memory (the next seq, the next name, who runs what, how many of an
 * agent run) is decided here by the database.
 *
 * Every query is a tagged template with fixed text, so Bun keeps it as a named prepared statement
 * per connection and nothing is built per call; lists of values travel as array parameters
 * (`unnest`, `= ANY`), so a statement's text never depends on how many there are.
 */
import type { SQL } from "bun";
import type { Session, SessionEvent } from "../../domain/session";
import type { TokenRow } from "../tokens";
import { migratePg } from "./migrate";
import { num, rowToEvent, rowToSession, rowToToken, type PgEventRow, type PgSessionRow, type PgTokenRow } from "./rows";

export type SessionValues = Partial<Pick<Session, "phase" | "response" | "error" | "startedAt" | "finishedAt" | "callbackState" | "usage">>;

export interface PgRunRepo {
  /** Applies the embedded Postgres migrations under an advisory lock (several replicas may start at once). */
  migrate(): Promise<void>;
  /**
   * One atomic write: the delivery keys (webhook_deliveries) and the session, or, if any key is
   * already taken, nothing, and the session that key points to. Of two racing calls with the same
   * key exactly one creates.
   */
  insertSession(s: Session, deliveryKeys: string[]): Promise<{ created: true; seq: number } | { created: false; existing: string }>;
  /** Several sessions without delivery keys in one statement (a batch of starts); their seqs, in order. */
  insertSessions(list: Session[]): Promise<number[]>;
  /** Reserves `n` name suffixes for an agent: returns the first; the block is [first, first+n). */
  allocateNames(namespace: string, agent: string, n: number): Promise<number>;
  countPending(): Promise<number>;
  countPendingOf(namespace: string, agent: string): Promise<number>;
  get(namespace: string, name: string): Promise<Session | undefined>;
  /** Newest first (by seq), one namespace or all. */
  list(namespace: string | undefined, limit: number): Promise<Session[]>;
  /** Up to `limit` sessions with seq < `before` (default: the newest), newest first, with their seq (the next page's `before`). */
  page(namespace: string | undefined, limit: number, before?: number): Promise<{ session: Session; seq: number }[]>;
  findDelivery(namespace: string, agent: string, deliveryId: string): Promise<string | undefined>;
  /** Events of any sessions, in one statement. */
  appendEvents(events: { namespace: string; session: string; event: SessionEvent }[]): Promise<void>;
  events(namespace: string, session: string, opts?: { after?: number; limit?: number; type?: string }): Promise<SessionEvent[]>;
  lastEventId(namespace: string, session: string): Promise<number>;
  /**
   * Claims up to `limit` Pending sessions for `owner`, oldest seq first, FIFO within an agent, and
   * within every session's `spec.maxConcurrentSessions` counted over all replicas. Sets them
   * Running with `owner` and `startedAt = now`; returns them by seq.
   */
  claim(owner: string, limit: number, now: string): Promise<Session[]>;
  /** As SessionRepo.update: keys whose value is undefined are left as they are. */
  update(namespace: string, name: string, values: SessionValues): Promise<void>;
  /** Ends a session only if it is still Pending; whether it did. */
  finishIfPending(namespace: string, name: string, values: { phase: string; error: string | null; finishedAt: string }): Promise<boolean>;
  /** Running sessions of this owner, by seq. */
  runningOf(owner: string): Promise<Session[]>;
  /** Finished sessions whose callback is still to be delivered, by seq. */
  pendingCallbacks(): Promise<Session[]>;
  /** Upserts this replica's heartbeat (epoch ms). */
  heartbeat(owner: string, nowMs: number, startedAt: string): Promise<void>;
  /**
   * Ends (Error, 'replica lost') the Running sessions whose owner's heartbeat is older than
   * `nowMs - expiryMs` or missing, and returns them; concurrent reapers never share one. Also
   * forgets replicas silent for 10 × expiry.
   */
  reapLost(nowMs: number, expiryMs: number, now: string, reaper?: string): Promise<Session[]>;
  /**
   * Takes over the callbacks still to deliver of finished sessions whose owner's heartbeat is older
   * than `nowMs - expiryMs` (or gone): they become `owner`'s, and are returned for it to deliver.
   * Concurrent callers never share one. Sessions without an owner are left alone.
   */
  adoptCallbacks(owner: string, nowMs: number, expiryMs: number): Promise<Session[]>;
  /** Removes this replica's heartbeat (a clean stop): its callbacks are adopted at once. */
  retire(owner: string): Promise<void>;
  /** The replica that claimed (ran) a session, if any. */
  ownerOf(namespace: string, name: string): Promise<string | null | undefined>;
  /**
   * Up to `limit` sessions that finished before `cutoff` (ISO), in a final phase, whose callback
   * is not pending, oldest first, that `owner` should remove: its own (it holds their working
   * folders) and those of replicas whose heartbeat is older than `nowMs - expiryMs` or gone (their
   * folders went with them), or with no owner.
   */
  retentionCandidates(owner: string, cutoff: string, nowMs: number, expiryMs: number, limit: number): Promise<{ namespace: string; name: string; mine: boolean }[]>;
  /** Deletes these sessions (if still retired by `cutoff`) with their events and deliveries; returns how many went. */
  removeSessions(keys: { namespace: string; name: string }[], cutoff: string): Promise<number>;
  tokens: {
    /** Every token, admin ones included, oldest first. */
    all(): Promise<TokenRow[]>;
    insert(row: TokenRow): Promise<void>;
    delete(namespace: string, id: string): Promise<boolean>;
    /** Deletes the admin token with this id, or every admin token; whether any went. */
    deleteAdmin(id?: string): Promise<boolean>;
    byHash(hash: string): Promise<TokenRow | undefined>;
  };
  /** NOTIFY (payload at most 8000 bytes, Postgres's limit). */
  notify(channel: string, payload: string): Promise<void>;
  /**
   * LISTEN; `handler` gets each payload. After a dropped connection Bun reconnects and listens
   * again, then `onReconnect` runs (notifications sent meanwhile are lost: re-read what matters).
   * Resolves once the server listens, so a NOTIFY after it arrives. Returns the unlisten.
   */
  listen(channel: string, handler: (payload: string) => void, onReconnect?: () => void): Promise<() => Promise<void>>;
  /** Stops every listen of this repository and closes the client it was given. */
  close(): Promise<void>;
}

/** NOTIFY's payload limit (Postgres's default build). */
export const MAX_NOTIFY_BYTES = 8000;

/**
 * First key of the two-key advisory locks that serialize claims of one agent (the second is the
 * hash of namespace/agent). Two-key locks are a key space apart from single-key ones.
 */
const CLAIM_LOCK = 0x7061_6902;

type Db = SQL;
/** A spec's maxConcurrentSessions as `->>` gives it, or undefined for none or anything not a positive integer. */
const limitOf = (text: string | null): number | undefined => {
  if (text === null) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
};

export function createPgRunRepo(sql: SQL): PgRunRepo {
  // The hottest write: an agent's spec snapshot is the same object for every session of one agent
  // version, so its JSON is made once (as ../sessions.ts does).
  const specJson = new WeakMap<object, string>();
  const jsonOfSpec = (spec: object) => {
    let text = specJson.get(spec);
    if (text === undefined) specJson.set(spec, (text = JSON.stringify(spec)));
    return text;
  };
  const sessionParams = (s: Session) => ({
    env: s.env.length === 0 ? "[]" : JSON.stringify(s.env),
    origin: JSON.stringify(s.origin),
    payload: s.payload === undefined ? null : JSON.stringify(s.payload),
  });

  async function existingDelivery(db: Db, s: Session, keys: string[]): Promise<string | undefined> {
    const rows: { delivery_id: string; session: string }[] = await db`
      SELECT delivery_id, session FROM webhook_deliveries
      WHERE namespace = ${s.namespace} AND agent = ${s.agentDefinition} AND delivery_id = ANY(${keys}::text[])`;
    for (const k of keys) {
      const hit = rows.find((r) => r.delivery_id === k);
      if (hit) return hit.session;
    }
    return undefined;
  }

  /**
   * The deliveries and the session in one statement: the session is inserted only if every key
   * was (a key another transaction is inserting makes this wait for it, then count as taken).
   */
  async function insertWithKeys(db: Db, s: Session, keys: string[]): Promise<{ inserted: number; seq: number | null }> {
    const p = sessionParams(s);
    const [r]: { inserted: string; seq: string | null }[] = await db`
      WITH d AS (
        INSERT INTO webhook_deliveries (namespace, agent, delivery_id, session, created_at)
        SELECT ${s.namespace}::text, ${s.agentDefinition}::text, k, ${s.name}::text, ${s.createdAt}::text FROM unnest(${keys}::text[]) AS k
        ON CONFLICT DO NOTHING
        RETURNING 1
      ), n AS (SELECT count(*) AS inserted FROM d), ins AS (
        INSERT INTO sessions (namespace, name, uid, agent_definition, generation, spec, title, env, origin, phase, payload, callback_url, callback_state, seq, created_at)
        SELECT ${s.namespace}::text, ${s.name}::text, ${s.uid}::text, ${s.agentDefinition}::text, ${s.generation}::int, ${jsonOfSpec(s.spec)}::text,
               ${s.title}::text, ${p.env}::text, ${p.origin}::text, ${s.phase}::text, ${p.payload}::text, ${s.callbackUrl ?? null}::text,
               ${s.callbackState ?? null}::text, nextval('sessions_seq'), ${s.createdAt}::text
        FROM n WHERE n.inserted = ${keys.length}::int
        RETURNING seq
      )
      SELECT n.inserted, (SELECT seq FROM ins) AS seq FROM n`;
    return { inserted: num(r!.inserted), seq: r!.seq === null ? null : num(r!.seq) };
  }

  /** Thrown inside a transaction to roll it back: a key was taken. */
  class Taken {}

  /**
   * The rows travel as one JSON array (a JSON null is an SQL NULL, which a text[] parameter cannot
   * say): one statement, one round trip, one commit for the whole batch.
   */
  async function insertSessions(list: Session[]): Promise<number[]> {
    if (!list.length) return [];
    const rows = list.map((s) => {
      const p = sessionParams(s);
      return {
        namespace: s.namespace, name: s.name, uid: s.uid, agent_definition: s.agentDefinition, generation: s.generation, spec: jsonOfSpec(s.spec),
        title: s.title, env: p.env, origin: p.origin, phase: s.phase, payload: p.payload, callback_url: s.callbackUrl ?? null, callback_state: s.callbackState ?? null,
        created_at: s.createdAt,
      };
    });
    const out: { name: string; namespace: string; seq: string }[] = await sql`
      INSERT INTO sessions (namespace, name, uid, agent_definition, generation, spec, title, env, origin, phase, payload, callback_url, callback_state, seq, created_at)
      SELECT r.namespace, r.name, r.uid, r.agent_definition, r.generation, r.spec, r.title, r.env, r.origin, r.phase, r.payload, r.callback_url, r.callback_state,
             nextval('sessions_seq'), r.created_at
      FROM json_to_recordset(${JSON.stringify(rows)}::text::json) AS r(namespace text, name text, uid text, agent_definition text, generation int, spec text, title text,
           env text, origin text, phase text, payload text, callback_url text, callback_state text, created_at text)
      RETURNING namespace, name, seq`;
    const seqOf = new Map(out.map((r) => [`${r.namespace}/${r.name}`, num(r.seq)]));
    return list.map((s) => seqOf.get(`${s.namespace}/${s.name}`)!);
  }

  async function insertSession(s: Session, deliveryKeys: string[]): Promise<{ created: true; seq: number } | { created: false; existing: string }> {
    // Sorted: racing inserts of the same keys take their index locks in one order (else they deadlock).
    const keys = [...new Set(deliveryKeys)].sort();
    if (keys.length === 0) {
      const p = sessionParams(s);
      const [r]: { seq: string }[] = await sql`
        INSERT INTO sessions (namespace, name, uid, agent_definition, generation, spec, title, env, origin, phase, payload, callback_url, callback_state, seq, created_at)
        VALUES (${s.namespace}, ${s.name}, ${s.uid}, ${s.agentDefinition}, ${s.generation}, ${jsonOfSpec(s.spec)}, ${s.title}, ${p.env}, ${p.origin},
                ${s.phase}, ${p.payload}, ${s.callbackUrl ?? null}, ${s.callbackState ?? null}, nextval('sessions_seq'), ${s.createdAt})
        RETURNING seq`;
      return { created: true, seq: num(r!.seq) };
    }
    // A key can be taken between our insert and our look-up only by a delivery that was deleted
    // meanwhile (retention); then the next attempt inserts.
    for (let attempt = 0; ; attempt++) {
      let existing: string | undefined;
      if (keys.length === 1) {
        // One statement is atomic by itself: no transaction, one round trip.
        const r = await insertWithKeys(sql, s, keys);
        if (r.seq !== null) return { created: true, seq: r.seq };
        existing = await existingDelivery(sql, s, keys);
      } else {
        // With several keys, some may go in before one is found taken: a transaction undoes them,
        // and the look-up comes after it (inside, it would find the keys this call just wrote).
        try {
          const seq = await sql.begin(async (tx) => {
            const r = await insertWithKeys(tx, s, keys);
            if (r.seq === null) throw new Taken();
            return r.seq;
          });
          return { created: true, seq };
        } catch (e) {
          // A deadlock Postgres broke (two deliveries sharing keys, racing): the loser tries again.
          if ((e as { errno?: string }).errno === "40P01" && attempt < 3) continue;
          if (!(e instanceof Taken)) throw e;
          existing = await existingDelivery(sql, s, keys);
        }
      }
      if (existing !== undefined) return { created: false, existing };
      if (attempt >= 3) throw new Error(`insertSession ${s.namespace}/${s.name}: a delivery key was taken, but by no delivery found after ${attempt + 1} attempts`);
    }
  }

  /**
   * The agents with Pending sessions, each with its oldest one's seq and limit, by that seq: a
   * skip-scan of sessions_pending_idx (one probe per agent, however long the backlogs).
   */
  const pendingHeads = async (db: Db): Promise<{ namespace: string; agent: string; seq: number; lim: number | undefined }[]> => {
    const rows: { namespace: string; agent: string; seq: string; lim: string | null }[] = await db`
      WITH RECURSIVE a AS (
        (SELECT namespace, agent_definition FROM sessions WHERE phase = 'Pending' ORDER BY namespace, agent_definition LIMIT 1)
        UNION ALL
        SELECT nx.namespace, nx.agent_definition FROM a CROSS JOIN LATERAL (
          SELECT namespace, agent_definition FROM sessions
          WHERE phase = 'Pending' AND (namespace, agent_definition) > (a.namespace, a.agent_definition)
          ORDER BY namespace, agent_definition LIMIT 1
        ) nx
      )
      SELECT a.namespace, a.agent_definition AS agent, h.seq, h.lim FROM a CROSS JOIN LATERAL (
        SELECT seq, spec::json ->> 'maxConcurrentSessions' AS lim FROM sessions
        WHERE phase = 'Pending' AND namespace = a.namespace AND agent_definition = a.agent_definition
        ORDER BY seq LIMIT 1
      ) h
      ORDER BY h.seq`;
    return rows.map((r) => ({ namespace: r.namespace, agent: r.agent, seq: num(r.seq), lim: limitOf(r.lim) }));
  };

  /**
   * Takes the agent's claim lock (or not, when another claimer holds it: that one is claiming this
   * agent's sessions right now) and counts its Running sessions, all owners. The count is a
   * statement after the lock, so it sees every claim committed by an earlier holder.
   */
  async function lockAgent(tx: Db, namespace: string, agent: string): Promise<number | undefined> {
    const [l]: { got: boolean }[] = await tx`SELECT pg_try_advisory_xact_lock(${CLAIM_LOCK}::int, hashtext(${namespace}::text || '/' || ${agent}::text)) AS got`;
    if (!l!.got) return undefined;
    const [c]: { n: string }[] = await tx`
      SELECT count(*) AS n FROM sessions WHERE phase = 'Running' AND namespace = ${namespace} AND agent_definition = ${agent}`;
    return num(c!.n);
  }

  /**
   * Claims, in one transaction. Agents are visited by the seq of their oldest Pending session; of
   * each, up to `limit` Pending sessions are locked FOR UPDATE SKIP LOCKED (so concurrent claimers
   * take disjoint sets and never wait on each other), and kept while the agent's Running count,
   * plus those kept before in this call, is under each session's own limit; the first that is not
   * ends that agent's turn (FIFO within an agent). An agent with a limit in play is serialized by
   * a try-lock (pg_try_advisory_xact_lock), not a waiting lock: a claimer that finds another
   * claiming the same agent skips it instead of waiting, and claims never deadlock. The kept
   * sessions of all agents are merged by seq and the first `limit` set Running; the others' row
   * locks go at commit. Visiting stops at an agent whose oldest seq is past the `limit`-th kept.
   */
  async function claim(owner: string, limit: number, now: string): Promise<Session[]> {
    if (limit <= 0) return [];
    // Read outside the transaction: an idle poll costs one statement, no BEGIN/COMMIT. The heads
    // are only an order to visit in; what is claimed is re-read and locked below.
    const heads = await pendingHeads(sql);
    if (heads.length === 0) return [];
    const rows = await sql.begin(async (tx): Promise<PgSessionRow[]> => {
      let kept: { namespace: string; name: string; seq: number }[] = [];
      for (const h of heads) {
        if (kept.length >= limit && h.seq > kept[limit - 1]!.seq) break;
        let running: number | undefined;
        let want = limit;
        if (h.lim !== undefined) {
          running = await lockAgent(tx, h.namespace, h.agent);
          if (running === undefined) continue;
          want = Math.min(limit, h.lim - running);
          if (want <= 0) continue;
        }
        const candidates: { name: string; seq: string; lim: string | null }[] = await tx`
          SELECT name, seq, spec::json ->> 'maxConcurrentSessions' AS lim FROM sessions
          WHERE phase = 'Pending' AND namespace = ${h.namespace} AND agent_definition = ${h.agent}
          ORDER BY seq LIMIT ${want}
          FOR UPDATE SKIP LOCKED`;
        let keptHere = 0;
        for (const c of candidates) {
          const lim = limitOf(c.lim);
          if (lim !== undefined && running === undefined) {
            // A limit behind sessions without one (the agent gained it): those kept count too.
            const n = await lockAgent(tx, h.namespace, h.agent);
            if (n === undefined) break;
            running = n + keptHere;
          }
          if (lim !== undefined && running! >= lim) break;
          if (running !== undefined) running++;
          keptHere++;
          kept.push({ namespace: h.namespace, name: c.name, seq: num(c.seq) });
        }
        kept.sort((a, b) => a.seq - b.seq);
        if (kept.length > limit) kept = kept.slice(0, limit);
      }
      if (kept.length === 0) return [];
      return (await tx`
        UPDATE sessions SET phase = 'Running', owner = ${owner}, started_at = ${now}
        WHERE (namespace, name) IN (SELECT * FROM unnest(${kept.map((k) => k.namespace)}::text[], ${kept.map((k) => k.name)}::text[]))
          AND phase = 'Pending'
        RETURNING *`) as PgSessionRow[];
    });
    return rows.sort((a, b) => num(a.seq) - num(b.seq)).map(rowToSession);
  }

  async function reapLost(nowMs: number, expiryMs: number, now: string, reaper?: string): Promise<Session[]> {
    const cutoff = nowMs - expiryMs;
    // The CTE locks with SKIP LOCKED: a reaper never waits on another, and a row another reaper
    // ended meanwhile fails the re-check of `phase = 'Running'` when it is locked.
    const rows: PgSessionRow[] = await sql`
      WITH lost AS MATERIALIZED (
        SELECT s.namespace, s.name FROM sessions s
        WHERE s.phase = 'Running'
          AND NOT EXISTS (SELECT 1 FROM replicas r WHERE r.id = s.owner AND r.heartbeat_at >= ${cutoff}::bigint)
        FOR UPDATE OF s SKIP LOCKED
      )
      UPDATE sessions s SET phase = 'Error', error = 'replica lost', finished_at = ${now}, owner = coalesce(${reaper ?? null}::text, s.owner)
      FROM lost WHERE s.namespace = lost.namespace AND s.name = lost.name AND s.phase = 'Running'
      RETURNING s.*`;
    await sql`DELETE FROM replicas WHERE heartbeat_at < ${nowMs - 10 * expiryMs}::bigint`;
    return rows.sort((a, b) => num(a.seq) - num(b.seq)).map(rowToSession);
  }

  async function adoptCallbacks(owner: string, nowMs: number, expiryMs: number): Promise<Session[]> {
    const cutoff = nowMs - expiryMs;
    // The WHERE repeats sessions_callback_due_idx's predicate, so only due callbacks are read.
    const rows: PgSessionRow[] = await sql`
      WITH orphan AS MATERIALIZED (
        SELECT s.namespace, s.name FROM sessions s
        WHERE s.callback_state = 'pending' AND s.finished_at IS NOT NULL AND s.owner IS NOT NULL AND s.owner <> ${owner}
          AND NOT EXISTS (SELECT 1 FROM replicas r WHERE r.id = s.owner AND r.heartbeat_at >= ${cutoff}::bigint)
        FOR UPDATE OF s SKIP LOCKED
      )
      UPDATE sessions s SET owner = ${owner}
      FROM orphan WHERE s.namespace = orphan.namespace AND s.name = orphan.name AND s.callback_state = 'pending'
      RETURNING s.*`;
    return rows.sort((a, b) => num(a.seq) - num(b.seq)).map(rowToSession);
  }

  async function update(namespace: string, name: string, values: SessionValues): Promise<void> {
    // One fixed statement for every set of columns: each column is written only when its flag is
    // set (an unchanged indexed column keeps the update HOT-eligible).
    const has = (k: keyof SessionValues) => values[k] !== undefined;
    if (!Object.keys(values).some((k) => has(k as keyof SessionValues))) return;
    const usage = values.usage === undefined || values.usage === null ? null : JSON.stringify(values.usage);
    await sql`
      UPDATE sessions SET
        phase = CASE WHEN ${has("phase")}::bool THEN ${values.phase ?? null}::text ELSE phase END,
        response = CASE WHEN ${has("response")}::bool THEN ${values.response ?? null}::text ELSE response END,
        error = CASE WHEN ${has("error")}::bool THEN ${values.error ?? null}::text ELSE error END,
        started_at = CASE WHEN ${has("startedAt")}::bool THEN ${values.startedAt ?? null}::text ELSE started_at END,
        finished_at = CASE WHEN ${has("finishedAt")}::bool THEN ${values.finishedAt ?? null}::text ELSE finished_at END,
        callback_state = CASE WHEN ${has("callbackState")}::bool THEN ${values.callbackState ?? null}::text ELSE callback_state END,
        usage = CASE WHEN ${has("usage")}::bool THEN ${usage}::text ELSE usage END
      WHERE namespace = ${namespace} AND name = ${name}`;
  }

  async function page(namespace: string | undefined, limit: number, before = Number.MAX_SAFE_INTEGER): Promise<{ session: Session; seq: number }[]> {
    // All namespaces: each one's newest from (namespace, seq), merged (a skip-scan over
    // namespaces), not a sort of the whole table, as ../sessions.ts does in SQLite.
    const rows: PgSessionRow[] =
      namespace !== undefined
        ? await sql`SELECT * FROM sessions WHERE namespace = ${namespace} AND seq < ${before}::bigint ORDER BY seq DESC LIMIT ${limit}::int`
        : await sql`
            WITH RECURSIVE ns AS (
              (SELECT namespace FROM sessions ORDER BY namespace LIMIT 1)
              UNION ALL
              SELECT nx.namespace FROM ns CROSS JOIN LATERAL (
                SELECT namespace FROM sessions WHERE namespace > ns.namespace ORDER BY namespace LIMIT 1
              ) nx
            )
            SELECT s.* FROM ns CROSS JOIN LATERAL (
              SELECT * FROM sessions WHERE namespace = ns.namespace AND seq < ${before}::bigint ORDER BY seq DESC LIMIT ${limit}::int
            ) s
            ORDER BY s.seq DESC LIMIT ${limit}::int`;
    return rows.map((r) => ({ session: rowToSession(r), seq: num(r.seq) }));
  }

  const subscriptions = new Set<{ unlisten(): Promise<void> }>();

  return {
    migrate: () => migratePg(sql),
    insertSession,
    insertSessions,

    async allocateNames(namespace, agent, n) {
      if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`allocateNames: n must be a positive integer (got ${n})`);
      // The upsert's row lock orders concurrent allocations: each gets the block after the last.
      const [r]: { last: string }[] = await sql`
        INSERT INTO session_names (namespace, agent, last) VALUES (${namespace}, ${agent}, ${n}::bigint)
        ON CONFLICT (namespace, agent) DO UPDATE SET last = session_names.last + excluded.last
        RETURNING last`;
      return num(r!.last) - n + 1;
    },

    async countPending() {
      const [r]: { n: string }[] = await sql`SELECT count(*) AS n FROM sessions WHERE phase = 'Pending'`;
      return num(r!.n);
    },
    async countPendingOf(namespace, agent) {
      const [r]: { n: string }[] = await sql`SELECT count(*) AS n FROM sessions WHERE phase = 'Pending' AND namespace = ${namespace} AND agent_definition = ${agent}`;
      return num(r!.n);
    },

    async get(namespace, name) {
      const [r]: PgSessionRow[] = await sql`SELECT * FROM sessions WHERE namespace = ${namespace} AND name = ${name}`;
      return r ? rowToSession(r) : undefined;
    },

    list: async (namespace, limit) => (await page(namespace, limit)).map((p) => p.session),
    page,

    async findDelivery(namespace, agent, deliveryId) {
      const [r]: { session: string }[] = await sql`
        SELECT session FROM webhook_deliveries WHERE namespace = ${namespace} AND agent = ${agent} AND delivery_id = ${deliveryId}`;
      return r?.session;
    },

    async appendEvents(events) {
      if (events.length === 0) return;
      await sql`
        INSERT INTO session_events (namespace, session, id, type, content, timestamp)
        SELECT * FROM unnest(${events.map((e) => e.namespace)}::text[], ${events.map((e) => e.session)}::text[], ${events.map((e) => e.event.id)}::int[],
                             ${events.map((e) => e.event.type)}::text[], ${events.map((e) => JSON.stringify(e.event.content))}::text[],
                             ${events.map((e) => e.event.timestamp)}::text[])`;
    },

    async events(namespace, session, opts = {}) {
      const after = opts.after ?? 0;
      // LIMIT NULL is no limit.
      const limit = opts.limit ?? null;
      const rows: PgEventRow[] =
        opts.type !== undefined
          ? await sql`
              SELECT id, type, content, timestamp FROM session_events
              WHERE namespace = ${namespace} AND session = ${session} AND id > ${after}::int AND type = ${opts.type}
              ORDER BY id LIMIT ${limit}::int`
          : await sql`
              SELECT id, type, content, timestamp FROM session_events
              WHERE namespace = ${namespace} AND session = ${session} AND id > ${after}::int
              ORDER BY id LIMIT ${limit}::int`;
      return rows.map(rowToEvent);
    },

    async lastEventId(namespace, session) {
      const [r]: { id: number }[] = await sql`SELECT coalesce(max(id), 0) AS id FROM session_events WHERE namespace = ${namespace} AND session = ${session}`;
      return r!.id;
    },

    claim,
    update,

    async finishIfPending(namespace, name, values) {
      const r = await sql`
        UPDATE sessions SET phase = ${values.phase}, error = ${values.error}::text, finished_at = ${values.finishedAt}
        WHERE namespace = ${namespace} AND name = ${name} AND phase = 'Pending'`;
      return r.count > 0;
    },

    async runningOf(owner) {
      const rows: PgSessionRow[] = await sql`SELECT * FROM sessions WHERE phase = 'Running' AND owner = ${owner} ORDER BY seq`;
      return rows.map(rowToSession);
    },

    async pendingCallbacks() {
      const rows: PgSessionRow[] = await sql`SELECT * FROM sessions WHERE callback_state = 'pending' AND finished_at IS NOT NULL ORDER BY seq`;
      return rows.map(rowToSession);
    },

    adoptCallbacks,
    async retentionCandidates(owner, cutoff, nowMs, expiryMs, limit) {
      const rows: { namespace: string; name: string; owner: string | null }[] = await sql`
        SELECT s.namespace, s.name, s.owner FROM sessions s
        WHERE s.finished_at IS NOT NULL AND s.finished_at < ${cutoff} AND s.phase IN ('Complete', 'Error', 'Cancelled')
          AND (s.callback_state IS NULL OR s.callback_state <> 'pending')
          AND (s.owner IS NULL OR s.owner = ${owner}
               OR NOT EXISTS (SELECT 1 FROM replicas r WHERE r.id = s.owner AND r.heartbeat_at >= ${nowMs - expiryMs}::bigint))
        ORDER BY s.finished_at LIMIT ${limit}`;
      return rows.map((r) => ({ namespace: r.namespace, name: r.name, mine: r.owner === owner }));
    },
    async removeSessions(keys, cutoff) {
      if (!keys.length) return 0;
      const namespaces = keys.map((k) => k.namespace);
      const names = keys.map((k) => k.name);
      return sql.begin(async (tx) => {
        // Events go with their session (ON DELETE CASCADE); deliveries naming it go too.
        const gone: { namespace: string; name: string }[] = await tx`
          DELETE FROM sessions s USING unnest(${namespaces}::text[], ${names}::text[]) AS k(namespace, name)
          WHERE s.namespace = k.namespace AND s.name = k.name
            AND s.finished_at IS NOT NULL AND s.finished_at < ${cutoff} AND s.phase IN ('Complete', 'Error', 'Cancelled')
            AND (s.callback_state IS NULL OR s.callback_state <> 'pending')
          RETURNING s.namespace, s.name`;
        if (gone.length)
          await tx`DELETE FROM webhook_deliveries d USING unnest(${gone.map((g) => g.namespace)}::text[], ${gone.map((g) => g.name)}::text[]) AS k(namespace, name)
            WHERE d.namespace = k.namespace AND d.session = k.name`;
        return gone.length;
      });
    },
    async ownerOf(namespace, name) {
      const [r] = await sql`SELECT owner FROM sessions WHERE namespace = ${namespace} AND name = ${name}`;
      return r ? (r.owner as string | null) : undefined;
    },
    async retire(owner) {
      await sql`DELETE FROM replicas WHERE id = ${owner}`;
    },
    async heartbeat(owner, nowMs, startedAt) {
      await sql`
        INSERT INTO replicas (id, heartbeat_at, started_at) VALUES (${owner}, ${nowMs}::bigint, ${startedAt})
        ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, started_at = excluded.started_at`;
    },

    reapLost,

    tokens: {
      async all() {
        const rows: PgTokenRow[] = await sql`SELECT id, namespace, name, hash, created_at FROM access_tokens ORDER BY created_at, id`;
        return rows.map(rowToToken);
      },
      async insert(row) {
        await sql`
          INSERT INTO access_tokens (id, namespace, name, hash, created_at)
          VALUES (${row.id}, ${row.namespace}::text, ${row.name}, ${row.hash}, ${row.createdAt})`;
      },
      async delete(namespace, id) {
        return (await sql`DELETE FROM access_tokens WHERE namespace = ${namespace} AND id = ${id}`).count > 0;
      },
      async deleteAdmin(id) {
        const r =
          id === undefined
            ? await sql`DELETE FROM access_tokens WHERE namespace IS NULL`
            : await sql`DELETE FROM access_tokens WHERE namespace IS NULL AND id = ${id}`;
        return r.count > 0;
      },
      async byHash(hash) {
        const [r]: PgTokenRow[] = await sql`SELECT id, namespace, name, hash, created_at FROM access_tokens WHERE hash = ${hash}`;
        return r ? rowToToken(r) : undefined;
      },
    },

    async notify(channel, payload) {
      const bytes = Buffer.byteLength(payload);
      if (bytes >= MAX_NOTIFY_BYTES) throw new RangeError(`notify ${channel}: the payload is ${bytes} bytes, Postgres takes fewer than ${MAX_NOTIFY_BYTES}`);
      await sql.notify(channel, payload);
    },

    async listen(channel, handler, onReconnect) {
      // Bun's client LISTENs on a connection of its own, reconnects with backoff and listens again
      // by itself; its third callback runs at the first LISTEN and after each reconnect, and only
      // the latter is news to the caller.
      let listens = 0;
      const sub = await sql.listen(channel, handler, () => {
        if (listens++ > 0) onReconnect?.();
      });
      subscriptions.add(sub);
      return async () => {
        if (!subscriptions.delete(sub)) return;
        await sub.unlisten();
      };
    },

    async close() {
      const subs = [...subscriptions];
      subscriptions.clear();
      await Promise.allSettled(subs.map((s) => s.unlisten()));
      await sql.close();
    },
  };
}
