/**
 * The object store on pai's own database: the agent and secret services, their read caches and the
 * changes topic they publish on after each commit.
 */
import type { AgentService } from "../service/agents";
import type { SecretService } from "../service/secrets";
import type { Topics } from "../service/topics";
import type { ObjectStore } from "./types";

export function createLocalObjects(deps: { agents: AgentService; secrets: SecretService; topics: Pick<Topics, "changes"> }): ObjectStore {
  const { agents, secrets, topics } = deps;
  return {
    mode: "local",
    findAgent: (namespace, name) => agents.find(namespace, name)?.agent,
    listAgents: () => agents.list().map((a) => a.agent),
    findSecret: (namespace, name) => secrets.find(namespace, name),
    sourceProblem: (namespace, name) => agents.sourceProblem(namespace, name),
    async putOwnedSecret(owner, secret) {
      await secrets.put({ namespace: owner.metadata.namespace, ...secret, ownerUid: owner.metadata.uid });
    },
    async deleteSecret(namespace, name) {
      if (secrets.find(namespace, name)) await secrets.remove(namespace, name);
    },
    async setStatus(agent, status) {
      return agents.setStatus(agent.metadata.namespace, agent.metadata.name, status);
    },
    onChange(kind, listener) {
      // An agent's status write is its own topic key: the controller does not react to its own status.
      return topics.changes.subscribeKey(kind, (c) => listener({ kind, namespace: c.namespace, name: c.name }));
    },
    start: async () => {},
    stop() {},
  };
}
