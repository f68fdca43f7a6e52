/** Secret use cases. Deleting a controller-managed secret is how a user rotates a webhook token. */
import type { Store } from "../store";
import type { SecretRow } from "../store/secrets";
import { NotFoundError } from "../domain/errors";
import { uuid } from "../lib/crypto";
import { createReadCache } from "../lib/read-cache";
import { publishChange, type Topics } from "./topics";

export const WEBHOOK_SECRET_TYPE = "pai.io/webhook-token";
export const OPAQUE_SECRET_TYPE = "Opaque";
export const AGENT_LABEL = "pai.io/agent";

export function createSecretService(deps: { store: Store; topics: Pick<Topics, "changes"> }) {
  const { store, topics } = deps;
  const cache = createReadCache((ns, name) => store.secrets.get(ns, name));
  // Deleting an agent deletes the secrets it owns in the same transaction, and publishes that too.
  topics.changes.subscribeKey("secret", (c) => cache.drop(c.namespace, c.name));

  function get(namespace: string, name: string): SecretRow {
    const s = cache.get(namespace, name);
    if (!s) throw new NotFoundError(`secret "${name}" not found in namespace "${namespace}"`);
    return s;
  }

  function put(input: SecretInput): { secret: SecretRow; created: boolean } {
    const existing = store.secrets.get(input.namespace, input.name);
    store.secrets.put({
      namespace: input.namespace,
      name: input.name,
      uid: existing?.uid ?? uuid(),
      type: input.type ?? OPAQUE_SECRET_TYPE,
      labels: input.labels ?? null,
      annotations: input.annotations ?? null,
      data: input.data,
      ownerUid: input.ownerUid ?? null,
      createdAt: existing?.createdAt ?? new Date().toISOString(),
    });
    cache.drop(input.namespace, input.name);
    publishChange(topics, "secret", input.namespace, input.name);
    return { secret: get(input.namespace, input.name), created: !existing };
  }

  function remove(namespace: string, name: string): SecretRow {
    const s = get(namespace, name);
    store.secrets.delete(namespace, name);
    cache.drop(namespace, name);
    publishChange(topics, "secret", namespace, name);
    return s;
  }

  return {
    get,
    find: (namespace: string, name: string) => cache.get(namespace, name),
    list: (namespace?: string) => store.secrets.list(namespace),
    put,
    remove,
  };
}

type MaybePromise<T> = T | Promise<T>;

/** The input of a secret write. */
export interface SecretInput {
  namespace: string;
  name: string;
  type?: string;
  data: Record<string, string>;
  labels?: Record<string, string> | null;
  annotations?: Record<string, string> | null;
  ownerUid?: string | null;
}

/** Secrets as the API and the object store use them (see AgentService): synchronous reads, writes that may be promises. */
export interface SecretService {
  get(namespace: string, name: string): SecretRow;
  find(namespace: string, name: string): SecretRow | undefined;
  list(namespace?: string): SecretRow[];
  put(input: SecretInput): MaybePromise<{ secret: SecretRow; created: boolean }>;
  remove(namespace: string, name: string): MaybePromise<SecretRow>;
}
