/**
 * The object store: where Agents and Secrets live, seen through one seam by the controller, the
 * webhook path and the supervisor. Two implementations:
 *
 * - `local` (./local.ts): pai's own database, written through the agent and secret services (the
 *   API, kubectl against pai, the manifests folder).
 * - `kubernetes` (./kubernetes.ts): a cluster's `agents.pai.io` custom resources and Secrets, read
 *   from watch-fed caches (no API round trip per webhook) and written through the API server.
 *
 * Reads are synchronous (a database lookup or a cache), writes are promises (an HTTP call in a
 * cluster). Domain types cross the seam, never store rows or raw API objects. A change is
 * announced only once the reads above already return it.
 */
import type { Agent, AgentStatus } from "../domain/agent";
import type { Secret } from "../domain/secret";

export interface ObjectChange {
  kind: "agent" | "secret";
  namespace: string;
  name: string;
}

export interface OwnedSecret {
  name: string;
  type: string;
  data: Record<string, string>;
  labels: Record<string, string>;
}

export interface ObjectStore {
  readonly mode: "local" | "kubernetes";
  findAgent(namespace: string, name: string): Agent | undefined;
  listAgents(): Agent[];
  findSecret(namespace: string, name: string): Secret | undefined;
  /** Why the latest manifest of an agent was refused, if it was (shown in its status by the controller). */
  sourceProblem(namespace: string, name: string): string | undefined;
  /** Creates or replaces a secret in the agent's namespace that the agent owns (deleted with it). */
  putOwnedSecret(owner: Agent, secret: OwnedSecret): Promise<void>;
  /** Deletes a secret; one already gone counts as deleted. */
  deleteSecret(namespace: string, name: string): Promise<void>;
  /** Writes the agent's status if it differs from the stored one; resolves to whether it wrote. */
  setStatus(agent: Agent, status: AgentStatus): Promise<boolean>;
  /** Follows changes of one kind; returns the unsubscribe. */
  onChange(kind: ObjectChange["kind"], listener: (change: ObjectChange) => void): () => void;
  /** Resolves once the reads see every object (at once for the database; after the first list in a cluster). */
  start(): Promise<void>;
  stop(): void;
}
