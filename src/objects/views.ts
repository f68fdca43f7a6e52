/**
 * pai's own API in --kubernetes mode. Agents are read from the cluster's caches (so `pai get
 * agent-def`, `pai run` and the sessions API find them), and every write says where to make it
 * instead: the cluster is the one place an Agent is changed. Secrets are not served at all: pai's
 * admin token must not become a way to read every Secret the service account can.
 */
import { MethodNotAllowedError, NotFoundError } from "../domain/errors";
import type { AgentService } from "../service/agents";
import type { SecretService } from "../service/secrets";
import type { ObjectStore } from "./types";

const AGENTS_ELSEWHERE = "this pai runs with --kubernetes: Agents are the cluster's custom resources (agents.pai.io); change them with kubectl against the cluster";
const SECRETS_ELSEWHERE = "this pai runs with --kubernetes: Secrets are the cluster's; read and change them with kubectl against the cluster";

export const CLUSTER_SOURCE = "kubernetes";

export function clusterAgentView(objects: ObjectStore): AgentService {
  const refuse = (): never => {
    throw new MethodNotAllowedError(AGENTS_ELSEWHERE);
  };
  const stored = (namespace: string, name: string) => {
    const agent = objects.findAgent(namespace, name);
    return agent && { agent, source: CLUSTER_SOURCE };
  };
  return {
    get(namespace: string, name: string) {
      const found = stored(namespace, name);
      if (!found) throw new NotFoundError(`agent "${name}" not found in namespace "${namespace}"`);
      return found;
    },
    find: stored,
    list: (namespace?: string) =>
      objects
        .listAgents()
        .filter((a) => namespace === undefined || a.metadata.namespace === namespace)
        .sort((a, b) => a.metadata.namespace.localeCompare(b.metadata.namespace) || a.metadata.name.localeCompare(b.metadata.name))
        .map((agent) => ({ agent, source: CLUSTER_SOURCE })),
    listBySource: () => [],
    sourceProblem: (namespace: string, name: string) => objects.sourceProblem(namespace, name),
    setSourceProblem: refuse,
    apply: refuse,
    remove: refuse,
    setStatus: refuse,
  };
}

export function clusterSecretView(): SecretService {
  const refuse = (): never => {
    throw new MethodNotAllowedError(SECRETS_ELSEWHERE);
  };
  return { get: refuse, find: refuse, list: refuse, put: refuse, remove: refuse };
}
