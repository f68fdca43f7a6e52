/**
 * The object store on a Kubernetes cluster: Agents are the cluster's `agents.pai.io` custom
 * resources and webhook tokens its Secrets. Both are read from informers (list + watch, bookmarks,
 * a relist after 410 Gone), so the webhook path and the supervisor never wait on the API server,
 * and a rotation (the page's `kubectl delete secret pai-webhook-<agent>`) is seen as soon as the
 * watch event arrives.
 *
 * Writes follow the API's rules: the webhook Secret carries a controller owner reference to its
 * Agent (the cluster's garbage collector deletes it with the Agent); status goes through the status
 * subresource, with the resourceVersion it was computed from, and only when it differs.
 *
 * An Agent whose spec pai refuses (a rule the CRD's schema cannot express) keeps running the last
 * version pai accepted in this process; `sourceProblem` says why the new one was refused, and the
 * controller shows it in the status. One never accepted is not served.
 */
import { validateAgent, type Agent, type AgentStatus } from "../domain/agent";
import type { Secret } from "../domain/secret";
import { InvalidError } from "../domain/errors";
import { deepEqual } from "../lib/json";
import type { Logger } from "../lib/log";
import { KubeApiError, type KubeClient, type KubeObject } from "../kube/client";
import { createInformer, type Informer } from "../kube/informer";
import type { ObjectChange, ObjectStore, OwnedSecret } from "./types";

export const AGENT_API_VERSION = "pai.io/v1";

interface AgentEntry {
  /** The last version pai accepted (served), if any. */
  agent?: Agent;
  /** Why the newest version was refused. */
  problem?: string;
  /** The newest object as the API server has it (its resourceVersion is what status writes send). */
  raw: KubeObject;
}

const key = (namespace: string | undefined, name: string) => `${namespace ?? ""}/${name}`;

/** The controller owner reference to an Agent, if the object has one. */
function agentOwnerUid(o: KubeObject): string | null {
  const ref = o.metadata.ownerReferences?.find((r) => r.controller === true && r.kind === "Agent" && r.apiVersion.startsWith("pai.io/"));
  return ref?.uid ?? null;
}

export function secretFromObject(o: KubeObject): Secret {
  const data = (o.data ?? {}) as Record<string, string>;
  return {
    namespace: o.metadata.namespace ?? "",
    name: o.metadata.name,
    uid: o.metadata.uid ?? "",
    type: typeof o.type === "string" ? o.type : "Opaque",
    labels: o.metadata.labels ?? null,
    annotations: o.metadata.annotations ?? null,
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(String(v), "base64").toString("utf8")])),
    ownerUid: agentOwnerUid(o),
    createdAt: o.metadata.creationTimestamp ?? "",
  };
}

/** The Agent in an object, or why pai refuses it. */
export function agentFromObject(o: KubeObject): { agent: Agent } | { problem: string } {
  const { name, namespace, labels, annotations } = o.metadata;
  try {
    // Only what a manifest may say is checked: the server's own metadata is not the user's to get wrong.
    const manifest = { apiVersion: AGENT_API_VERSION, kind: "Agent", metadata: { name, namespace, labels, annotations }, ...(o.spec === undefined ? {} : { spec: o.spec }) };
    const input = validateAgent(manifest, namespace);
    return {
      agent: {
        apiVersion: AGENT_API_VERSION,
        kind: "Agent",
        metadata: {
          name: input.name,
          namespace: input.namespace,
          uid: o.metadata.uid ?? "",
          generation: o.metadata.generation ?? 1,
          resourceVersion: o.metadata.resourceVersion ?? "",
          creationTimestamp: o.metadata.creationTimestamp ?? "",
          ...(labels ? { labels } : {}),
          ...(annotations ? { annotations } : {}),
        },
        spec: input.spec,
        status: (o.status ?? {}) as AgentStatus,
      } as Agent,
    };
  } catch (err) {
    if (err instanceof InvalidError) return { problem: err.problems.map((p) => (p.field ? `${p.field}: ${p.message}` : p.message)).join("; ") };
    throw err;
  }
}

export interface KubernetesObjectsOptions {
  client: KubeClient;
  log: Logger;
  /** Watch only these namespaces (one informer per namespace and kind); default: the whole cluster. */
  namespaces?: string[];
  /** Passed to the informers (tests make them short). */
  watchTimeoutSeconds?: number;
}

export function createKubernetesObjects(opts: KubernetesObjectsOptions): ObjectStore & { stats(): { agents: number; secrets: number; statusWrites: number; secretWrites: number } } {
  const { client, log } = opts;
  const scopes = opts.namespaces?.length ? opts.namespaces : [undefined];
  const informerOf = (path: string) => createInformer<KubeObject>({ client, path, log, watchTimeoutSeconds: opts.watchTimeoutSeconds });
  const agentInformers: Informer<KubeObject>[] = scopes.map((ns) => informerOf(ns ? `/apis/pai.io/v1/namespaces/${ns}/agents` : "/apis/pai.io/v1/agents"));
  const secretInformers: Informer<KubeObject>[] = scopes.map((ns) => informerOf(ns ? `/api/v1/namespaces/${ns}/secrets` : "/api/v1/secrets"));

  const agents = new Map<string, AgentEntry>();
  const secrets = new Map<string, { secret: Secret; raw: KubeObject }>();
  const listeners = { agent: new Set<(c: ObjectChange) => void>(), secret: new Set<(c: ObjectChange) => void>() };
  let statusWrites = 0;
  let secretWrites = 0;

  function announce(kind: ObjectChange["kind"], o: KubeObject) {
    const change = { kind, namespace: o.metadata.namespace ?? "", name: o.metadata.name };
    for (const l of listeners[kind]) {
      try {
        l(change);
      } catch (err) {
        log.error("an object listener failed", { error: (err as Error).message });
      }
    }
  }

  const unsubscribe: (() => void)[] = [];
  for (const inf of agentInformers)
    unsubscribe.push(
      inf.on((type, o) => {
        const k = key(o.metadata.namespace, o.metadata.name);
        if (type === "DELETED") agents.delete(k);
        else {
          const previous = agents.get(k);
          const parsed = agentFromObject(o);
          // A new uid is a new agent: the old one's accepted version is not its to keep.
          const kept = previous?.agent && previous.agent.metadata.uid === o.metadata.uid ? previous.agent : undefined;
          if ("agent" in parsed) agents.set(k, { agent: parsed.agent, raw: o });
          else {
            if (previous?.problem !== parsed.problem)
              log.warn(`agent ${k} refused${kept ? ` (still running generation ${kept.metadata.generation})` : ""}: ${parsed.problem}`);
            // The last accepted spec keeps running, with the newest status and resourceVersion.
            agents.set(k, { agent: kept && { ...kept, status: (o.status ?? {}) as AgentStatus }, problem: parsed.problem, raw: o });
          }
        }
        announce("agent", o);
      }),
    );
  for (const inf of secretInformers)
    unsubscribe.push(
      inf.on((type, o) => {
        const k = key(o.metadata.namespace, o.metadata.name);
        if (type === "DELETED") secrets.delete(k);
        else secrets.set(k, { secret: secretFromObject(o), raw: o });
        announce("secret", o);
      }),
    );

  /** PUT of the status subresource from `raw` (its resourceVersion is the precondition). */
  async function putStatus(raw: KubeObject, status: AgentStatus) {
    const { namespace, name } = raw.metadata;
    await client.request("PUT", `/apis/pai.io/v1/namespaces/${namespace}/agents/${name}/status`, { body: { ...raw, status } });
    statusWrites++;
  }

  return {
    mode: "kubernetes",
    findAgent: (namespace, name) => agents.get(key(namespace, name))?.agent,
    listAgents: () => [...agents.values()].flatMap((e) => (e.agent ? [e.agent] : [])),
    findSecret: (namespace, name) => secrets.get(key(namespace, name))?.secret,
    sourceProblem: (namespace, name) => agents.get(key(namespace, name))?.problem,

    async putOwnedSecret(owner, s: OwnedSecret) {
      const namespace = owner.metadata.namespace;
      const body = {
        apiVersion: "v1",
        kind: "Secret",
        metadata: {
          name: s.name,
          namespace,
          labels: s.labels,
          // No blockOwnerDeletion: setting it needs more rights on Agents than this controller asks for.
          ownerReferences: [{ apiVersion: AGENT_API_VERSION, kind: "Agent", name: owner.metadata.name, uid: owner.metadata.uid, controller: true }],
        },
        type: s.type,
        data: Object.fromEntries(Object.entries(s.data).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
      };
      const path = `/api/v1/namespaces/${namespace}/secrets`;
      const cached = secrets.get(key(namespace, s.name))?.raw;
      try {
        if (cached) await client.request("PUT", `${path}/${s.name}`, { body: { ...body, metadata: { ...body.metadata, resourceVersion: cached.metadata.resourceVersion } } });
        else await client.request("POST", path, { body });
      } catch (err) {
        // Made (or changed) by someone else since the cache saw it: replace what is there now.
        if (!(err instanceof KubeApiError) || err.status !== 409) throw err;
        const current = await client.request<KubeObject>("GET", `${path}/${s.name}`);
        await client.request("PUT", `${path}/${s.name}`, { body: { ...body, metadata: { ...body.metadata, resourceVersion: current.metadata.resourceVersion } } });
      }
      secretWrites++;
    },

    async deleteSecret(namespace, name) {
      try {
        await client.request("DELETE", `/api/v1/namespaces/${namespace}/secrets/${name}`);
        secretWrites++;
      } catch (err) {
        if (!(err instanceof KubeApiError) || err.status !== 404) throw err;
      }
    },

    async setStatus(agent, status) {
      const entry = agents.get(key(agent.metadata.namespace, agent.metadata.name));
      if (!entry || entry.raw.metadata.uid !== agent.metadata.uid) return false;
      if (deepEqual(entry.raw.status ?? {}, status)) return false;
      try {
        await putStatus(entry.raw, status);
      } catch (err) {
        // Changed since the cache saw it: once more on the newest version, unless it already says this.
        if (!(err instanceof KubeApiError) || err.status !== 409) throw err;
        const { namespace, name } = agent.metadata;
        let current: KubeObject;
        try {
          current = await client.request<KubeObject>("GET", `/apis/pai.io/v1/namespaces/${namespace}/agents/${name}`);
        } catch (e) {
          // Deleted meanwhile: there is no status to write.
          if (e instanceof KubeApiError && e.status === 404) return false;
          throw e;
        }
        if (current.metadata.uid !== agent.metadata.uid || deepEqual(current.status ?? {}, status)) return false;
        await putStatus(current, status);
      }
      return true;
    },

    onChange(kind, listener) {
      listeners[kind].add(listener);
      return () => listeners[kind].delete(listener);
    },

    async start() {
      for (const inf of [...agentInformers, ...secretInformers]) inf.start();
      await Promise.all([...agentInformers, ...secretInformers].map((inf) => inf.synced()));
    },

    stop() {
      for (const off of unsubscribe) off();
      for (const inf of [...agentInformers, ...secretInformers]) inf.stop();
    },

    stats: () => ({ agents: agents.size, secrets: secrets.size, statusWrites, secretWrites }),
  };
}
