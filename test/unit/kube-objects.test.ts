/**
 * The object store of `pai serve --kubernetes` (src/objects/kubernetes.ts), against a small fake API
 * server on 127.0.0.1 that speaks the real protocol for agents.pai.io and Secrets: lists with
 * metadata.resourceVersion, watches as JSON-lines streams, the status subresource, create, replace
 * and delete with resourceVersion preconditions, and `Status` bodies for 404 and 409. The fake can
 * change an object without telling the watches, which is how a cache goes stale and a write meets a
 * 409, as on a real cluster. test/e2e/kubernetes-mode.test.ts covers the happy paths against a real
 * pai API server; this file covers the edges: refused specs, conflicts, listeners, namespaces, stop.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { Agent, AgentStatus } from "../../src/domain/agent";
import { createKubeClient, KubeApiError, type KubeObject } from "../../src/kube/client";
import { createLogger } from "../../src/lib/log";
import { agentFromObject, createKubernetesObjects, secretFromObject } from "../../src/objects/kubernetes";
import type { ObjectChange } from "../../src/objects/types";

type Kind = "agents" | "secrets";
type EventType = "ADDED" | "MODIFIED" | "DELETED";

interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  body: Record<string, unknown> & { metadata?: KubeObject["metadata"]; status?: unknown };
}

const statusBody = (code: number, reason: string, message: string) => ({
  kind: "Status",
  apiVersion: "v1",
  metadata: {},
  status: code < 300 ? "Success" : "Failure",
  reason,
  code,
  message,
});
const statusResponse = (code: number, reason: string, message: string) => Response.json(statusBody(code, reason, message), { status: code });

// Group, optional namespace, resource, optional name, optional status subresource.
const ROUTE = /^\/(apis\/pai\.io\/v1|api\/v1)(?:\/namespaces\/([^/]+))?\/(agents|secrets)(?:\/([^/]+))?(\/status)?$/;

function startFake() {
  let rv = 100;
  let uids = 0;
  const objects: Record<Kind, Map<string, KubeObject>> = { agents: new Map(), secrets: new Map() };
  const seen: Seen[] = [];
  const watches = new Set<{ kind: Kind; namespace?: string; controller: ReadableStreamDefaultController<Uint8Array> }>();
  const overrides: { match: (s: Seen) => boolean; response: () => Response }[] = [];
  const held = new Map<string, Promise<void>>();
  const encoder = new TextEncoder();

  function emit(kind: Kind, type: EventType, obj: KubeObject) {
    const line = encoder.encode(`${JSON.stringify({ type, object: obj })}\n`);
    for (const w of watches) if (w.kind === kind && (!w.namespace || w.namespace === obj.metadata.namespace)) w.controller.enqueue(line);
  }

  /** Stores an object at a new resourceVersion and, unless told not to, tells the watches. */
  function store(kind: Kind, obj: KubeObject, notify = true): KubeObject {
    const k = `${obj.metadata.namespace}/${obj.metadata.name}`;
    const old = objects[kind].get(k);
    const next: KubeObject = structuredClone({
      ...obj,
      metadata: {
        ...obj.metadata,
        uid: obj.metadata.uid ?? old?.metadata.uid ?? `uid-${++uids}`,
        creationTimestamp: old?.metadata.creationTimestamp ?? "2025-01-01T00:00:00Z",
        resourceVersion: String(++rv),
      },
    });
    objects[kind].set(k, next);
    if (notify) emit(kind, old ? "MODIFIED" : "ADDED", next);
    return structuredClone(next);
  }

  function remove(kind: Kind, namespace: string, name: string, notify = true): KubeObject {
    const k = `${namespace}/${name}`;
    const old = objects[kind].get(k)!;
    objects[kind].delete(k);
    const gone = { ...old, metadata: { ...old.metadata, resourceVersion: String(++rv) } };
    if (notify) emit(kind, "DELETED", gone);
    return gone;
  }

  function watchAnswer(request: Request, kind: Kind, namespace: string | undefined): Response {
    let entry!: { kind: Kind; namespace?: string; controller: ReadableStreamDefaultController<Uint8Array> };
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        entry = { kind, namespace, controller };
        watches.add(entry);
        controller.enqueue(encoder.encode("\n"));
      },
      cancel() {
        watches.delete(entry);
      },
    });
    request.signal.addEventListener("abort", () => watches.delete(entry));
    return new Response(stream, { headers: { "content-type": "application/json" } });
  }

  async function answer(request: Request, s: Seen): Promise<Response> {
    const m = ROUTE.exec(s.path);
    if (!m || (m[1] === "api/v1") !== (m[3] === "secrets")) return statusResponse(404, "NotFound", `the server could not find the requested resource`);
    const namespace = m[2];
    const kind = m[3] as Kind;
    const name = m[4];
    const sub = m[5];
    if (!name) {
      if (request.method === "GET") {
        if (s.query.get("watch") === "1") return watchAnswer(request, kind, namespace);
        await held.get(s.path);
        const items = [...objects[kind].values()].filter((o) => !namespace || o.metadata.namespace === namespace);
        return Response.json({ kind: kind === "agents" ? "AgentList" : "SecretList", apiVersion: "v1", metadata: { resourceVersion: String(rv) }, items });
      }
      if (request.method === "POST" && kind === "secrets" && namespace) {
        const secretName = s.body.metadata?.name ?? "";
        if (objects.secrets.has(`${namespace}/${secretName}`)) return statusResponse(409, "AlreadyExists", `secrets "${secretName}" already exists`);
        return Response.json(store("secrets", { ...s.body, metadata: { ...s.body.metadata!, namespace } } as KubeObject), { status: 201 });
      }
      return statusResponse(405, "MethodNotAllowed", `${request.method} is not supported here`);
    }
    if (!namespace) return statusResponse(404, "NotFound", "the server could not find the requested resource");
    const current = objects[kind].get(`${namespace}/${name}`);
    if (!current) return statusResponse(404, "NotFound", `${kind}.${kind === "agents" ? "pai.io" : ""} "${name}" not found`);
    switch (request.method) {
      case "GET":
        return Response.json(current);
      case "PUT": {
        const precondition = s.body.metadata?.resourceVersion;
        if (precondition && precondition !== current.metadata.resourceVersion)
          return statusResponse(409, "Conflict", `Operation cannot be fulfilled on ${kind} "${name}": the object has been modified; please apply your changes to the latest version and try again`);
        if (sub) return Response.json(store(kind, { ...current, status: s.body.status }));
        if (kind !== "secrets") return statusResponse(405, "MethodNotAllowed", "agents are replaced by users, not by this fake");
        return Response.json(store(kind, { ...s.body, metadata: { ...s.body.metadata!, namespace, uid: current.metadata.uid } } as KubeObject));
      }
      case "DELETE":
        if (sub) break;
        remove(kind, namespace, name);
        return Response.json(statusBody(200, "", ""));
    }
    return statusResponse(405, "MethodNotAllowed", `${request.method} is not supported here`);
  }

  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(request) {
      const url = new URL(request.url);
      const text = request.method === "GET" ? "" : await request.text();
      const s: Seen = { method: request.method, path: url.pathname, query: url.searchParams, body: text ? JSON.parse(text) : {} };
      seen.push(s);
      const i = overrides.findIndex((o) => o.match(s));
      if (i >= 0) return overrides.splice(i, 1)[0]!.response();
      return answer(request, s);
    },
  });

  return {
    url: `http://127.0.0.1:${server.port}`,
    seen,
    store,
    remove,
    /** Pushes an event to the watches without changing what the server stores (for objects the server itself would refuse to hold). */
    send: (kind: Kind, type: EventType, obj: KubeObject) => emit(kind, type, obj),
    get: (kind: Kind, namespace: string, name: string) => structuredClone(objects[kind].get(`${namespace}/${name}`)),
    openWatches: () => watches.size,
    endWatches() {
      for (const w of watches) w.controller.close();
      watches.clear();
    },
    /** The next request `match` accepts gets `response` instead. */
    override(match: (s: Seen) => boolean, response: () => Response) {
      overrides.push({ match, response });
    },
    /** Lists of `path` wait until the returned function is called. */
    hold(path: string): () => void {
      let release!: () => void;
      held.set(path, new Promise<void>((r) => (release = r)));
      return release;
    },
    stop: () => server.stop(true),
  };
}

type Fake = ReturnType<typeof startFake>;
type Store = ReturnType<typeof createKubernetesObjects>;

/** Polls until `fn` is true; fails with `what` after 3 s. */
async function until(fn: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

function agentObject(name: string, spec: unknown, o: { namespace?: string; uid?: string; generation?: number; status?: AgentStatus; labels?: Record<string, string> } = {}): KubeObject {
  return {
    apiVersion: "pai.io/v1",
    kind: "Agent",
    metadata: { name, namespace: o.namespace ?? "default", generation: o.generation ?? 1, ...(o.uid ? { uid: o.uid } : {}), ...(o.labels ? { labels: o.labels } : {}) },
    spec,
    ...(o.status ? { status: o.status } : {}),
  };
}

function secretObject(name: string, data: Record<string, string>, namespace = "default"): KubeObject {
  return { apiVersion: "v1", kind: "Secret", metadata: { name, namespace }, type: "Opaque", data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")])) };
}

const ECHO = { models: ["pai/echo"] };
const BAD_MODEL = { models: ["nope/x"] };
const ready = (generation: number, message = "ok"): AgentStatus => ({
  observedGeneration: generation,
  conditions: [{ type: "Ready", status: "True", reason: "Reconciled", message, lastTransitionTime: "2025-01-01T00:00:00Z", observedGeneration: generation }],
});

let fake: Fake;
let logLines: string[];
let stores: Store[];

beforeEach(() => {
  fake = startFake();
  logLines = [];
  stores = [];
});
afterEach(async () => {
  for (const s of stores) s.stop();
  await fake.stop();
});

function makeStore(namespaces?: string[]): Store {
  const store = createKubernetesObjects({
    client: createKubeClient({ server: fake.url, namespace: "default", source: "test" }),
    log: createLogger("debug", (l) => logLines.push(l)),
    namespaces,
  });
  stores.push(store);
  return store;
}

/** A started store with its watches open, and the changes it announced. */
async function started(namespaces?: string[]): Promise<{ store: Store; changes: ObjectChange[] }> {
  const store = makeStore(namespaces);
  const changes: ObjectChange[] = [];
  store.onChange("agent", (c) => changes.push(c));
  store.onChange("secret", (c) => changes.push(c));
  await store.start();
  const watches = 2 * (namespaces?.length ?? 1);
  await until(() => fake.openWatches() === watches, `${watches} watches to be open`);
  return { store, changes };
}

/** Runs `fn` (which makes the fake send one event) and waits until the store has announced it. */
async function settled<T>(changes: ObjectChange[], fn: () => T): Promise<T> {
  const before = changes.length;
  const result = fn();
  await until(() => changes.length > before, "the store to announce the change");
  return result;
}

const requestsTo = (method: string, path: string) => fake.seen.filter((s) => s.method === method && s.path === path);
const writes = () => fake.seen.filter((s) => s.method !== "GET");

describe("agentFromObject", () => {
  test("a valid object becomes an Agent with uid, generation, resourceVersion, labels and status; server metadata is ignored", () => {
    const spec = { models: ["pai/echo", "anthropic/claude-sonnet-4"], triggers: [{ webhook: { allowCIDRs: ["10.0.0.0/8", "2001:db8::/32"] } }] };
    const status = { ...ready(3), webhookUrl: "https://pai.example/webhooks/abc" };
    const parsed = agentFromObject({
      apiVersion: "pai.io/v1",
      kind: "Agent",
      metadata: {
        name: "helper",
        namespace: "team",
        uid: "u-1",
        generation: 4,
        resourceVersion: "77",
        creationTimestamp: "2025-02-03T04:05:06Z",
        labels: { app: "x" },
        annotations: { note: "y" },
        managedFields: [{ manager: "kubectl", operation: "Apply", apiVersion: "pai.io/v1", fieldsType: "FieldsV1", fieldsV1: { "f:spec": {} } }],
        finalizers: ["example.com/keep"],
        selfLink: "/apis/pai.io/v1/namespaces/team/agents/helper",
      },
      spec,
      status,
    });
    expect(parsed).toStrictEqual({
      agent: {
        apiVersion: "pai.io/v1",
        kind: "Agent",
        metadata: { name: "helper", namespace: "team", uid: "u-1", generation: 4, resourceVersion: "77", creationTimestamp: "2025-02-03T04:05:06Z", labels: { app: "x" }, annotations: { note: "y" } },
        spec,
        status,
      },
    });
  });

  test("without generation, labels or status: generation 1, no labels key, an empty status", () => {
    const parsed = agentFromObject({ metadata: { name: "bare", namespace: "default", uid: "u-2", resourceVersion: "5" }, spec: ECHO });
    if (!("agent" in parsed)) throw new Error(`refused: ${parsed.problem}`);
    expect(parsed.agent.metadata.generation).toBe(1);
    expect("labels" in parsed.agent.metadata).toBe(false);
    expect("annotations" in parsed.agent.metadata).toBe(false);
    expect(parsed.agent.status).toEqual({});
    expect(parsed.agent.metadata.namespace).toBe("default");
  });

  test.each([
    ["no models", { models: [] }, "spec.models: "],
    ["an unknown model provider", { models: ["pai/echo", "nope/x"] }, 'spec.models[1]: unknown model "nope/x"'],
    ["a built-in model that does not exist", { models: ["pai/other"] }, "spec.models[0]: unknown built-in model"],
    ["an allowCIDRs entry that is not a CIDR", { models: ["pai/echo"], triggers: [{ webhook: { allowCIDRs: ["10.0.0.0/8", "not-a-cidr"] } }] }, 'spec.triggers[0].webhook.allowCIDRs[1]: "not-a-cidr" is not'],
    ["a field the schema does not know", { models: ["pai/echo"], colour: "red" }, "spec.colour: unknown field"],
    // The CRD's schema requires a spec, so this is a server that does not check: the field is still named.
    ["no spec", undefined, "spec: "],
  ])("%s gives a problem naming the field", (_what, spec, expected) => {
    const parsed = agentFromObject({ metadata: { name: "a", namespace: "default", uid: "u", generation: 2 }, spec });
    expect("agent" in parsed).toBe(false);
    expect((parsed as { problem: string }).problem).toContain(expected);
  });

  test("every problem is named, joined by '; '", () => {
    const parsed = agentFromObject({ metadata: { name: "a", namespace: "default" }, spec: { models: ["nope/x"], maxTurns: 0 } });
    const problem = (parsed as { problem: string }).problem;
    expect(problem).toContain("spec.models[0]");
    expect(problem).toContain("spec.maxTurns");
    expect(problem.split("; ").length).toBe(2);
  });
});

describe("secretFromObject", () => {
  const ref = (o: Partial<{ apiVersion: string; kind: string; uid: string; controller: boolean }>) => ({ apiVersion: "pai.io/v1", kind: "Agent", name: "owner", uid: "agent-uid", ...o });
  const secret = (extra: Partial<KubeObject["metadata"]> = {}, body: Record<string, unknown> = {}): KubeObject => ({
    metadata: { name: "s", namespace: "ns", uid: "s-uid", creationTimestamp: "2025-01-01T00:00:00Z", ...extra },
    ...body,
  });

  test("decodes base64 data and carries the metadata", () => {
    const s = secretFromObject(
      secret({ labels: { "pai.io/agent": "owner" }, annotations: { a: "b" } }, { type: "pai.io/webhook-token", data: { token: Buffer.from("t0ken").toString("base64"), unicode: Buffer.from("héllo ✓").toString("base64") } }),
    );
    expect(s).toStrictEqual({
      namespace: "ns",
      name: "s",
      uid: "s-uid",
      type: "pai.io/webhook-token",
      labels: { "pai.io/agent": "owner" },
      annotations: { a: "b" },
      data: { token: "t0ken", unicode: "héllo ✓" },
      ownerUid: null,
      createdAt: "2025-01-01T00:00:00Z",
    });
  });

  test("type defaults to Opaque; no data, labels or annotations give {} and nulls", () => {
    const s = secretFromObject(secret());
    expect(s.type).toBe("Opaque");
    expect(s.data).toEqual({});
    expect(s.labels).toBeNull();
    expect(s.annotations).toBeNull();
  });

  test.each([
    ["a controller reference to a pai.io Agent", [ref({ controller: true })], "agent-uid"],
    ["the controller one among several references", [ref({ uid: "other", controller: false }), { apiVersion: "apps/v1", kind: "Deployment", name: "d", uid: "dep" }, ref({ controller: true })], "agent-uid"],
    ["a reference to an Agent that is not the controller", [ref({ controller: false })], null],
    ["a reference to an Agent without controller", [ref({})], null],
    ["a controller reference to another kind", [ref({ kind: "Deployment", apiVersion: "apps/v1", controller: true })], null],
    ["a controller reference to another kind of pai.io", [ref({ kind: "Session", controller: true })], null],
    ["a controller reference to an Agent of another group", [ref({ apiVersion: "other.io/v1", controller: true })], null],
    ["a controller reference to an Agent of a group that only starts like pai.io", [ref({ apiVersion: "pai.io.evil/v1", controller: true })], null],
  ])("ownerUid from %s", (_what, ownerReferences, expected) => {
    expect(secretFromObject(secret({ ownerReferences })).ownerUid).toBe(expected);
  });
});

describe("a refused spec", () => {
  test("keeps the last accepted version running with the newest status, until a valid one clears the problem", async () => {
    const made = fake.store("agents", agentObject("a", ECHO, { labels: { v: "1" } }));
    const { store, changes } = await started();
    expect(store.findAgent("default", "a")?.metadata.generation).toBe(1);
    expect(store.sourceProblem("default", "a")).toBeUndefined();

    const status = { ...ready(1, "still generation 1"), webhookUrl: "https://pai.example/w/1" };
    await settled(changes, () => fake.store("agents", { ...agentObject("a", BAD_MODEL, { uid: made.metadata.uid, generation: 2, labels: { v: "2" } }), status }));
    const kept = store.findAgent("default", "a")!;
    expect(kept.spec).toEqual(ECHO);
    expect(kept.metadata.generation).toBe(1);
    expect(kept.metadata.labels).toEqual({ v: "1" });
    expect(kept.status).toEqual(status);
    expect(store.sourceProblem("default", "a")).toContain('spec.models[0]: unknown model "nope/x"');
    expect(store.listAgents().map((x) => [x.metadata.name, x.metadata.generation])).toEqual([["a", 1]]);
    expect(logLines.filter((l) => l.includes(" WARN agent default/a refused (still running generation 1)") && l.includes("spec.models[0]")).length).toBe(1);

    // The same refusal again (a status write, say) is not logged again.
    await settled(changes, () => fake.store("agents", { ...agentObject("a", BAD_MODEL, { uid: made.metadata.uid, generation: 2 }), status: ready(1, "again") }));
    expect(store.findAgent("default", "a")?.status).toEqual(ready(1, "again"));
    expect(logLines.filter((l) => l.includes("refused")).length).toBe(1);

    await settled(changes, () => fake.store("agents", agentObject("a", { models: ["anthropic/claude-x"] }, { uid: made.metadata.uid, generation: 3 })));
    const now = store.findAgent("default", "a")!;
    expect(now.metadata.generation).toBe(3);
    expect(now.spec.models).toEqual(["anthropic/claude-x"]);
    expect(store.sourceProblem("default", "a")).toBeUndefined();
  });

  test("an agent never accepted is not served, but its problem is there", async () => {
    fake.store("agents", agentObject("good", ECHO));
    const { store, changes } = await started();
    await settled(changes, () => fake.store("agents", agentObject("bad", { models: [] })));
    expect(store.findAgent("default", "bad")).toBeUndefined();
    expect(store.sourceProblem("default", "bad")).toContain("spec.models");
    expect(store.listAgents().map((a) => a.metadata.name)).toEqual(["good"]);
    expect(logLines.some((l) => l.includes("agent default/bad refused:") && !l.includes("still running"))).toBe(true);
  });

  test("an agent refused in the first list is not served either", async () => {
    fake.store("agents", agentObject("bad", { models: ["pai/echo"], triggers: [{ webhook: { allowCIDRs: ["nope"] } }] }));
    const { store } = await started();
    expect(store.findAgent("default", "bad")).toBeUndefined();
    expect(store.sourceProblem("default", "bad")).toContain("spec.triggers[0].webhook.allowCIDRs[0]");
  });

  test("deleting a kept agent forgets both its accepted version and its problem", async () => {
    const made = fake.store("agents", agentObject("c", ECHO));
    const { store, changes } = await started();
    await settled(changes, () => fake.store("agents", agentObject("c", BAD_MODEL, { uid: made.metadata.uid, generation: 2 })));
    expect(store.findAgent("default", "c")?.metadata.generation).toBe(1);
    await settled(changes, () => fake.remove("agents", "default", "c"));
    expect(store.findAgent("default", "c")).toBeUndefined();
    expect(store.sourceProblem("default", "c")).toBeUndefined();
    expect(store.listAgents()).toEqual([]);
    // Made again under the same name with a spec pai refuses: nothing to fall back on.
    await settled(changes, () => fake.store("agents", agentObject("c", BAD_MODEL)));
    expect(store.findAgent("default", "c")).toBeUndefined();
    expect(store.sourceProblem("default", "c")).toContain("spec.models[0]");
  });

  test("an agent re-created with a new uid does not inherit the old accepted version, even when the delete was missed", async () => {
    const made = fake.store("agents", agentObject("d", ECHO));
    const { store, changes } = await started();
    // The watch missed the delete: the new object arrives as a change of the cached one.
    fake.remove("agents", "default", "d", false);
    const again = await settled(changes, () => fake.store("agents", agentObject("d", BAD_MODEL, { uid: "a-new-uid" })));
    expect(again.metadata.uid).not.toBe(made.metadata.uid);
    expect(store.findAgent("default", "d")).toBeUndefined();
    expect(store.sourceProblem("default", "d")).toContain("spec.models[0]");
    expect(store.listAgents()).toEqual([]);
  });
});

describe("setStatus", () => {
  const statusPath = "/apis/pai.io/v1/namespaces/default/agents/a/status";

  test("PUTs the status subresource with the cached resourceVersion, then does nothing while the status is equal", async () => {
    const made = fake.store("agents", agentObject("a", ECHO));
    const { store, changes } = await started();
    const agent = store.findAgent("default", "a")!;
    const status = { ...ready(1), webhookUrl: "https://pai.example/w" };

    const wrote = await settled(changes, () => store.setStatus(agent, status));
    expect(await wrote).toBe(true);
    const puts = requestsTo("PUT", statusPath);
    expect(puts.length).toBe(1);
    expect(puts[0]!.body.metadata?.resourceVersion).toBe(made.metadata.resourceVersion!);
    expect(puts[0]!.body.metadata?.uid).toBe(made.metadata.uid!);
    expect(puts[0]!.body.status).toEqual(status);
    expect(puts[0]!.body.spec).toEqual(ECHO);
    expect(fake.get("agents", "default", "a")?.status).toEqual(status);
    expect(store.findAgent("default", "a")?.status).toEqual(status);
    expect(store.stats().statusWrites).toBe(1);

    const before = fake.seen.length;
    // Equal in content, keys in another order.
    expect(await store.setStatus(agent, { webhookUrl: status.webhookUrl, conditions: status.conditions, observedGeneration: 1 })).toBe(false);
    expect(fake.seen.length).toBe(before);
    expect(store.stats().statusWrites).toBe(1);
  });

  test("an empty status on an agent without one is equal: no request", async () => {
    fake.store("agents", agentObject("a", ECHO));
    const { store } = await started();
    const before = fake.seen.length;
    expect(await store.setStatus(store.findAgent("default", "a")!, {})).toBe(false);
    expect(fake.seen.length).toBe(before);
  });

  test("on a 409 it GETs the agent and PUTs once more on the new resourceVersion", async () => {
    const made = fake.store("agents", agentObject("a", ECHO));
    const { store } = await started();
    const agent = store.findAgent("default", "a")!;
    // Changed on the server; the cache has not seen it.
    const changed = fake.store("agents", { ...made, metadata: { ...made.metadata, labels: { touched: "yes" } } }, false);
    expect(changed.metadata.resourceVersion).not.toBe(made.metadata.resourceVersion);

    expect(await store.setStatus(agent, ready(1))).toBe(true);
    const calls = fake.seen.filter((s) => s.path.startsWith("/apis/pai.io/v1/namespaces/default/agents/a")).map((s) => `${s.method} ${s.path}`);
    expect(calls).toEqual([`PUT ${statusPath}`, "GET /apis/pai.io/v1/namespaces/default/agents/a", `PUT ${statusPath}`]);
    const puts = requestsTo("PUT", statusPath);
    expect(puts[0]!.body.metadata?.resourceVersion).toBe(made.metadata.resourceVersion!);
    expect(puts[1]!.body.metadata?.resourceVersion).toBe(changed.metadata.resourceVersion!);
    // The retry is built from the fresh object, not the stale cache.
    expect(puts[1]!.body.metadata?.labels).toEqual({ touched: "yes" });
    expect(fake.get("agents", "default", "a")?.status).toEqual(ready(1));
    expect(store.stats().statusWrites).toBe(1);
  });

  test("on a 409 it does not PUT again when the fresh object already has that status", async () => {
    const made = fake.store("agents", agentObject("a", ECHO));
    const { store } = await started();
    const agent = store.findAgent("default", "a")!;
    fake.store("agents", { ...made, status: ready(1) }, false);

    expect(await store.setStatus(agent, ready(1))).toBe(false);
    expect(requestsTo("PUT", statusPath).length).toBe(1);
    expect(requestsTo("GET", "/apis/pai.io/v1/namespaces/default/agents/a").length).toBe(1);
    expect(store.stats().statusWrites).toBe(0);
  });

  test("on a 409 it does not PUT again when the agent was replaced by one with another uid", async () => {
    const made = fake.store("agents", agentObject("a", ECHO));
    const { store } = await started();
    const agent = store.findAgent("default", "a")!;
    fake.remove("agents", "default", "a", false);
    fake.store("agents", agentObject("a", ECHO, { uid: "someone-else" }), false);
    expect(made.metadata.uid).not.toBe("someone-else");

    expect(await store.setStatus(agent, ready(1))).toBe(false);
    expect(requestsTo("PUT", statusPath).length).toBe(1);
    expect(fake.get("agents", "default", "a")?.status).toBeUndefined();
  });

  test("an error other than 409 is thrown", async () => {
    fake.store("agents", agentObject("a", ECHO));
    const { store } = await started();
    fake.override(
      (s) => s.method === "PUT" && s.path === statusPath,
      () => statusResponse(403, "Forbidden", 'agents.pai.io "a" is forbidden: cannot update agents/status'),
    );
    const err = await store.setStatus(store.findAgent("default", "a")!, ready(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).status).toBe(403);
    expect((err as KubeApiError).reason).toBe("Forbidden");
    expect(requestsTo("PUT", statusPath).length).toBe(1);
  });

  test("returns false without a request for an agent whose uid differs from the cache's, or one not cached", async () => {
    fake.store("agents", agentObject("a", ECHO));
    const { store } = await started();
    const agent = store.findAgent("default", "a")!;
    const before = fake.seen.length;
    expect(await store.setStatus({ ...agent, metadata: { ...agent.metadata, uid: "an-older-one" } }, ready(1))).toBe(false);
    expect(await store.setStatus({ ...agent, metadata: { ...agent.metadata, name: "unknown" } }, ready(1))).toBe(false);
    expect(fake.seen.length).toBe(before);
  });

  test("for a kept agent, the write goes on the newest object's resourceVersion, not the accepted one's", async () => {
    const made = fake.store("agents", agentObject("a", ECHO));
    const { store, changes } = await started();
    const refused = await settled(changes, () => fake.store("agents", agentObject("a", BAD_MODEL, { uid: made.metadata.uid, generation: 2 })));
    const kept = store.findAgent("default", "a")!;
    expect(kept.metadata.resourceVersion).toBe(made.metadata.resourceVersion!);

    expect(await store.setStatus(kept, ready(1, "refused generation 2"))).toBe(true);
    const put = requestsTo("PUT", statusPath)[0]!;
    expect(put.body.metadata?.resourceVersion).toBe(refused.metadata.resourceVersion!);
    expect(requestsTo("PUT", statusPath).length).toBe(1);
  });
});

describe("putOwnedSecret", () => {
  const secretsPath = "/api/v1/namespaces/default/secrets";
  const owned = (token: string) => ({ name: "pai-webhook-a", type: "pai.io/webhook-token", data: { token }, labels: { "pai.io/agent": "a" } });

  async function withOwner(): Promise<{ store: Store; changes: ObjectChange[]; owner: Agent }> {
    fake.store("agents", agentObject("a", ECHO));
    const s = await started();
    return { ...s, owner: s.store.findAgent("default", "a")! };
  }

  test("POSTs a secret not in the cache, owned by the agent as its controller, with base64 data", async () => {
    const { store, changes, owner } = await withOwner();
    await settled(changes, () => store.putOwnedSecret(owner, owned("tök3n")));
    const posts = requestsTo("POST", secretsPath);
    expect(posts.length).toBe(1);
    expect(posts[0]!.body).toStrictEqual({
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: "pai-webhook-a",
        namespace: "default",
        labels: { "pai.io/agent": "a" },
        ownerReferences: [{ apiVersion: "pai.io/v1", kind: "Agent", name: "a", uid: owner.metadata.uid, controller: true }],
      },
      type: "pai.io/webhook-token",
      data: { token: Buffer.from("tök3n").toString("base64") },
    });
    expect(writes().length).toBe(1);
    // The watch brings it back, decoded and owned.
    const cached = store.findSecret("default", "pai-webhook-a")!;
    expect(cached.data).toEqual({ token: "tök3n" });
    expect(cached.ownerUid).toBe(owner.metadata.uid);
    expect(store.stats().secretWrites).toBe(1);
  });

  test("PUTs a cached secret with the cached resourceVersion", async () => {
    const { store, changes, owner } = await withOwner();
    const existing = await settled(changes, () => fake.store("secrets", secretObject("pai-webhook-a", { token: "old" })));
    await settled(changes, () => store.putOwnedSecret(owner, owned("new")));
    expect(requestsTo("POST", secretsPath).length).toBe(0);
    const puts = requestsTo("PUT", `${secretsPath}/pai-webhook-a`);
    expect(puts.length).toBe(1);
    expect(puts[0]!.body.metadata?.resourceVersion).toBe(existing.metadata.resourceVersion!);
    expect(puts[0]!.body.metadata?.ownerReferences).toEqual([{ apiVersion: "pai.io/v1", kind: "Agent", name: "a", uid: owner.metadata.uid, controller: true }]);
    expect(puts[0]!.body.data).toEqual({ token: Buffer.from("new").toString("base64") });
    expect(store.findSecret("default", "pai-webhook-a")?.data).toEqual({ token: "new" });
  });

  test("a 409 AlreadyExists on POST: GET, then PUT with the fetched resourceVersion", async () => {
    const { store, owner } = await withOwner();
    // Made by someone else; this cache has not seen it.
    const theirs = fake.store("secrets", secretObject("pai-webhook-a", { token: "theirs" }), false);
    await store.putOwnedSecret(owner, owned("mine"));
    const calls = fake.seen.filter((s) => s.path.startsWith(secretsPath) && s.query.get("watch") !== "1").map((s) => `${s.method} ${s.path}`);
    expect(calls.slice(-3)).toEqual([`POST ${secretsPath}`, `GET ${secretsPath}/pai-webhook-a`, `PUT ${secretsPath}/pai-webhook-a`]);
    const put = requestsTo("PUT", `${secretsPath}/pai-webhook-a`)[0]!;
    expect(put.body.metadata?.resourceVersion).toBe(theirs.metadata.resourceVersion!);
    expect(put.body.metadata?.ownerReferences?.[0]?.uid).toBe(owner.metadata.uid);
    expect(secretFromObject(fake.get("secrets", "default", "pai-webhook-a")!).data).toEqual({ token: "mine" });
    expect(store.stats().secretWrites).toBe(1);
  });

  test("a 409 Conflict on PUT of a stale cached secret: GET, then PUT with the fetched resourceVersion", async () => {
    const { store, changes, owner } = await withOwner();
    const cached = await settled(changes, () => fake.store("secrets", secretObject("pai-webhook-a", { token: "one" })));
    const newer = fake.store("secrets", secretObject("pai-webhook-a", { token: "two" }), false);
    await store.putOwnedSecret(owner, owned("three"));
    const puts = requestsTo("PUT", `${secretsPath}/pai-webhook-a`);
    expect(puts.map((p) => p.body.metadata?.resourceVersion)).toEqual([cached.metadata.resourceVersion, newer.metadata.resourceVersion]);
    expect(secretFromObject(fake.get("secrets", "default", "pai-webhook-a")!).data).toEqual({ token: "three" });
  });

  test("an error other than 409 is thrown and nothing more is tried", async () => {
    const { store, owner } = await withOwner();
    fake.override(
      (s) => s.method === "POST" && s.path === secretsPath,
      () => statusResponse(422, "Invalid", 'Secret "pai-webhook-a" is invalid: metadata.ownerReferences[0].uid: Invalid value'),
    );
    const err = await store.putOwnedSecret(owner, owned("x")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).status).toBe(422);
    expect(writes().length).toBe(1);
    expect(store.stats().secretWrites).toBe(0);
  });
});

describe("deleteSecret", () => {
  test("deletes, and the cache drops it once the watch says so", async () => {
    fake.store("secrets", secretObject("s", { k: "v" }));
    const { store, changes } = await started();
    expect(store.findSecret("default", "s")?.data).toEqual({ k: "v" });
    await settled(changes, () => store.deleteSecret("default", "s"));
    expect(requestsTo("DELETE", "/api/v1/namespaces/default/secrets/s").length).toBe(1);
    expect(store.findSecret("default", "s")).toBeUndefined();
    expect(store.stats().secretWrites).toBe(1);
  });

  test("a 404 is not an error", async () => {
    const { store } = await started();
    await store.deleteSecret("default", "never-was");
    expect(requestsTo("DELETE", "/api/v1/namespaces/default/secrets/never-was").length).toBe(1);
    expect(store.stats().secretWrites).toBe(0);
  });

  test("other errors propagate as KubeApiError", async () => {
    fake.store("secrets", secretObject("s", { k: "v" }));
    const { store } = await started();
    fake.override(
      (s) => s.method === "DELETE",
      () => statusResponse(403, "Forbidden", 'secrets "s" is forbidden: User "pai" cannot delete resource "secrets"'),
    );
    const err = await store.deleteSecret("default", "s").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).status).toBe(403);
    expect((err as KubeApiError).reason).toBe("Forbidden");
    expect((err as KubeApiError).message).toContain("cannot delete");
    expect(fake.get("secrets", "default", "s")).toBeDefined();

    fake.override(
      (s) => s.method === "DELETE",
      () => new Response("upstream connect error", { status: 503 }),
    );
    const err503 = await store.deleteSecret("default", "s").catch((e: unknown) => e);
    expect(err503).toBeInstanceOf(KubeApiError);
    expect((err503 as KubeApiError).status).toBe(503);
  });
});

describe("onChange", () => {
  test("a listener is told {kind, namespace, name} once the reads already see the change", async () => {
    const store = makeStore();
    const heard: { change: ObjectChange; generation?: number; secret?: Record<string, string> }[] = [];
    store.onChange("agent", (change) => heard.push({ change, generation: store.findAgent(change.namespace, change.name)?.metadata.generation }));
    store.onChange("secret", (change) => heard.push({ change, secret: store.findSecret(change.namespace, change.name)?.data }));
    fake.store("agents", agentObject("a", ECHO, { namespace: "team" }));
    await store.start();
    await until(() => fake.openWatches() === 2, "the watches to be open");
    expect(heard).toEqual([{ change: { kind: "agent", namespace: "team", name: "a" }, generation: 1 }]);

    const made = fake.get("agents", "team", "a")!;
    // One at a time: the agents and secrets watches are separate streams, so their order is not defined.
    fake.store("agents", agentObject("a", ECHO, { namespace: "team", uid: made.metadata.uid, generation: 2 }));
    await until(() => heard.length === 2, "the MODIFIED agent");
    fake.store("secrets", secretObject("s", { k: "v" }, "team"));
    await until(() => heard.length === 3, "the ADDED secret");
    fake.remove("agents", "team", "a");
    await until(() => heard.length === 4, "the DELETED agent");
    expect(heard.slice(1)).toEqual([
      { change: { kind: "agent", namespace: "team", name: "a" }, generation: 2 },
      { change: { kind: "secret", namespace: "team", name: "s" }, secret: { k: "v" } },
      { change: { kind: "agent", namespace: "team", name: "a" }, generation: undefined },
    ]);
  });

  test("unsubscribe stops one listener; a throwing listener does not stop the others", async () => {
    const { store, changes } = await started();
    const first: string[] = [];
    const last: string[] = [];
    const off = store.onChange("agent", (c) => first.push(c.name));
    store.onChange("agent", () => {
      throw new Error("listener exploded");
    });
    store.onChange("agent", (c) => last.push(c.name));

    await settled(changes, () => fake.store("agents", agentObject("one", ECHO)));
    expect(first).toEqual(["one"]);
    expect(last).toEqual(["one"]);
    expect(logLines.some((l) => l.includes("ERROR an object listener failed") && l.includes("listener exploded"))).toBe(true);

    off();
    await settled(changes, () => fake.store("agents", agentObject("two", ECHO)));
    expect(first).toEqual(["one"]);
    expect(last).toEqual(["one", "two"]);
    // Only agent listeners hear agents.
    await settled(changes, () => fake.store("secrets", secretObject("s", {})));
    expect(last).toEqual(["one", "two"]);
  });
});

describe("the namespaces option", () => {
  test("lists and watches only the namespaced collections, and start() waits for every informer", async () => {
    for (const ns of ["a", "b", "c"]) {
      fake.store("agents", agentObject(`agent-${ns}`, ECHO, { namespace: ns }));
      fake.store("secrets", secretObject(`secret-${ns}`, { ns }, ns));
    }
    const release = fake.hold("/api/v1/namespaces/b/secrets");
    const store = makeStore(["a", "b"]);
    let resolved = false;
    const starting = store.start().then(() => (resolved = true));
    // Every other informer has listed and is watching; the held one has asked.
    await until(() => fake.openWatches() === 3 && requestsTo("GET", "/api/v1/namespaces/b/secrets").length === 1, "three watches and the held list");
    await Bun.sleep(20);
    expect(resolved).toBe(false);
    expect(store.findAgent("b", "agent-b")).toBeDefined();
    release();
    await starting;
    expect(resolved).toBe(true);
    expect(store.findSecret("b", "secret-b")?.data).toEqual({ ns: "b" });
    await until(() => fake.openWatches() === 4, "four watches");

    const collections = ["/apis/pai.io/v1/namespaces/a/agents", "/apis/pai.io/v1/namespaces/b/agents", "/api/v1/namespaces/a/secrets", "/api/v1/namespaces/b/secrets"];
    const lists = fake.seen.filter((s) => s.query.get("watch") !== "1").map((s) => s.path);
    const watches = fake.seen.filter((s) => s.query.get("watch") === "1").map((s) => s.path);
    expect(lists.sort()).toEqual([...collections].sort());
    expect(watches.sort()).toEqual([...collections].sort());
    expect(fake.seen.every((s) => s.method === "GET")).toBe(true);

    expect(store.listAgents().map((x) => `${x.metadata.namespace}/${x.metadata.name}`).sort()).toEqual(["a/agent-a", "b/agent-b"]);
    expect(store.findAgent("c", "agent-c")).toBeUndefined();
    expect(store.findSecret("c", "secret-c")).toBeUndefined();
    expect(store.stats()).toMatchObject({ agents: 2, secrets: 2 });
  });

  test("without it, the cluster-wide collections are used", async () => {
    fake.store("agents", agentObject("x", ECHO, { namespace: "far" }));
    const { store } = await started();
    expect(new Set(fake.seen.map((s) => s.path))).toEqual(new Set(["/apis/pai.io/v1/agents", "/api/v1/secrets"]));
    expect(store.findAgent("far", "x")).toBeDefined();
  });
});

describe("stop()", () => {
  test("closes the watches and makes no request after", async () => {
    const { store, changes } = await started();
    // While running, a watch the server ends (after an event) is made again at once.
    await settled(changes, () => fake.store("agents", agentObject("a", ECHO)));
    const watchesBefore = fake.seen.filter((s) => s.query.get("watch") === "1").length;
    fake.endWatches();
    await until(() => fake.seen.filter((s) => s.query.get("watch") === "1").length > watchesBefore, "a new watch while running");

    store.stop();
    await until(() => fake.openWatches() === 0, "the watches to be closed by stop()");
    const seen = fake.seen.length;
    // Longer than the informers' first backoff (250 ms): a running informer would have asked again.
    await Bun.sleep(400);
    expect(fake.seen.length).toBe(seen);
    expect(store.findAgent("default", "a")).toBeDefined();
  });
});
