/**
 * The informer (src/kube/informer.ts) with the real client and kubeconfig against a real
 * `pai serve --tls` (test/kube.ts): it syncs the agents that exist, follows one through creation,
 * the controller's status write-back and deletion, and, on /api/v1/secrets, sees the
 * controller's pai-webhook-<agent> secret come, go (a rotation) and come back. No kubectl needed.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createKubeClient, type KubeObject } from "../../src/kube/client";
import { kubeconfigConnection } from "../../src/kube/config";
import { createInformer, type Informer, type InformerEventType } from "../../src/kube/informer";
import { createLogger } from "../../src/lib/log";
import { eventually, removeDir } from "../helpers";
import { startKubeServer, type KubeServer } from "../kube";

interface Agent extends KubeObject {
  spec: { models: string[] };
  status?: { webhookUrl?: string; observedGeneration?: number };
}
interface Secret extends KubeObject {
  type?: string;
}

const AGENTS = "/apis/pai.io/v1/namespaces/default/agents";
const agentBody = (name: string) => ({ apiVersion: "pai.io/v1", kind: "Agent", metadata: { name }, spec: { models: ["pai/echo"], triggers: [{ webhook: {} }] } });

let k: KubeServer;
const informers: Informer<KubeObject>[] = [];
const logLines: string[] = [];

beforeAll(async () => {
  k = await startKubeServer();
  const res = await k.api(AGENTS, { method: "POST", json: agentBody("before") });
  expect(res.status).toBe(201);
});
afterAll(async () => {
  for (const i of informers) i.stop();
  await k?.stop();
  removeDir(k?.server.dataDir ?? "");
});

function start<T extends KubeObject>(path: string): { inf: Informer<T>; events: { type: InformerEventType; obj: T; old?: T }[] } {
  const inf = createInformer<T>({
    client: createKubeClient(kubeconfigConnection(k.kubeconfig)),
    path,
    log: createLogger("debug", (l) => logLines.push(l)),
  });
  informers.push(inf as unknown as Informer<KubeObject>);
  const events: { type: InformerEventType; obj: T; old?: T }[] = [];
  inf.on((type, obj, old) => events.push({ type, obj, old }));
  inf.start();
  return { inf, events };
}

/** The events about `name`, as `TYPE`. */
const typesOf = (events: { type: string; obj: KubeObject }[], name: string) => events.filter((e) => e.obj.metadata.name === name).map((e) => e.type);

describe("informer against pai serve --tls", () => {
  test("agents: the existing agent is synced; a new one is seen created, its status written, its token rotated, and deleted", async () => {
    const agents = start<Agent>("/apis/pai.io/v1/agents");
    const secrets = start<Secret>("/api/v1/secrets");
    await Promise.all([agents.inf.synced(), secrets.inf.synced()]);

    const before = agents.inf.get("default", "before");
    expect(before?.kind).toBe("Agent");
    expect(before?.spec.models).toEqual(["pai/echo"]);
    expect(typesOf(agents.events, "before")).toEqual(["ADDED"]);
    expect(agents.inf.resourceVersion()).toMatch(/^\d+$/);
    // The secret the controller made for it is there too.
    await eventually(() => secrets.inf.get("default", "pai-webhook-before"), 5000, "pai-webhook-before in the secrets cache");

    // Created through the API: ADDED, then the controller's status write-back.
    const created = await k.api(AGENTS, { method: "POST", json: agentBody("fresh") });
    expect(created.status).toBe(201);
    const url1 = await eventually(() => agents.inf.get("default", "fresh")?.status?.webhookUrl, 5000, "fresh's webhookUrl in the cache");
    expect(typesOf(agents.events, "fresh")[0]).toBe("ADDED");
    expect(url1).toMatch(/\/webhooks\/default\/fresh\/[0-9a-f]{64}$/);
    const secret1 = await eventually(() => secrets.inf.get("default", "pai-webhook-fresh"), 5000, "pai-webhook-fresh in the secrets cache");
    expect(secret1.type).toBe("pai.io/webhook-token");
    expect(typesOf(secrets.events, "pai-webhook-fresh")).toEqual(["ADDED"]);

    // Deleting the secret rotates the token: the secret goes and comes back, and the agent's status changes.
    const del = await k.api("/api/v1/namespaces/default/secrets/pai-webhook-fresh", { method: "DELETE" });
    expect(del.status).toBe(200);
    const url2 = await eventually(() => {
      const u = agents.inf.get("default", "fresh")?.status?.webhookUrl;
      return u && u !== url1 ? u : undefined;
    }, 5000, "a new webhookUrl for fresh");
    const statusChange = agents.events.find((e) => e.type === "MODIFIED" && e.obj.metadata.name === "fresh" && e.obj.status?.webhookUrl === url2);
    expect(statusChange?.old?.status?.webhookUrl).toBe(url1);
    // The secrets watch is a stream of its own: it may see the delete and the new secret after the agents watch saw the status.
    await eventually(() => typesOf(secrets.events, "pai-webhook-fresh").length >= 3, 5000, "the new pai-webhook-fresh seen by the secrets informer");
    expect(typesOf(secrets.events, "pai-webhook-fresh").slice(0, 3)).toEqual(["ADDED", "DELETED", "ADDED"]);
    expect(secrets.inf.get("default", "pai-webhook-fresh")!.metadata.uid).not.toBe(secret1.metadata.uid);

    // Deleted: gone from the cache with a DELETED event, and the agent's secret with it.
    const gone = await k.api(`${AGENTS}/fresh`, { method: "DELETE" });
    expect(gone.ok).toBe(true);
    await eventually(() => agents.inf.get("default", "fresh") === undefined, 5000, "fresh to leave the cache");
    expect(typesOf(agents.events, "fresh").at(-1)).toBe("DELETED");
    await eventually(() => secrets.inf.get("default", "pai-webhook-fresh") === undefined, 5000, "pai-webhook-fresh to leave the secrets cache");

    expect(agents.inf.list("default").map((a) => a.metadata.name)).toEqual(["before"]);
    // One list and one watch each: nothing expired or failed on the way.
    expect(agents.inf.stats()).toEqual({ lists: 1, watches: 1, expired: 0, errors: 0 });
    expect(secrets.inf.stats()).toEqual({ lists: 1, watches: 1, expired: 0, errors: 0 });
    expect(logLines.filter((l) => / (WARN|ERROR) /.test(l))).toEqual([]);
  });
});
