/**
 * A Kubernetes API for `pai serve --kubernetes` in tests: a real `pai serve --tls --no-controller`
 * (pai implements the API of agents.pai.io and Secrets, and without a controller of its own it only
 * stores, as a kube-apiserver does), with Leases served by test/fakes/kube-leases.ts in front of it
 * (pai has no coordination.k8s.io group). `kubeconfig` is the one `pai kubeconfig` made, pointed at
 * the proxy: same certificate, same CA, same token. Users' side is @kubernetes/client-node.
 *
 *   const c = await startCluster();
 *   await c.createAgent("echo", { models: ["pai/echo"], triggers: [{ webhook: {} }] });
 *   const r = await startServer({ args: ["--kubernetes", "--kubeconfig", c.kubeconfig, ...] });
 *   await c.stop();
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import { parse, stringify } from "yaml";
import { eventually, removeDir, tempDir } from "./helpers";
import { startKubeServer, type KubeServer } from "./kube";
import { startLeaseProxy, type LeaseProxy } from "./fakes/kube-leases";

export interface AgentObject {
  metadata: { name: string; namespace: string; uid: string; generation: number; resourceVersion: string };
  spec: Record<string, unknown>;
  status?: { webhookUrl?: string; observedGeneration?: number; conditions?: { type: string; status: string; message?: string }[] };
}

export interface Cluster {
  /** The API server (a pai) and the lease proxy in front of it. */
  k: KubeServer;
  proxy: LeaseProxy;
  /** For `pai serve --kubernetes --kubeconfig`. */
  kubeconfig: string;
  users: CustomObjectsApi;
  core: CoreV1Api;
  createAgent(name: string, spec: Record<string, unknown>, ns?: string): Promise<AgentObject>;
  getAgent(name: string, ns?: string): Promise<AgentObject>;
  /** The webhook URL in the agent's status, once there (and other than `not`, if given). */
  webhookUrlOf(name: string, not?: string, ns?: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startCluster(): Promise<Cluster> {
  const dir = tempDir("pai-cluster-");
  const k = await startKubeServer({ args: ["--no-controller"] });
  const tlsDir = join(k.server.dataDir, "tls");
  const proxy = await startLeaseProxy({ upstream: k.url, upstreamCa: k.ca, tls: { cert: readFileSync(join(tlsDir, "server.crt"), "utf8"), key: readFileSync(join(tlsDir, "server.key"), "utf8") } });
  const config = parse(readFileSync(k.kubeconfig, "utf8"));
  config.clusters[0].cluster.server = proxy.url;
  const kubeconfig = join(dir, "kubeconfig");
  writeFileSync(kubeconfig, stringify(config), { mode: 0o600 });
  const kc = new KubeConfig();
  kc.loadFromFile(k.kubeconfig);
  const users = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  const getAgent = async (name: string, ns = "default") => (await users.getNamespacedCustomObject({ group: "pai.io", version: "v1", namespace: ns, plural: "agents", name })) as AgentObject;
  return {
    k,
    proxy,
    kubeconfig,
    users,
    core,
    getAgent,
    createAgent: async (name, spec, ns = "default") =>
      (await users.createNamespacedCustomObject({ group: "pai.io", version: "v1", namespace: ns, plural: "agents", body: { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name, namespace: ns }, spec } })) as AgentObject,
    webhookUrlOf: (name, not, ns = "default") =>
      eventually(async () => {
        const url = (await getAgent(name, ns)).status?.webhookUrl;
        return url && url !== not ? url : undefined;
      }, 10_000, `a webhook URL in the status of ${name}`),
    async stop() {
      await proxy.stop();
      await k.stop();
      removeDir(k.server.dataDir);
      removeDir(dir);
    },
  };
}
