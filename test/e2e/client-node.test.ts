/**
 * @kubernetes/client-node (the official JavaScript client, pinned to 1.4.x: 2.x does not pass its
 * TLS settings under Bun) against `pai serve --tls`, configured only by the kubeconfig that
 * `pai kubeconfig` prints: it lists agents through CustomObjectsApi and watches them with Watch.
 * (pai serve --kubernetes itself talks to the API server with a small client on fetch: src/kube/client.ts.)
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CustomObjectsApi, KubeConfig, Watch } from "@kubernetes/client-node";
import { agentYaml, eventually, removeDir } from "../helpers";
import { startKubeServer, type KubeServer } from "../kube";

interface AgentObject {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: { models: string[] };
  status?: { webhookUrl?: string };
}
interface AgentList {
  kind: string;
  apiVersion: string;
  metadata: { resourceVersion?: string };
  items: AgentObject[];
}

let k: KubeServer;
let kc: KubeConfig;

beforeAll(async () => {
  k = await startKubeServer();
  const applied = await k.cli(["apply", "-f", "-"], { stdin: agentYaml("first") + "---\n" + agentYaml("second", "", { namespace: "team-b" }) });
  expect(applied.code).toBe(0);
  kc = new KubeConfig();
  kc.loadFromFile(k.kubeconfig);
});
afterAll(async () => {
  await k?.stop();
  removeDir(k?.server.dataDir ?? "");
});

describe("@kubernetes/client-node over TLS", () => {
  test("the kubeconfig is read as it is: https server, CA data, token, namespace", () => {
    const cluster = kc.getCurrentCluster()!;
    expect(cluster.server).toBe(k.url);
    expect(cluster.skipTLSVerify).toBe(false);
    expect(Buffer.from(cluster.caData!, "base64").toString()).toBe(k.ca);
    expect(kc.getCurrentUser()!.token).toBe(k.server.token);
    expect(kc.getContextObject(kc.getCurrentContext())!.namespace).toBe("default");
  });

  test("CustomObjectsApi.listNamespacedCustomObject lists the namespace's agents", async () => {
    const api = kc.makeApiClient(CustomObjectsApi);
    const list = (await api.listNamespacedCustomObject({ group: "pai.io", version: "v1", namespace: "default", plural: "agents" })) as AgentList;
    expect(list.kind).toBe("AgentList");
    expect(list.apiVersion).toBe("pai.io/v1");
    expect(list.items.map((a) => a.metadata.name)).toEqual(["first"]);
    expect(list.items[0]!.spec.models).toEqual(["anthropic/claude-sonnet-4-6"]);
    expect(list.items[0]!.status?.webhookUrl).toMatch(/^https:\/\/localhost:\d+\/webhooks\/default\/first\/[0-9a-f]{64}$/);
    const one = (await api.getNamespacedCustomObject({ group: "pai.io", version: "v1", namespace: "team-b", plural: "agents", name: "second" })) as AgentObject;
    expect(one.metadata.namespace).toBe("team-b");
  });

  test("a namespace token's kubeconfig lists its namespace and is refused another (403)", async () => {
    const nkc = new KubeConfig();
    nkc.loadFromFile(await k.namespaceKubeconfig("team-b"));
    const api = nkc.makeApiClient(CustomObjectsApi);
    const own = (await api.listNamespacedCustomObject({ group: "pai.io", version: "v1", namespace: "team-b", plural: "sessions" })) as { items: unknown[] };
    expect(own.items).toEqual([]);
    const denied = await api.listNamespacedCustomObject({ group: "pai.io", version: "v1", namespace: "default", plural: "sessions" }).then(
      () => undefined,
      (err: { code?: number }) => err,
    );
    expect(denied?.code).toBe(403);
  });

  test("a client that does not trust the CA is refused (the CA data is what makes it work)", async () => {
    const untrusting = new KubeConfig();
    untrusting.loadFromOptions({
      clusters: [{ name: "pai", server: k.url, skipTLSVerify: false }],
      users: [{ name: "admin", token: k.server.token }],
      contexts: [{ name: "pai", cluster: "pai", user: "admin", namespace: "default" }],
      currentContext: "pai",
    });
    const api = untrusting.makeApiClient(CustomObjectsApi);
    await expect(api.listNamespacedCustomObject({ group: "pai.io", version: "v1", namespace: "default", plural: "agents" })).rejects.toThrow();
  });

  test("Watch streams ADDED, MODIFIED and DELETED for agents from the list's resourceVersion", async () => {
    const api = kc.makeApiClient(CustomObjectsApi);
    const list = (await api.listNamespacedCustomObject({ group: "pai.io", version: "v1", namespace: "default", plural: "agents" })) as AgentList;
    expect(list.metadata.resourceVersion).toMatch(/^\d+$/);
    const events: { type: string; name?: string; rv?: string }[] = [];
    let ended: unknown = "open";
    const watch = new Watch(kc);
    // Watch.watch resolves once the response headers arrive; the change is made without waiting
    // for that, so the test does not depend on when the server sends them.
    const watching = watch.watch(
      "/apis/pai.io/v1/namespaces/default/agents",
      { resourceVersion: list.metadata.resourceVersion, allowWatchBookmarks: true },
      (type, obj: AgentObject) => events.push({ type, name: obj?.metadata?.name, rv: obj?.metadata?.resourceVersion }),
      (err) => (ended = err),
    );
    const applied = await k.cli(["apply", "-f", "-"], { stdin: agentYaml("watched") });
    const controller = await watching;
    try {
      expect(applied.code).toBe(0);
      // The controller's status write-back (webhook URL) shows up as MODIFIED.
      await eventually(() => events.some((e) => e.type === "ADDED" && e.name === "watched") && events.some((e) => e.type === "MODIFIED" && e.name === "watched"), 10_000, "ADDED and MODIFIED of watched");
      expect((await k.cli(["delete", "agent-def", "watched"])).code).toBe(0);
      await eventually(() => events.some((e) => e.type === "DELETED" && e.name === "watched"), 10_000, "DELETED of watched");
      expect(ended).toBe("open");
      // Nothing from before the list's version comes again, and versions only grow.
      expect(events.filter((e) => e.name === "first")).toEqual([]);
      const versions = events.filter((e) => e.type !== "BOOKMARK" && e.rv).map((e) => BigInt(e.rv!));
      expect(versions).toEqual([...versions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
      expect(versions.every((v) => v > BigInt(list.metadata.resourceVersion!))).toBe(true);
    } finally {
      controller.abort();
    }
  }, 30_000);
});
