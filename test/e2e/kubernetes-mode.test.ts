/**
 * `pai serve --kubernetes` against an API server: the API server is a real `pai serve --tls
 * --no-controller` (pai implements the Kubernetes API of agents.pai.io and Secrets; without its own
 * controller it only stores, as a kube-apiserver does), with Leases served by a test proxy in front
 * of it (pai has no coordination.k8s.io group). The replicas read the kubeconfig `pai kubeconfig`
 * made, pointed at the proxy, over TLS. Users' side of the cluster is driven with
 * @kubernetes/client-node and kubectl, as users would.
 *
 * What must hold (issue 10, part 2): the controller makes the owned `pai-webhook-<agent>` Secret and
 * writes status through the status subresource, only on change; webhooks run from the replicas'
 * caches; the page's rotation is seen by every replica; secretRef resolves from cluster Secrets;
 * one replica at a time runs the controller, and another takes over when it stops or dies.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createHmac } from "node:crypto";
import { parse } from "yaml";
import { eventually, removeDir, runCli, startServer, tempDir, type TestServer } from "../helpers";
import { HAVE_KUBECTL, warnSkippedWithoutKubectl } from "../kube";
import { startCluster, type AgentObject, type Cluster } from "../cluster";

const LEASE_MS = 1500;
let cluster: Cluster;
const replicas: TestServer[] = [];

async function startReplica(extra: string[] = []): Promise<TestServer> {
  const r = await startServer({ args: ["--kubernetes", "--kubeconfig", cluster.kubeconfig, "--lease-namespace", "pai-system", ...extra], env: { PAI_LEASE_DURATION_MS: String(LEASE_MS) } });
  replicas.push(r);
  return r;
}

const agentPath = (name: string, ns = "default") => `/apis/pai.io/v1/namespaces/${ns}/agents/${name}`;
const getAgent = (name: string, ns = "default"): Promise<AgentObject> => cluster.getAgent(name, ns);
const createAgent = (name: string, spec: Record<string, unknown>, ns = "default"): Promise<AgentObject> => cluster.createAgent(name, spec, ns);
const webhookSpec = (extra: Record<string, unknown> = {}) => ({ models: ["pai/echo"], triggers: [{ webhook: { ...extra } }] });
const webhookUrlOf = (name: string, not?: string) => cluster.webhookUrlOf(name, not);

/** A replica's own address for a webhook URL in the status (they share --public-url in a cluster; here each has its port). */
const on = (replica: TestServer, webhookUrl: string) => replica.url + new URL(webhookUrl).pathname;

async function leaseHolder(): Promise<string | undefined> {
  const lease = cluster.proxy.leases.get("pai-system/pai-controller") as { spec?: { holderIdentity?: string } } | undefined;
  return lease?.spec?.holderIdentity || undefined;
}

beforeAll(async () => {
  cluster = await startCluster();
});

afterAll(async () => {
  for (const r of replicas) {
    r.proc.kill("SIGKILL");
    await r.proc.exited;
    removeDir(r.dataDir);
  }
  await cluster?.stop();
});

describe("the API server without a controller (pai serve --no-controller)", () => {
  test("stores agents without status or webhook secret, and lets another controller write pai-webhook-* with an owner reference", async () => {
    const agent = await createAgent("plain", webhookSpec());
    await Bun.sleep(200);
    expect((await getAgent("plain")).status ?? {}).toEqual({});
    expect((await cluster.k.api("/api/v1/namespaces/default/secrets/pai-webhook-plain")).status).toBe(404);
    const body = (uid: string) => ({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "pai-webhook-plain", labels: { "pai.io/agent": "plain" }, ownerReferences: [{ apiVersion: "pai.io/v1", kind: "Agent", name: "plain", uid, controller: true }] },
      stringData: { token: "a".repeat(64) },
    });
    // An owner that is not there is refused, with the field named.
    const wrong = await cluster.k.api("/api/v1/namespaces/default/secrets", { method: "POST", json: body("not-the-uid") });
    expect(wrong.status).toBe(422);
    expect(JSON.stringify(await wrong.json())).toContain("metadata.ownerReferences[0].uid");
    const made = await cluster.k.api("/api/v1/namespaces/default/secrets", { method: "POST", json: body(agent.metadata.uid) });
    expect(made.status).toBe(201);
    const secret = await cluster.core.readNamespacedSecret({ name: "pai-webhook-plain", namespace: "default" });
    expect(secret.metadata?.ownerReferences).toEqual([{ apiVersion: "pai.io/v1", kind: "Agent", name: "plain", uid: agent.metadata.uid, controller: true }]);
    // Deleting the owner deletes the secret, as the garbage collector does.
    await cluster.users.deleteNamespacedCustomObject({ group: "pai.io", version: "v1", namespace: "default", plural: "agents", name: "plain" });
    expect((await cluster.k.api("/api/v1/namespaces/default/secrets/pai-webhook-plain")).status).toBe(404);
  });
});

describe("pai serve --kubernetes", () => {
  let a: TestServer;
  let b: TestServer;
  let url: string;

  beforeAll(async () => {
    await createAgent("early", webhookSpec());
    a = await startReplica();
    b = await startReplica();
  });

  test("an agent made before the replicas started gets its owned webhook Secret and a status", async () => {
    url = await webhookUrlOf("early");
    const agent = await getAgent("early");
    const token = new URL(url).pathname.split("/").pop()!;
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    const secret = await cluster.core.readNamespacedSecret({ name: "pai-webhook-early", namespace: "default" });
    expect(Buffer.from(secret.data!.token!, "base64").toString()).toBe(token);
    expect(secret.type).toBe("pai.io/webhook-token");
    expect(secret.metadata?.ownerReferences).toEqual([{ apiVersion: "pai.io/v1", kind: "Agent", name: "early", uid: agent.metadata.uid, controller: true }]);
    expect(agent.status?.observedGeneration).toBe(1);
    expect(agent.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
    expect(agent.status?.conditions?.find((c) => c.type === "WebhookReady")?.status).toBe("True");
  });

  test("one replica holds the Lease and runs the controller", async () => {
    const holder = await eventually(leaseHolder, 5000, "a lease holder");
    const leading = [a, b].filter((r) => r.logs().includes("leading: this replica runs the controller"));
    expect(leading.length).toBe(1);
    expect(holder).toContain(`_${leading[0]!.proc.pid}_`);
  });

  test("a webhook runs on any replica from its caches (no API call per request), its session in that replica's store", async () => {
    const before = cluster.proxy.requests.length;
    for (const r of [a, b]) {
      const res = await fetch(on(r, url), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ title: `hello from ${r.port}`, wait: 30 }) });
      expect(res.status).toBe(200);
      const reply = (await res.json()) as { session: string; response: string; phase: string };
      expect(reply.phase).toBe("Complete");
      expect(reply.response).toContain(`hello from ${r.port}`);
      expect((await r.api(`/agents/${reply.session}`)).status).toBe(200);
    }
    // Only watches and lease renewals went to the API server meanwhile: no agent or secret reads.
    const reads = cluster.proxy.requests.slice(before).filter((q) => q.method === "GET" && !q.path.includes("watch") && !q.path.includes("/leases/"));
    expect(reads).toEqual([]);
  });

  test("a wrong token is refused on every replica (401), an unknown agent is 404", async () => {
    for (const r of [a, b]) {
      const wrong = url.replace(/[0-9a-f]{64}$/, "0".repeat(64));
      expect((await fetch(on(r, wrong), { method: "POST", body: "{}" })).status).toBe(401);
      expect((await fetch(`${r.url}/webhooks/default/nobody/${"0".repeat(64)}`, { method: "POST", body: "{}" })).status).toBe(404);
    }
  });

  test("pai's own API reads the cluster's agents and refuses writes with where to make them (405); Secrets are not served", async () => {
    const got = await a.api(agentPath("early"));
    expect(got.status).toBe(200);
    expect(((await got.json()) as AgentObject).status?.webhookUrl).toBe(url);
    const put = await a.api(agentPath("early"), { method: "PUT", json: { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name: "early" }, spec: { models: ["pai/echo"] } } });
    expect(put.status).toBe(405);
    expect(((await put.json()) as { message: string }).message).toContain("kubectl against the cluster");
    const secrets = await a.api("/api/v1/namespaces/default/secrets/pai-webhook-early");
    expect(secrets.status).toBe(405);
    expect(JSON.stringify(await secrets.json())).not.toContain(new URL(url).pathname.split("/").pop()!);
    // pai run (the sessions API) finds the cluster's agent.
    const run = await a.cli(["run", "early", "from the cli", "--wait"]);
    expect(run.stdout + run.stderr).toContain("from the cli");
  });

  describe.skipIf(!HAVE_KUBECTL)("the page's rotation", () => {
    warnSkippedWithoutKubectl("the rotation with kubectl delete secret in --kubernetes mode");
    test("kubectl delete secret pai-webhook-<agent>: a new URL, the old token refused on every replica", async () => {
      const del = await cluster.k.kubectl(["delete", "secret", "pai-webhook-early", "-n", "default"]);
      expect(del.code).toBe(0);
      const rotated = await webhookUrlOf("early", url);
      for (const r of [a, b]) {
        await eventually(async () => (await fetch(on(r, url), { method: "POST", body: "{}" })).status === 401, 3000, `the old token refused on ${r.url}`);
        await eventually(async () => (await fetch(on(r, rotated), { method: "POST", body: "{}" })).status === 200, 3000, `the new token accepted on ${r.url}`);
      }
      url = rotated;
    });
  });

  test("status is written through the status subresource, on change only: a spec change moves observedGeneration, a resync writes nothing", async () => {
    const agent = await getAgent("early");
    await cluster.users.patchNamespacedCustomObject(
      { group: "pai.io", version: "v1", namespace: "default", plural: "agents", name: "early", body: [{ op: "add", path: "/spec/system", value: "Be brief." }] },
    );
    await eventually(async () => (await getAgent("early")).status?.observedGeneration === agent.metadata.generation + 1, 10_000, "observedGeneration to follow the spec");
    const statusPuts = () => cluster.proxy.requests.filter((q) => q.method === "PUT" && q.path.endsWith("/agents/early/status")).length;
    const settled = (await getAgent("early")).metadata.resourceVersion;
    const puts = statusPuts();
    // The controller sees its own status write come back and reconciles it again: nothing to write.
    await Bun.sleep(LEASE_MS);
    expect(statusPuts()).toBe(puts);
    expect((await getAgent("early")).metadata.resourceVersion).toBe(settled);
    // Every status write went to …/status, never to the object itself.
    expect(cluster.proxy.requests.filter((q) => q.method === "PUT" && /\/agents\/[^/]+$/.test(q.path.split("?")[0]!))).toEqual([]);
  });

  test("a Linear signing secret from a cluster Secret (secretRef) checks deliveries on the replicas", async () => {
    await cluster.core.createNamespacedSecret({ namespace: "default", body: { metadata: { name: "linear" }, stringData: { secret: "lin-signing" } } });
    await createAgent("signed", webhookSpec({ linearSignatureSecret: { secretRef: { name: "linear", key: "secret" } } }));
    const signedUrl = await webhookUrlOf("signed");
    const body = JSON.stringify({ action: "create", type: "Project", data: { name: "p" }, webhookTimestamp: Date.now() });
    const sig = createHmac("sha256", "lin-signing").update(body).digest("hex");
    const headers = { "content-type": "application/json", "linear-delivery": crypto.randomUUID(), "linear-event": "Project" };
    for (const r of [a, b]) {
      expect((await fetch(on(r, signedUrl), { method: "POST", headers: { ...headers, "linear-signature": sig }, body })).status).toBe(200);
      expect((await fetch(on(r, signedUrl), { method: "POST", headers: { ...headers, "linear-delivery": crypto.randomUUID(), "linear-signature": "0".repeat(64) }, body })).status).toBe(401);
    }
  });

  test("a pai-webhook-<agent> Secret the agent does not own is replaced by an owned one with a new token", async () => {
    const planted = "b".repeat(64);
    await cluster.core.createNamespacedSecret({ namespace: "default", body: { metadata: { name: "pai-webhook-planted" }, type: "pai.io/webhook-token", stringData: { token: planted } } });
    const agent = await createAgent("planted", webhookSpec());
    const u = await webhookUrlOf("planted");
    expect(u).not.toContain(planted);
    const secret = await cluster.core.readNamespacedSecret({ name: "pai-webhook-planted", namespace: "default" });
    expect(secret.metadata?.ownerReferences?.[0]?.uid).toBe(agent.metadata.uid);
    for (const r of [a, b]) await eventually(async () => (await fetch(`${r.url}/webhooks/default/planted/${planted}`, { method: "POST", body: "{}" })).status === 401, 3000, "the planted token refused");
  });

  test("removing an agent's webhook trigger deletes its Secret and its URL", async () => {
    await createAgent("untriggered", webhookSpec());
    const u = await webhookUrlOf("untriggered");
    await cluster.users.patchNamespacedCustomObject({ group: "pai.io", version: "v1", namespace: "default", plural: "agents", name: "untriggered", body: [{ op: "remove", path: "/spec/triggers" }] });
    await eventually(async () => (await cluster.k.api("/api/v1/namespaces/default/secrets/pai-webhook-untriggered")).status === 404, 10_000, "the secret deleted");
    await eventually(async () => (await getAgent("untriggered")).status?.webhookUrl === undefined, 10_000, "the URL gone from the status");
    for (const r of [a, b]) await eventually(async () => (await fetch(on(r, u), { method: "POST", body: "{}" })).status === 404, 3000, `404 on ${r.url}`);
  });

  test("deleting an Agent: its Secret goes (owner reference), its webhook is 404 on every replica", async () => {
    await createAgent("shortlived", webhookSpec());
    const shortUrl = await webhookUrlOf("shortlived");
    await cluster.users.deleteNamespacedCustomObject({ group: "pai.io", version: "v1", namespace: "default", plural: "agents", name: "shortlived" });
    expect((await cluster.k.api("/api/v1/namespaces/default/secrets/pai-webhook-shortlived")).status).toBe(404);
    for (const r of [a, b]) await eventually(async () => (await fetch(on(r, shortUrl), { method: "POST", body: "{}" })).status === 404, 3000, `404 on ${r.url}`);
  });

  test("the leader stops: the other replica takes the Lease at once (released) and reconciles", async () => {
    const leader = [a, b].find((r) => r.logs().includes("leading: this replica runs the controller"))!;
    const other = leader === a ? b : a;
    expect(await leader.stop()).toBe(0);
    // Released on the way out (client-go's release: no holder), not left to expire.
    expect((await leaseHolder()) ?? "").not.toContain(`_${leader.proc.pid}_`);
    await eventually(() => other.logs().includes("leading: this replica runs the controller"), 10_000, "the other replica to lead");
    await createAgent("after-handover", webhookSpec());
    await webhookUrlOf("after-handover");
  });

  test("the leader dies (kill -9): another replica takes over once the Lease expires", async () => {
    const survivor = replicas.find((r) => r.logs().includes("leading: this replica runs the controller") && r.proc.exitCode === null)!;
    const c = await startReplica();
    survivor.proc.kill("SIGKILL");
    await survivor.proc.exited;
    await eventually(() => c.logs().includes("leading: this replica runs the controller"), 10_000, "the new replica to lead after the lease expired");
    await createAgent("after-crash", webhookSpec());
    const u = await webhookUrlOf("after-crash");
    expect((await fetch(on(c, u), { method: "POST", body: "{}" })).status).toBe(200);
  });
});

describe("pai serve --kubernetes --watch-namespaces", () => {
  test("a replica watching team-a serves team-a's agents only, and lists and watches only there", async () => {
    const d = await startReplica(["--watch-namespaces", "team-a"]);
    await createAgent("scoped", webhookSpec(), "team-a");
    // Another replica (watching all namespaces) holds the Lease and reconciles it.
    const scopedUrl = await eventually(async () => (await getAgent("scoped", "team-a")).status?.webhookUrl, 10_000, "the team-a agent reconciled");
    await eventually(async () => (await fetch(on(d, scopedUrl), { method: "POST", body: "{}" })).status === 200, 3000, "the team-a webhook served");
    const otherUrl = (await getAgent("early")).status!.webhookUrl!;
    expect((await fetch(on(d, otherUrl), { method: "POST", body: "{}" })).status).toBe(404);
    expect((await d.api(agentPath("early"))).status).toBe(404);
    expect(cluster.proxy.requests.some((q) => q.path.startsWith("/apis/pai.io/v1/namespaces/team-a/agents?") && q.path.includes("watch=1"))).toBe(true);
    expect(cluster.proxy.requests.some((q) => q.path.startsWith("/api/v1/namespaces/team-a/secrets?"))).toBe(true);
  });
});

describe("manifests/kubernetes/rbac.yaml is the least privilege", () => {
  /** (apiGroup/resource, verb) of a request, as the authorizer sees it. */
  function attributes(method: string, path: string): string {
    const url = new URL(path, "http://x");
    const parts = url.pathname.split("/").filter(Boolean);
    // /api/v1/… or /apis/<group>/<version>/…
    const group = parts[0] === "api" ? "" : parts[1]!;
    let rest = parts.slice(parts[0] === "api" ? 2 : 3);
    if (rest[0] === "namespaces" && rest.length > 2) rest = rest.slice(2);
    const [resource, name, sub] = rest;
    const verb =
      method === "GET" ? (name ? "get" : url.searchParams.get("watch") ? "watch" : "list") : ({ POST: "create", PUT: "update", PATCH: "patch", DELETE: "delete" } as Record<string, string>)[method]!;
    return `${group}/${resource}${sub ? `/${sub}` : ""}: ${verb}`;
  }

  test("every call the replicas made is allowed by it, and it allows nothing they do not use", async () => {
    const docs = (await Bun.file(join(import.meta.dir, "../../manifests/kubernetes/rbac.yaml")).text()).split(/^---$/m).map((d) => parse(d));
    const granted = new Set<string>();
    for (const d of docs.filter((x) => x?.rules))
      for (const r of d.rules) for (const g of r.apiGroups) for (const res of r.resources) for (const v of r.verbs) granted.add(`${g}/${res}: ${v}`);
    const used = new Set(cluster.proxy.requests.map((q) => attributes(q.method, q.path)));
    expect([...used].filter((u) => !granted.has(u))).toEqual([]);
    // Reads made only after a conflict (a status or secret write that lost a race) may not have happened in this run.
    const onConflict = new Set(["pai.io/agents: get", "/secrets: get"]);
    expect([...granted].filter((g) => !used.has(g) && !onConflict.has(g))).toEqual([]);
    // The lease Role is namespaced to pai-system, where the replicas keep their Lease.
    expect(cluster.proxy.requests.filter((q) => q.path.includes("/leases/")).every((q) => q.path.includes("/namespaces/pai-system/leases/"))).toBe(true);
  });
});

describe("pai serve --kubernetes: bad settings", () => {
  test("no cluster to talk to: exit 1 with what to pass", async () => {
    const d = tempDir("pai-kmode-none-");
    const r = await runCli(["serve", "--kubernetes", "--port", "0", "--data-dir", d], { env: { KUBECONFIG: "", KUBERNETES_SERVICE_HOST: "", HOME: d } });
    removeDir(d);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("pass --kubeconfig");
  });

  test("--manifests with --kubernetes, or --watch-namespaces without it: exit 2", async () => {
    const both = await runCli(["serve", "--kubernetes", "--manifests", "manifests/examples"]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain("do not go together");
    const alone = await runCli(["serve", "--watch-namespaces", "a"]);
    expect(alone.code).toBe(2);
    expect(alone.stderr).toContain("pass --kubernetes too");
  });
});
