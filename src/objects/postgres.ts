/**
 * Agents and Secrets in a Postgres database shared by replicas (`pai serve --database …` without
 * --kubernetes). Each replica keeps both in memory, so the webhook path, the supervisor and the API's
 * reads never wait on the database; a write goes to the database in a transaction (its
 * resourceVersion is the next revision of the store's revision log, as with SQLite), then into this
 * replica's cache, then to the other replicas with NOTIFY, which read the changed row again. A
 * rotation on one replica (deleting pai-webhook-<agent>) is therefore refused by every replica as
 * soon as the notification arrives, and the caches are compared with the database every 30 s and
 * after a lost LISTEN connection, so a missed notification is not missed for long.
 *
 * The rules of a write are those of ../service/agents.ts: `generation` moves only when the spec
 * changes, an unchanged apply writes nothing, deleting an agent deletes the secrets it owns.
 */
import type { SQL } from "bun";
import { NotFoundError } from "../domain/errors";
import type { AgentInput, AgentStatus } from "../domain/agent";
import { deepEqual } from "../lib/json";
import { uuid } from "../lib/crypto";
import type { Logger } from "../lib/log";
import type { AgentService, ApplyResult } from "../service/agents";
import { OPAQUE_SECRET_TYPE, type SecretInput, type SecretService } from "../service/secrets";
import { publishChange, type Change, type Topics } from "../service/topics";
import { rowToAgent, type StoredAgent } from "../store/agents";
import type { SecretRow } from "../store/secrets";
import type { PgRunRepo } from "../store/pg/run-repo";

export const OBJECTS_CHANNEL = "pai_objects";
const RESYNC_MS = 30_000;

type Row = Record<string, unknown>;
const key = (namespace: string, name: string) => `${namespace}/${name}`;
const parsed = <T>(v: unknown): T | null => (v === null || v === undefined ? null : (JSON.parse(String(v)) as T));
const text = (v: unknown): string | null => (v === null || v === undefined ? null : JSON.stringify(v));

function agentOf(r: Row): StoredAgent {
  return rowToAgent({
    namespace: String(r.namespace),
    name: String(r.name),
    uid: String(r.uid),
    generation: Number(r.generation),
    resourceVersion: Number(r.resource_version),
    labels: parsed<Record<string, string>>(r.labels),
    annotations: parsed<Record<string, string>>(r.annotations),
    spec: parsed(r.spec),
    status: parsed(r.status) ?? {},
    source: String(r.source),
    createdAt: String(r.created_at),
    updatedAt: String(r.updated_at),
  });
}

function secretOf(r: Row): SecretRow {
  return {
    namespace: String(r.namespace),
    name: String(r.name),
    uid: String(r.uid),
    type: String(r.type),
    resourceVersion: Number(r.resource_version),
    labels: parsed<Record<string, string>>(r.labels),
    annotations: parsed<Record<string, string>>(r.annotations),
    data: parsed<Record<string, string>>(r.data) ?? {},
    ownerUid: r.owner_uid === null || r.owner_uid === undefined ? null : String(r.owner_uid),
    createdAt: String(r.created_at),
  };
}

/** Postgres's unique_violation: two replicas created the same object at once. */
const isUniqueViolation = (e: unknown) => (e as { errno?: string })?.errno === "23505";

export interface PostgresObjects {
  agents: AgentService;
  secrets: SecretService;
  /** The namespaces agents and secrets live in, with the earliest creation time in each (from the caches). */
  namespaces: { all(): Map<string, string>; createdAt(namespace: string): string | undefined };
  /** Loads both caches and starts following other replicas' writes. */
  open(): Promise<void>;
  close(): Promise<void>;
}

export function createPostgresObjects(deps: { sql: SQL; repo: PgRunRepo; topics: Pick<Topics, "changes">; log: Logger; replicaId: string; now?: () => Date }): PostgresObjects {
  const { sql, repo, topics, log, replicaId } = deps;
  const now = () => (deps.now?.() ?? new Date()).toISOString();
  const agents = new Map<string, StoredAgent>();
  const secrets = new Map<string, SecretRow>();
  const problems = new Map<string, string>();
  let timer: ReturnType<typeof setInterval> | undefined;
  let unlisten: (() => Promise<void>) | undefined;

  /**
   * Object writes take one lock, so revisions commit in the order of their numbers and a watch
   * that follows the log (./pg-revisions.ts) never passes one that commits later. They are rare
   * (an apply, a status, a secret), so the lock costs nothing on the paths that matter.
   */
  const serialize = (tx: SQL) => tx`SELECT pg_advisory_xact_lock(hashtext('pai-objects'))`;

  /**
   * Records one write under the next revision of the store-wide log: `write(rev)` makes it (with
   * `rev` as the object's resourceVersion) and returns the object as it now is, which the log
   * keeps for watches to replay.
   */
  async function logged(tx: SQL, kind: "Agent" | "Secret", namespace: string, name: string, type: string, write: (rev: number) => Promise<unknown>): Promise<number> {
    const [r] = await tx`INSERT INTO revisions (kind, namespace, name, type) VALUES (${kind}, ${namespace}, ${name}, ${type}) RETURNING rev`;
    const rev = Number(r.rev);
    const object = await write(rev);
    await tx`UPDATE revisions SET object = ${text(object)} WHERE rev = ${rev}`;
    return rev;
  }
  const agentAt = async (tx: SQL, namespace: string, name: string) => agentOf((await tx`SELECT * FROM agents WHERE namespace = ${namespace} AND name = ${name}`)[0]).agent;
  const secretAt = async (tx: SQL, namespace: string, name: string) => secretOf((await tx`SELECT * FROM secrets WHERE namespace = ${namespace} AND name = ${name}`)[0]);

  /** Reads one object again into the cache and tells this replica's listeners (and, for our own writes, the others). */
  async function refresh(kind: Change["kind"], namespace: string, name: string, ours: boolean) {
    const k = key(namespace, name);
    if (kind === "secret") {
      const [r] = await sql`SELECT * FROM secrets WHERE namespace = ${namespace} AND name = ${name}`;
      if (r) secrets.set(k, secretOf(r));
      else secrets.delete(k);
    } else {
      const [r] = await sql`SELECT * FROM agents WHERE namespace = ${namespace} AND name = ${name}`;
      if (r) agents.set(k, agentOf(r));
      else {
        agents.delete(k);
        problems.delete(k);
      }
    }
    publishChange(topics, kind, namespace, name);
    if (ours)
      await repo.notify(OBJECTS_CHANNEL, JSON.stringify({ k: kind, ns: namespace, n: name, r: replicaId })).catch((err) =>
        log.warn("NOTIFY failed (other replicas see the change at their next resync)", { error: (err as Error).message }),
      );
  }

  /** Both tables into the caches; what differs from before is announced. */
  async function resync() {
    const [agentRows, secretRows] = await Promise.all([sql`SELECT * FROM agents`, sql`SELECT * FROM secrets`]);
    const nextAgents = new Map<string, StoredAgent>(agentRows.map((r: Row) => [key(String(r.namespace), String(r.name)), agentOf(r)]));
    const nextSecrets = new Map<string, SecretRow>(secretRows.map((r: Row) => [key(String(r.namespace), String(r.name)), secretOf(r)]));
    const changed: [Change["kind"], string][] = [];
    for (const [k, a] of nextAgents) if (agents.get(k)?.agent.metadata.resourceVersion !== a.agent.metadata.resourceVersion) changed.push(["agent", k]);
    for (const k of agents.keys()) if (!nextAgents.has(k)) changed.push(["agent", k]);
    for (const [k, s] of nextSecrets) if (secrets.get(k)?.resourceVersion !== s.resourceVersion) changed.push(["secret", k]);
    for (const k of secrets.keys()) if (!nextSecrets.has(k)) changed.push(["secret", k]);
    agents.clear();
    for (const [k, a] of nextAgents) agents.set(k, a);
    secrets.clear();
    for (const [k, s] of nextSecrets) secrets.set(k, s);
    for (const [kind, k] of changed) {
      const i = k.indexOf("/");
      publishChange(topics, kind, k.slice(0, i), k.slice(i + 1));
    }
  }
  const resyncQuietly = () => void resync().catch((err) => log.warn("failed to read agents and secrets again", { error: (err as Error).message }));

  function getAgent(namespace: string, name: string): StoredAgent {
    const found = agents.get(key(namespace, name));
    if (!found) throw new NotFoundError(`agent "${name}" not found in namespace "${namespace}"`);
    return found;
  }

  async function apply(input: AgentInput, source: string): Promise<ApplyResult> {
    const { namespace: ns, name } = input;
    for (let attempt = 0; ; attempt++) {
      let result: { created: boolean; changed: boolean };
      try {
        result = await sql.begin(async (tx) => {
          await serialize(tx);
          const [row] = await tx`SELECT * FROM agents WHERE namespace = ${ns} AND name = ${name} FOR UPDATE`;
          const ts = now();
          if (!row) {
            await logged(tx, "Agent", ns, name, "ADDED", async (rev) => {
              await tx`INSERT INTO agents (namespace, name, uid, generation, resource_version, labels, annotations, spec, status, source, created_at, updated_at)
                VALUES (${ns}, ${name}, ${uuid()}, 1, ${rev}, ${text(input.labels ?? null)}, ${text(input.annotations ?? null)}, ${text(input.spec)}, '{}', ${source}, ${ts}, ${ts})`;
              return agentAt(tx, ns, name);
            });
            return { created: true, changed: true };
          }
          const { agent } = agentOf(row);
          const specChanged = !deepEqual(agent.spec, input.spec);
          const metaChanged =
            !deepEqual(agent.metadata.labels ?? null, input.labels ?? null) || !deepEqual(agent.metadata.annotations ?? null, input.annotations ?? null) || String(row.source) !== source;
          if (!specChanged && !metaChanged) return { created: false, changed: false };
          await logged(tx, "Agent", ns, name, "MODIFIED", async (rev) => {
            await tx`UPDATE agents SET spec = ${text(input.spec)}, labels = ${text(input.labels ?? null)}, annotations = ${text(input.annotations ?? null)}, source = ${source},
              updated_at = ${ts}, generation = generation + ${specChanged ? 1 : 0}, resource_version = ${rev} WHERE namespace = ${ns} AND name = ${name}`;
            return agentAt(tx, ns, name);
          });
          return { created: false, changed: true };
        });
      } catch (err) {
        // Created by another replica between our read and our insert: apply again, as an update.
        if (isUniqueViolation(err) && attempt < 2) continue;
        throw err;
      }
      if (result.changed) await refresh("agent", ns, name, true);
      if (source === "api") problems.delete(key(ns, name));
      return { ...getAgent(ns, name), ...result };
    }
  }

  async function remove(namespace: string, name: string): Promise<StoredAgent> {
    const existing = getAgent(namespace, name);
    const owned = await sql.begin(async (tx) => {
      await serialize(tx);
      const [row] = await tx`SELECT * FROM agents WHERE namespace = ${namespace} AND name = ${name} FOR UPDATE`;
      if (!row) return undefined;
      const gone: Row[] = await tx`DELETE FROM secrets WHERE owner_uid = ${row.uid} RETURNING *`;
      // A deleted secret's values do not stay behind in the log.
      for (const g of gone) await logged(tx, "Secret", String(g.namespace), String(g.name), "DELETED", async (rev) => ({ ...secretOf(g), data: {}, resourceVersion: rev }));
      await logged(tx, "Agent", namespace, name, "DELETED", async (rev) => {
        await tx`DELETE FROM agents WHERE namespace = ${namespace} AND name = ${name}`;
        return agentOf({ ...row, resource_version: rev }).agent;
      });
      return gone;
    });
    if (!owned) {
      // Deleted by another replica meanwhile.
      await refresh("agent", namespace, name, false);
      throw new NotFoundError(`agent "${name}" not found in namespace "${namespace}"`);
    }
    await refresh("agent", namespace, name, true);
    for (const s of owned) await refresh("secret", String(s.namespace), String(s.name), true);
    return existing;
  }

  async function setStatus(namespace: string, name: string, status: AgentStatus): Promise<boolean> {
    const cached = agents.get(key(namespace, name));
    if (!cached || deepEqual(cached.agent.status, status)) return false;
    const wrote = await sql.begin(async (tx) => {
      await serialize(tx);
      const [row] = await tx`SELECT status FROM agents WHERE namespace = ${namespace} AND name = ${name} FOR UPDATE`;
      if (!row || deepEqual(parsed(row.status), status)) return false;
      await logged(tx, "Agent", namespace, name, "MODIFIED", async (rev) => {
        await tx`UPDATE agents SET status = ${text(status)}, resource_version = ${rev} WHERE namespace = ${namespace} AND name = ${name}`;
        return agentAt(tx, namespace, name);
      });
      return true;
    });
    await refresh(wrote ? "agentStatus" : "agent", namespace, name, wrote);
    return wrote;
  }

  async function put(input: SecretInput): Promise<{ secret: SecretRow; created: boolean }> {
    const { namespace, name } = input;
    const created = await sql.begin(async (tx) => {
      await serialize(tx);
      const [existing] = await tx`SELECT uid, created_at FROM secrets WHERE namespace = ${namespace} AND name = ${name} FOR UPDATE`;
      await logged(tx, "Secret", namespace, name, existing ? "MODIFIED" : "ADDED", async (rev) => {
        await tx`INSERT INTO secrets (namespace, name, uid, type, resource_version, labels, annotations, data, owner_uid, created_at)
          VALUES (${namespace}, ${name}, ${existing?.uid ?? uuid()}, ${input.type ?? OPAQUE_SECRET_TYPE}, ${rev}, ${text(input.labels ?? null)}, ${text(input.annotations ?? null)},
                  ${text(input.data)}, ${input.ownerUid ?? null}, ${existing?.created_at ?? now()})
          ON CONFLICT (namespace, name) DO UPDATE SET uid = EXCLUDED.uid, type = EXCLUDED.type, resource_version = EXCLUDED.resource_version, labels = EXCLUDED.labels,
            annotations = EXCLUDED.annotations, data = EXCLUDED.data, owner_uid = EXCLUDED.owner_uid, created_at = EXCLUDED.created_at`;
        return secretAt(tx, namespace, name);
      });
      return !existing;
    });
    await refresh("secret", namespace, name, true);
    return { secret: secrets.get(key(namespace, name))!, created };
  }

  async function removeSecret(namespace: string, name: string): Promise<SecretRow> {
    const found = secrets.get(key(namespace, name));
    const gone = await sql.begin(async (tx) => {
      await serialize(tx);
      const rows: Row[] = await tx`DELETE FROM secrets WHERE namespace = ${namespace} AND name = ${name} RETURNING *`;
      if (rows.length) await logged(tx, "Secret", namespace, name, "DELETED", async (rev) => ({ ...secretOf(rows[0]!), data: {}, resourceVersion: rev }));
      return rows[0];
    });
    await refresh("secret", namespace, name, !!gone);
    if (!gone) throw new NotFoundError(`secret "${name}" not found in namespace "${namespace}"`);
    return found ?? secretOf(gone);
  }

  const sorted = <T>(items: T[], nsName: (t: T) => [string, string]) =>
    items.sort((a, b) => {
      const [an, am] = nsName(a);
      const [bn, bm] = nsName(b);
      return an.localeCompare(bn) || am.localeCompare(bm);
    });

  function namespaceTimes(): Map<string, string> {
    const out = new Map<string, string>();
    const add = (ns: string, at: string) => {
      const was = out.get(ns);
      if (was === undefined || at < was) out.set(ns, at);
    };
    for (const a of agents.values()) add(a.agent.metadata.namespace, a.agent.metadata.creationTimestamp ?? "");
    for (const x of secrets.values()) add(x.namespace, x.createdAt);
    return out;
  }

  return {
    namespaces: { all: namespaceTimes, createdAt: (ns) => namespaceTimes().get(ns) },
    agents: {
      get: getAgent,
      find: (namespace, name) => agents.get(key(namespace, name)),
      list: (namespace) => sorted([...agents.values()].filter((a) => namespace === undefined || a.agent.metadata.namespace === namespace), (a) => [a.agent.metadata.namespace, a.agent.metadata.name]),
      listBySource: (source, prefix = false) => [...agents.values()].filter((a) => (prefix ? a.source.startsWith(source) : a.source === source)),
      sourceProblem: (namespace, name) => problems.get(key(namespace, name)),
      setSourceProblem(namespace, name, problem) {
        const k = key(namespace, name);
        if ((problems.get(k) ?? null) === problem) return;
        if (problem === null) problems.delete(k);
        else problems.set(k, problem);
        if (agents.has(k)) publishChange(topics, "agent", namespace, name);
      },
      apply,
      remove,
      setStatus,
    },
    secrets: {
      get(namespace, name) {
        const s = secrets.get(key(namespace, name));
        if (!s) throw new NotFoundError(`secret "${name}" not found in namespace "${namespace}"`);
        return s;
      },
      find: (namespace, name) => secrets.get(key(namespace, name)),
      list: (namespace) => sorted([...secrets.values()].filter((s) => namespace === undefined || s.namespace === namespace), (s) => [s.namespace, s.name]),
      put,
      remove: removeSecret,
    },
    async open() {
      await resync();
      unlisten = await repo.listen(
        OBJECTS_CHANNEL,
        (payload) => {
          let m: { k?: Change["kind"]; ns?: string; n?: string; r?: string };
          try {
            m = JSON.parse(payload);
          } catch {
            return;
          }
          if (m.r === replicaId || !m.k || !m.ns || !m.n) return;
          void refresh(m.k, m.ns, m.n, false).catch((err) => log.warn("failed to read a change of another replica", { error: (err as Error).message }));
        },
        resyncQuietly,
      );
      timer = setInterval(resyncQuietly, RESYNC_MS);
      timer.unref?.();
    },
    async close() {
      clearInterval(timer);
      await unlisten?.().catch(() => {});
    },
  };
}
