/**
 * Agent use cases: apply (create or update, bumping `generation` only when the spec changes),
 * get, list, delete, and the controller's status write. Every write publishes on the changes topic after it committed.
 */
import type { Store } from "../store";
import type { StoredAgent } from "../store/agents";
import type { AgentInput, AgentStatus } from "../domain/agent";
import { NotFoundError } from "../domain/errors";
import { deepEqual } from "../lib/json";
import { uuid } from "../lib/crypto";
import { createReadCache } from "../lib/read-cache";
import { publishChange, type Topics } from "./topics";

export type ApplyResult = StoredAgent & { created: boolean; changed: boolean };

export function createAgentService(deps: { store: Store; topics: Pick<Topics, "changes">; now?: () => Date }) {
  const { store, topics } = deps;
  const now = () => (deps.now?.() ?? new Date()).toISOString();
  // Every write below drops its entry before telling anyone, so readers never see a stale agent.
  const cache = createReadCache((ns, name) => store.agents.get(ns, name));

  function get(namespace: string, name: string): StoredAgent {
    const found = cache.get(namespace, name);
    if (!found) throw new NotFoundError(`agent "${name}" not found in namespace "${namespace}"`);
    return found;
  }

  /** Creates or updates an agent. `source` is `api` or `file:<path>`. */
  function apply(input: AgentInput, source: string): ApplyResult {
    const result = store.tx((): { created: boolean; changed: boolean } => {
      const existing = store.agents.get(input.namespace, input.name);
      const ts = now();
      if (!existing) {
        store.agents.insert({
          namespace: input.namespace,
          name: input.name,
          uid: uuid(),
          generation: 1,
          resourceVersion: 1,
          labels: input.labels ?? null,
          annotations: input.annotations ?? null,
          spec: input.spec,
          status: {},
          source,
          createdAt: ts,
          updatedAt: ts,
        });
        return { created: true, changed: true };
      }
      const { agent } = existing;
      const specChanged = !deepEqual(agent.spec, input.spec);
      const metaChanged =
        !deepEqual(agent.metadata.labels ?? null, input.labels ?? null) ||
        !deepEqual(agent.metadata.annotations ?? null, input.annotations ?? null) ||
        existing.source !== source;
      if (!specChanged && !metaChanged) return { created: false, changed: false };
      store.agents.update(input.namespace, input.name, {
        spec: input.spec,
        labels: input.labels ?? null,
        annotations: input.annotations ?? null,
        source,
        updatedAt: ts,
        ...(specChanged ? { generation: agent.metadata.generation + 1 } : {}),
      });
      return { created: false, changed: specChanged || metaChanged };
    });
    cache.drop(input.namespace, input.name);
    if (result.changed) publishChange(topics, "agent", input.namespace, input.name);
    // An apply through the API supersedes a refused file edit.
    if (source === "api") setSourceProblem(input.namespace, input.name, null);
    return { ...get(input.namespace, input.name), ...result };
  }

  /** Deletes the agent and the secrets it owns. */
  function remove(namespace: string, name: string): StoredAgent {
    const existing = get(namespace, name);
    const owned = store.tx(() => {
      const owned = store.secrets.listOwnedBy(existing.agent.metadata.uid);
      for (const s of owned) store.secrets.delete(s.namespace, s.name);
      store.agents.delete(namespace, name);
      return owned;
    });
    cache.drop(namespace, name);
    problems.delete(`${namespace}/${name}`);
    publishChange(topics, "agent", namespace, name);
    for (const s of owned) publishChange(topics, "secret", s.namespace, s.name);
    return existing;
  }

  /** Writes status if it differs from what is stored; returns whether it wrote. */
  function setStatus(namespace: string, name: string, status: AgentStatus): boolean {
    const existing = store.agents.get(namespace, name);
    if (!existing || deepEqual(existing.agent.status, status)) return false;
    store.agents.update(namespace, name, { status });
    cache.drop(namespace, name);
    publishChange(topics, "agentStatus", namespace, name);
    return true;
  }

  /** Why the latest manifest of an agent was refused, by namespace/name; kept in memory (sources re-check at start). */
  const problems = new Map<string, string>();

  /** Records (or clears, with null) why the agent's latest manifest was refused; the controller shows it. */
  function setSourceProblem(namespace: string, name: string, problem: string | null) {
    const k = `${namespace}/${name}`;
    if ((problems.get(k) ?? null) === problem) return;
    if (problem === null) problems.delete(k);
    else problems.set(k, problem);
    if (store.agents.get(namespace, name)) publishChange(topics, "agent", namespace, name);
  }

  return {
    get,
    setSourceProblem,
    sourceProblem: (namespace: string, name: string) => problems.get(`${namespace}/${name}`),
    find: (namespace: string, name: string) => cache.get(namespace, name),
    list: (namespace?: string) => store.agents.list(namespace),
    listBySource: (source: string, prefix = false) => store.agents.listBySource(source, prefix),
    apply,
    remove,
    setStatus,
  };
}

/** The agent service of this process's own store (every call synchronous). */
export type LocalAgentService = ReturnType<typeof createAgentService>;

type MaybePromise<T> = T | Promise<T>;

/**
 * Agents as the API, the controller's object store and the metrics use them: in this process's
 * store, in a database shared by replicas (../objects/postgres.ts), or read from a cluster
 * (../objects/views.ts). Reads are synchronous everywhere (a cache where the store is remote);
 * writes may be promises.
 */
export interface AgentService {
  get(namespace: string, name: string): StoredAgent;
  find(namespace: string, name: string): StoredAgent | undefined;
  list(namespace?: string): StoredAgent[];
  listBySource(source: string, prefix?: boolean): StoredAgent[];
  sourceProblem(namespace: string, name: string): string | undefined;
  setSourceProblem(namespace: string, name: string, problem: string | null): void;
  apply(input: AgentInput, source: string): MaybePromise<ApplyResult>;
  remove(namespace: string, name: string): MaybePromise<StoredAgent>;
  setStatus(namespace: string, name: string, status: AgentStatus): MaybePromise<boolean>;
}
