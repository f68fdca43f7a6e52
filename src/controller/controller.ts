/**
 * The controller loop: a de-duplicated work queue of agent keys fed by the object store's changes
 * and a periodic resync. Each item: get the agent (gone → clean up), plan, apply the secret action,
 * write status only when it changed. Running it twice does nothing the second time. Items are
 * handled one at a time (writes may be calls to a cluster's API server); one that fails is retried
 * a second later.
 */
import { webhookSecretName } from "../domain/names";
import type { Logger } from "../lib/log";
import { randomToken } from "../lib/crypto";
import { newSigningSecret } from "../lib/standard-webhooks";
import { AGENT_LABEL, WEBHOOK_SECRET_TYPE } from "../service/secrets";
import type { ObjectChange, ObjectStore } from "../objects/types";
import { plan } from "./reconcile";

const WEBHOOK_PREFIX = webhookSecretName("");

export interface ControllerDeps {
  objects: ObjectStore;
  log: Logger;
  publicUrl: string;
  resyncMs?: number;
  newToken?: () => string;
}

export function createController(deps: ControllerDeps) {
  const { objects, log } = deps;
  const queue = new Set<string>();
  let running = false;
  let stopped = false;
  let idleWaiters: (() => void)[] = [];
  let resync: ReturnType<typeof setInterval> | undefined;

  const key = (ns: string, name: string) => `${ns}/${name}`;

  function enqueue(namespace: string, name: string) {
    if (stopped) return;
    queue.add(key(namespace, name));
    if (!running) {
      running = true;
      setImmediate(drain);
    }
  }

  async function drain() {
    while (queue.size && !stopped) {
      const k = queue.values().next().value!;
      queue.delete(k);
      const [ns, name] = k.split("/") as [string, string];
      try {
        await reconcile(ns, name);
      } catch (err) {
        log.error(`failed to reconcile agent ${k}`, { error: (err as Error).message });
        setTimeout(() => enqueue(ns, name), 1000).unref();
      }
    }
    running = false;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  }

  async function reconcile(namespace: string, name: string) {
    const agent = objects.findAgent(namespace, name);
    const secretName = webhookSecretName(name);
    const secret = objects.findSecret(namespace, secretName);
    if (!agent) {
      // The agent is gone: its webhook secret goes with it (in a cluster the garbage collector
      // would, through the owner reference; deleting it here as well is harmless).
      if (secret && secret.type === WEBHOOK_SECRET_TYPE && secret.labels?.[AGENT_LABEL] === name) await objects.deleteSecret(namespace, secretName);
      return;
    }
    const p = plan({
      agent,
      secret,
      publicUrl: deps.publicUrl,
      now: new Date().toISOString(),
      newToken: deps.newToken ?? randomToken,
      problem: objects.sourceProblem(namespace, name),
    });
    if (p.secret.kind === "create" || p.secret.kind === "addCallbackSecret") {
      await objects.putOwnedSecret(agent, {
        name: secretName,
        type: WEBHOOK_SECRET_TYPE,
        // The callback secret signs what Pai POSTs to a caller's callbackUrl (Standard Webhooks).
        data: { token: p.token!, callbackSecret: newSigningSecret() },
        labels: { [AGENT_LABEL]: name, "app.kubernetes.io/managed-by": "pai" },
      });
      if (p.secret.kind === "create") log.info(secret ? "rotated webhook token" : "created webhook token", { agent: `${namespace}/${name}` });
    } else if (p.secret.kind === "delete") {
      await objects.deleteSecret(namespace, secretName);
      log.info("removed webhook token", { agent: `${namespace}/${name}` });
    }
    await objects.setStatus(agent, p.status);
  }

  const onAgent = (c: ObjectChange) => enqueue(c.namespace, c.name);
  const onSecret = (c: ObjectChange) => {
    if (c.name.startsWith(WEBHOOK_PREFIX)) enqueue(c.namespace, c.name.slice(WEBHOOK_PREFIX.length));
  };
  let unsubscribe: (() => void)[] = [];

  function enqueueAll() {
    for (const agent of objects.listAgents()) enqueue(agent.metadata.namespace, agent.metadata.name);
  }

  return {
    start() {
      unsubscribe = [objects.onChange("agent", onAgent), objects.onChange("secret", onSecret)];
      enqueueAll();
      resync = setInterval(enqueueAll, deps.resyncMs ?? 30_000);
      resync.unref();
    },
    stop() {
      stopped = true;
      for (const off of unsubscribe) off();
      clearInterval(resync);
    },
    /** Resolves when the queue is empty. */
    idle(): Promise<void> {
      if (!running && queue.size === 0) return Promise.resolve();
      return new Promise((r) => idleWaiters.push(r));
    },
    enqueue,
  };
}

export type Controller = ReturnType<typeof createController>;
