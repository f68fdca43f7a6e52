/**
 * The Kubernetes face of the API, in the middle: the real core (SQLite in a temp folder, services;
 * no supervisor, so sessions stay Pending) behind `createApi`, driven with `app.handle(new
 * Request(…))`. Discovery, list options, Tables, every write kubectl makes (create, update, the
 * PATCH types, server-side apply, delete with options), fieldValidation, dryRun, preconditions,
 * protobuf bodies, and the Status of each refusal.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createApi } from "../../src/api/app";
import { createCore, type Core } from "../../src/core";
import { createLogger } from "../../src/lib/log";
import { removeDir, tempDir } from "../helpers";

let dir: string;
let core: Core;
let app: ReturnType<typeof createApi>;
let admin: string;
let teamToken: string;

const TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
const AGENTS = "/apis/pai.io/v1/namespaces/default/agents";
const SECRETS = "/api/v1/namespaces/default/secrets";

interface Sent {
  status: number;
  body: Record<string, any>;
  headers: Headers;
}

async function call(method: string, path: string, opts: { body?: unknown; type?: string; accept?: string; token?: string | null } = {}): Promise<Sent> {
  const headers: Record<string, string> = {};
  if (opts.token !== null) headers.authorization = `Bearer ${opts.token ?? admin}`;
  if (opts.accept) headers.accept = opts.accept;
  let body: BodyInit | undefined;
  if (opts.body !== undefined) {
    headers["content-type"] = opts.type ?? "application/json";
    body = opts.body instanceof Uint8Array || typeof opts.body === "string" ? (opts.body as BodyInit) : JSON.stringify(opts.body);
  }
  const res = await app.handle(new Request(`http://localhost${path}`, { method, headers, body }));
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : {}, headers: res.headers };
}

const agent = (name: string, spec: Record<string, unknown> = {}, metadata: Record<string, unknown> = {}) => ({
  apiVersion: "pai.io/v1",
  kind: "Agent",
  metadata: { name, ...metadata },
  spec: { models: ["pai/echo"], ...spec },
});

beforeAll(async () => {
  dir = tempDir("pai-kube-routes-");
  core = createCore({ dataDir: dir, maxSessions: 1, trustedProxies: [], allowPrivateCallbacks: false }, createLogger("error"));
  admin = (await core.tokens.ensureAdminToken(join(dir, "admin-token"))).token;
  teamToken = (await core.tokens.create("team", "team-token")).token;
  app = createApi({ ...core, log: createLogger("error"), ready: () => true, version: "1.2.3", maxBodyBytes: 256 * 1024 });
  core.agents.apply({ name: "web", namespace: "default", labels: { app: "web", tier: "gold" }, spec: { models: ["pai/echo", "anthropic/claude-x"] } }, "api");
  core.agents.apply({ name: "db", namespace: "default", labels: { app: "db" }, spec: { models: ["pai/echo"] } }, "api");
  core.agents.apply({ name: "helper", namespace: "team", spec: { models: ["pai/echo"] } }, "api");
  core.secrets.put({ namespace: "default", name: "plain", data: { k: "v" }, labels: { kind: "plain" } });
});
afterAll(async () => {
  await core.stop();
  removeDir(dir);
});

describe("discovery", () => {
  test("any valid token reads it (a namespace token too); none is a 401", async () => {
    expect((await call("GET", "/apis", { token: teamToken })).status).toBe(200);
    const none = await call("GET", "/api", { token: null });
    expect(none).toMatchObject({ status: 401, body: { kind: "Status", reason: "Unauthorized" } });
  });

  test("/version: Kubernetes 1.32 with pai's version as build metadata", async () => {
    const { body } = await call("GET", "/version");
    expect(body).toMatchObject({ major: "1", minor: "32", gitVersion: "v1.32.0+pai.1.2.3", compiler: "bun" });
  });

  test("/api, /apis and /apis/pai.io", async () => {
    expect((await call("GET", "/api")).body).toMatchObject({ kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: "localhost" }] });
    const groups = (await call("GET", "/apis")).body;
    expect(groups).toEqual({
      kind: "APIGroupList",
      apiVersion: "v1",
      groups: [{ name: "pai.io", versions: [{ groupVersion: "pai.io/v1", version: "v1" }], preferredVersion: { groupVersion: "pai.io/v1", version: "v1" } }],
    });
    expect((await call("GET", "/apis/pai.io")).body).toMatchObject({ kind: "APIGroup", name: "pai.io" });
  });

  test("/api/v1 and /apis/pai.io/v1 list the resources with kinds, names and verbs", async () => {
    const core1 = (await call("GET", "/api/v1")).body;
    expect(core1).toEqual({
      kind: "APIResourceList",
      apiVersion: "v1",
      groupVersion: "v1",
      resources: [
        { name: "namespaces", singularName: "namespace", namespaced: false, kind: "Namespace", verbs: ["get", "list"], shortNames: ["ns"] },
        { name: "secrets", singularName: "secret", namespaced: true, kind: "Secret", verbs: ["create", "delete", "get", "list", "patch", "update", "watch"] },
      ],
    });
    const pai = (await call("GET", "/apis/pai.io/v1")).body as { groupVersion: string; resources: { name: string; kind: string; shortNames?: string[]; verbs: string[] }[] };
    expect(pai.groupVersion).toBe("pai.io/v1");
    expect(pai.resources.map((r) => [r.name, r.kind, r.shortNames ?? []])).toEqual([
      ["agents", "Agent", ["ag"]],
      ["agents/status", "Agent", []],
      ["sessions", "Session", ["sess"]],
      ["accesstokens", "PaiAccessToken", []],
    ]);
    expect(pai.resources[0]!.verbs).toContain("patch");
  });
});

describe("lists and Tables", () => {
  test("kubectl get agents: a Table with the agent columns, metadata-only row objects", async () => {
    const { status, body } = await call("GET", AGENTS, { accept: TABLE });
    expect(status).toBe(200);
    expect(body.kind).toBe("Table");
    expect(body.apiVersion).toBe("meta.k8s.io/v1");
    expect(body.columnDefinitions.map((c: { name: string }) => c.name)).toEqual(["Name", "Models", "Webhook URL", "Ready", "Age", "Generation"]);
    expect(body.rows.map((r: { cells: unknown[] }) => r.cells.slice(0, 4))).toEqual([
      ["db", "pai/echo", "<none>", "Unknown"],
      ["web", "pai/echo,anthropic/claude-x", "<none>", "Unknown"],
    ]);
    expect(body.rows[1].object).toMatchObject({ kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: { name: "web", namespace: "default", labels: { app: "web" } } });
    expect(body.rows[1].object.spec).toBeUndefined();
    expect(Number(body.metadata.resourceVersion)).toBeGreaterThan(0);
  });

  test("without the Table header: an AgentList with a resourceVersion", async () => {
    const { body } = await call("GET", AGENTS, { accept: "application/json" });
    expect(body).toMatchObject({ apiVersion: "pai.io/v1", kind: "AgentList" });
    expect(body.metadata.resourceVersion).toBe(String(core.watch.current()));
    expect(body.items.map((a: { metadata: { name: string } }) => a.metadata.name)).toEqual(["db", "web"]);
  });

  test("all namespaces, label and field selectors", async () => {
    const names = async (path: string) => (await call("GET", path)).body.items.map((a: { metadata: { namespace: string; name: string } }) => `${a.metadata.namespace}/${a.metadata.name}`);
    expect(await names("/apis/pai.io/v1/agents")).toEqual(["default/db", "default/web", "team/helper"]);
    expect(await names(`${AGENTS}?labelSelector=${encodeURIComponent("app in (web,db),tier!=silver")}`)).toEqual(["default/db", "default/web"]);
    expect(await names(`${AGENTS}?labelSelector=tier`)).toEqual(["default/web"]);
    expect(await names(`${AGENTS}?labelSelector=!tier`)).toEqual(["default/db"]);
    expect(await names(`/apis/pai.io/v1/agents?fieldSelector=metadata.namespace%3Dteam`)).toEqual(["team/helper"]);
    expect(await names(`${AGENTS}?fieldSelector=metadata.name!%3Dweb`)).toEqual(["default/db"]);
  });

  test("bad selectors, limits and tokens: 400 Status saying what is wrong; a forged token 410", async () => {
    expect((await call("GET", `${AGENTS}?labelSelector=${encodeURIComponent("app in (web")}`)).body).toMatchObject({ code: 400, reason: "BadRequest", message: expect.stringContaining("unable to parse label selector") });
    expect((await call("GET", `${AGENTS}?fieldSelector=spec.models%3Dx`)).body).toMatchObject({ code: 400, message: expect.stringContaining("field label not supported: spec.models") });
    expect((await call("GET", `${AGENTS}?limit=ten`)).status).toBe(400);
    expect((await call("GET", `${AGENTS}?limit=1&continue=forged`)).status).toBe(400);
    expect((await call("GET", `${AGENTS}?limit=1&continue=${Buffer.alloc(48, 7).toString("base64url")}`)).body).toMatchObject({ code: 410, reason: "Expired" });
  });

  test("limit and continue page through a list", async () => {
    const first = (await call("GET", "/apis/pai.io/v1/agents?limit=2")).body;
    expect(first.items).toHaveLength(2);
    expect(first.metadata.remainingItemCount).toBe(1);
    const second = (await call("GET", `/apis/pai.io/v1/agents?limit=2&continue=${first.metadata.continue}`)).body;
    expect(second.items.map((a: { metadata: { name: string } }) => a.metadata.name)).toEqual(["helper"]);
    expect(second.metadata.continue).toBeUndefined();
  });

  test("kubectl get agent NAME: a one-row Table; includeObject=Object carries the whole agent", async () => {
    const { body } = await call("GET", `${AGENTS}/web?includeObject=Object`, { accept: TABLE });
    expect(body.rows).toHaveLength(1);
    expect(body.rows[0].object.spec.models).toEqual(["pai/echo", "anthropic/claude-x"]);
  });

  test("metadata-only lists for metadata informers", async () => {
    const { body } = await call("GET", AGENTS, { accept: "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json" });
    expect(body.kind).toBe("PartialObjectMetadataList");
    expect(body.items[0]).toEqual({ kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: expect.objectContaining({ name: "db" }) });
  });

  test("secrets: Table columns, selection by type", async () => {
    const { body } = await call("GET", SECRETS, { accept: TABLE });
    expect(body.columnDefinitions.map((c: { name: string }) => c.name)).toEqual(["Name", "Type", "Data", "Age"]);
    expect(body.rows[0].cells.slice(0, 3)).toEqual(["plain", "Opaque", 1]);
    expect((await call("GET", `/api/v1/secrets?fieldSelector=type%3Dpai.io/webhook-token`)).body.items).toEqual([]);
  });
});

describe("errors are Statuses with the reasons kubectl prints", () => {
  test("NotFound names the resource as Kubernetes does", async () => {
    expect((await call("GET", `${AGENTS}/nope`)).body).toEqual({
      kind: "Status",
      apiVersion: "v1",
      status: "Failure",
      message: 'agents.pai.io "nope" not found',
      reason: "NotFound",
      code: 404,
      details: { name: "nope", group: "pai.io", kind: "agents" },
    });
    expect((await call("GET", `${SECRETS}/nope`)).body).toMatchObject({ message: 'secrets "nope" not found', details: { name: "nope", kind: "secrets" } });
  });

  test("AlreadyExists on a second create", async () => {
    expect((await call("POST", AGENTS, { body: agent("twice") })).status).toBe(201);
    expect((await call("POST", AGENTS, { body: agent("twice") })).body).toMatchObject({ code: 409, reason: "AlreadyExists", message: 'agents.pai.io "twice" already exists' });
  });

  test("Invalid with a cause per field, and the kind and name kubectl prints", async () => {
    const { body } = await call("POST", AGENTS, { body: agent("bad", { models: ["gpt4"] }) });
    expect(body).toMatchObject({ code: 422, reason: "Invalid", details: { name: "bad", group: "pai.io", kind: "Agent" } });
    expect(body.details.causes).toEqual([{ reason: "FieldValueInvalid", field: "spec.models[0]", message: expect.stringContaining('unknown model "gpt4"') }]);
  });

  test("Forbidden for a namespace token on agents and secrets; Unauthorized without one", async () => {
    expect((await call("GET", AGENTS, { token: teamToken })).body).toMatchObject({ code: 403, reason: "Forbidden" });
    expect((await call("PATCH", `${SECRETS}/plain`, { token: null, type: "application/merge-patch+json", body: "{not json" })).body).toMatchObject({ code: 401, reason: "Unauthorized" });
  });
});

describe("writes as kubectl sends them", () => {
  const rvOf = (name: string) => core.agents.get("default", name).agent.metadata.resourceVersion;

  test("a merge patch that changes nothing writes nothing; one that changes the spec bumps generation", async () => {
    await call("POST", AGENTS, { body: agent("patched", {}, { annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{}" } }) });
    const rv = rvOf("patched");
    const same = await call("PATCH", `${AGENTS}/patched`, { type: "application/merge-patch+json", body: { spec: { models: ["pai/echo"] } } });
    expect(same.status).toBe(200);
    expect(same.body.metadata).toMatchObject({ resourceVersion: rv, generation: 1 });
    const changed = await call("PATCH", `${AGENTS}/patched`, { type: "application/merge-patch+json", body: { spec: { system: "hi" }, metadata: { labels: { a: "b" } } } });
    expect(changed.body.metadata).toMatchObject({ generation: 2, labels: { a: "b" }, annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{}" } });
    expect(changed.body.spec).toEqual({ models: ["pai/echo"], system: "hi" });
    // kubectl label --overwrite / annotate: metadata only, generation stays.
    const labelled = await call("PATCH", `${AGENTS}/patched`, { type: "application/merge-patch+json", body: { metadata: { labels: { a: null, b: "c" }, annotations: { note: "x" } } } });
    expect(labelled.body.metadata).toMatchObject({ generation: 2, labels: { b: "c" } });
    expect(labelled.body.metadata.annotations.note).toBe("x");
  });

  test("strategic merge and JSON patches", async () => {
    const smp = await call("PATCH", `${AGENTS}/patched`, { type: "application/strategic-merge-patch+json", body: { spec: { maxTurns: 3 } } });
    expect(smp.body.spec.maxTurns).toBe(3);
    const json = await call("PATCH", `${AGENTS}/patched`, {
      type: "application/json-patch+json",
      body: [{ op: "test", path: "/spec/maxTurns", value: 3 }, { op: "replace", path: "/spec/maxTurns", value: 4 }, { op: "add", path: "/spec/models/-", value: "openai/gpt-x" }],
    });
    expect(json.body.spec).toMatchObject({ maxTurns: 4, models: ["pai/echo", "openai/gpt-x"] });
    const failed = await call("PATCH", `${AGENTS}/patched`, { type: "application/json-patch+json", body: [{ op: "test", path: "/spec/maxTurns", value: 99 }] });
    expect(failed.body).toMatchObject({ code: 422, reason: "Invalid", details: { kind: "Agent", name: "patched", causes: [{ field: "/spec/maxTurns" }] } });
  });

  test("a patch result is validated like a PUT: 422 with the field; nothing is written", async () => {
    const rv = rvOf("patched");
    const { body } = await call("PATCH", `${AGENTS}/patched`, { type: "application/merge-patch+json", body: { spec: { models: ["nope"], timeoutSeconds: 0 } } });
    expect(body).toMatchObject({ code: 422, reason: "Invalid" });
    expect(body.details.causes.map((c: { field: string }) => c.field).sort()).toEqual(["spec.models[0]", "spec.timeoutSeconds"]);
    expect(rvOf("patched")).toBe(rv);
  });

  test("patching the name, or a missing object, or with an unknown type", async () => {
    expect((await call("PATCH", `${AGENTS}/patched`, { type: "application/merge-patch+json", body: { metadata: { name: "other" } } })).body).toMatchObject({ code: 400, message: expect.stringContaining("does not match the name in the URL") });
    expect((await call("PATCH", `${AGENTS}/ghost`, { type: "application/merge-patch+json", body: {} })).body).toMatchObject({ code: 404, reason: "NotFound" });
    expect((await call("PATCH", `${AGENTS}/patched`, { type: "application/json", body: {} })).body).toMatchObject({ code: 415, message: expect.stringContaining("application/merge-patch+json") });
    expect((await call("PATCH", `${AGENTS}/patched`, { type: "application/merge-patch+json", body: [1] })).status).toBe(400);
  });

  test("a stale resourceVersion is a 409 Conflict (PUT and PATCH); the current one goes through", async () => {
    const rv = rvOf("patched");
    const stale = await call("PATCH", `${AGENTS}/patched`, { type: "application/merge-patch+json", body: { metadata: { resourceVersion: "1" }, spec: { system: "lost update" } } });
    expect(stale.body).toMatchObject({
      code: 409,
      reason: "Conflict",
      message: 'Operation cannot be fulfilled on agents.pai.io "patched": the object has been modified; please apply your changes to the latest version and try again',
    });
    const current = core.agents.get("default", "patched").agent;
    expect((await call("PUT", `${AGENTS}/patched`, { body: { ...current, metadata: { ...current.metadata, resourceVersion: "1" } } })).status).toBe(409);
    const ok = await call("PUT", `${AGENTS}/patched`, { body: { ...current, metadata: { ...current.metadata, resourceVersion: rv }, spec: { ...current.spec, system: "replaced" } } });
    expect(ok.status).toBe(200);
    expect(ok.body.spec.system).toBe("replaced");
  });

  test("fieldValidation: Strict refuses unknown fields, Warn drops them with a Warning, Ignore drops them", async () => {
    const body = { spec: { bogus: 1 }, extra: true };
    const strict = await call("PATCH", `${AGENTS}/patched?fieldValidation=Strict`, { type: "application/merge-patch+json", body });
    expect(strict.body).toMatchObject({ code: 422, reason: "Invalid" });
    expect(strict.body.details.causes.map((c: { field: string; message: string }) => `${c.field}: ${c.message}`).sort()).toEqual(["extra: unknown field", "spec.bogus: unknown field"]);
    const warn = await call("PATCH", `${AGENTS}/patched?fieldValidation=Warn`, { type: "application/merge-patch+json", body });
    expect(warn.status).toBe(200);
    expect(warn.headers.get("warning")).toBe('299 - "unknown field \\"extra\\"", 299 - "unknown field \\"spec.bogus\\""');
    expect(warn.body.spec.bogus).toBeUndefined();
    const dotted = await call("PATCH", `${AGENTS}/patched?fieldValidation=Warn`, { type: "application/merge-patch+json", body: { spec: { "x.y/z": 1, triggers: [{ webhook: { extra: 1 } }] } } });
    expect([dotted.status, dotted.headers.get("warning")]).toEqual([200, '299 - "unknown field \\"spec.x.y/z\\"", 299 - "unknown field \\"spec.triggers[0].webhook.extra\\""']);
    expect(dotted.body.spec.triggers).toEqual([{ webhook: {} }]);
    const ignore = await call("PATCH", `${AGENTS}/patched?fieldValidation=Ignore`, { type: "application/merge-patch+json", body });
    expect([ignore.status, ignore.headers.get("warning")]).toEqual([200, null]);
    expect((await call("POST", `${AGENTS}?fieldValidation=Warn`, { body: { ...agent("warned"), spec: { models: ["pai/echo"], x: 1 } } })).status).toBe(201);
    expect(core.agents.get("default", "warned").agent.spec).toEqual({ models: ["pai/echo"] });
    expect((await call("POST", `${AGENTS}?fieldValidation=Loose`, { body: agent("never") })).body).toMatchObject({ code: 400, message: expect.stringContaining("fieldValidation must be Strict, Warn or Ignore") });
  });

  test("dryRun=All answers without writing: create, patch, delete", async () => {
    const before = core.watch.current();
    const created = await call("POST", `${AGENTS}?dryRun=All`, { body: agent("dry") });
    expect(created).toMatchObject({ status: 201, body: { metadata: { name: "dry", generation: 1 } } });
    const patched = await call("PATCH", `${AGENTS}/patched?dryRun=All`, { type: "application/merge-patch+json", body: { spec: { system: "dry" } } });
    expect(patched.body.spec.system).toBe("dry");
    expect(patched.body.metadata.generation).toBe(core.agents.get("default", "patched").agent.metadata.generation + 1);
    expect((await call("DELETE", `${AGENTS}/patched`, { body: { kind: "DeleteOptions", apiVersion: "v1", dryRun: ["All"] } })).status).toBe(200);
    expect((await call("DELETE", `${AGENTS}/patched?dryRun=All`)).status).toBe(200);
    expect(core.watch.current()).toBe(before);
    expect(core.agents.find("default", "dry")).toBeUndefined();
    expect(core.agents.find("default", "patched")).toBeDefined();
    expect((await call("POST", `${AGENTS}?dryRun=Some`, { body: agent("dry") })).status).toBe(400);
  });

  test("server-side apply: needs a fieldManager, creates, then the configuration's fields win", async () => {
    const yaml = (system: string, labels: string) => `apiVersion: pai.io/v1\nkind: Agent\nmetadata:\n  name: ssa\n  labels: {${labels}}\nspec:\n  models: [pai/echo]\n  system: ${system}\n`;
    const type = "application/apply-patch+yaml";
    expect((await call("PATCH", `${AGENTS}/ssa`, { type, body: yaml("a", "x: '1'") })).body).toMatchObject({ code: 400, message: "PATCH requests with apply content type require a fieldManager" });
    const created = await call("PATCH", `${AGENTS}/ssa?fieldManager=kubectl&fieldValidation=Strict&force=false`, { type, body: yaml("a", "x: '1'") });
    expect(created.status).toBe(201);
    await call("PATCH", `${AGENTS}/ssa`, { type: "application/merge-patch+json", body: { metadata: { labels: { other: "kept" } }, spec: { maxTurns: 2 } } });
    const updated = await call("PATCH", `${AGENTS}/ssa?fieldManager=kubectl`, { type, body: yaml("b", "x: '2'") });
    expect(updated.status).toBe(200);
    expect(updated.body.metadata.labels).toEqual({ x: "2", other: "kept" });
    // The applied spec is the whole spec: maxTurns, set by another writer, is gone, as for a sole manager.
    expect(updated.body.spec).toEqual({ models: ["pai/echo"], system: "b" });
    expect((await call("PATCH", `${AGENTS}/ssa?fieldManager=kubectl`, { type, body: "spec: [unclosed" })).status).toBe(400);
  });

  test("delete preconditions: another uid or resourceVersion is a 409 Conflict", async () => {
    await call("POST", AGENTS, { body: agent("doomed") });
    const { uid, resourceVersion } = core.agents.get("default", "doomed").agent.metadata;
    expect((await call("DELETE", `${AGENTS}/doomed`, { body: { preconditions: { uid: "other" } } })).body).toMatchObject({ code: 409, reason: "Conflict", message: expect.stringContaining("Precondition failed: UID") });
    expect((await call("DELETE", `${AGENTS}/doomed`, { body: { preconditions: { resourceVersion: "1" } } })).status).toBe(409);
    expect((await call("DELETE", `${AGENTS}/doomed`, { body: { kind: "Pod" } })).status).toBe(400);
    const gone = await call("DELETE", `${AGENTS}/doomed`, { body: { propagationPolicy: "Background", preconditions: { uid, resourceVersion } } });
    expect(gone.status).toBe(200);
    expect(core.agents.find("default", "doomed")).toBeUndefined();
  });
});

describe("secrets", () => {
  // kubectl create secret generic s --from-literal=k=v --from-literal=bin=$'a\x01b', as kubectl 1.32 sent it.
  const CAPTURED = "6b3873000a0c0a027631120653656372657412290a110a017312001a0022002a00320038004200120a0a0362696e120361016212060a016b1201761a001a002200";
  const PROTOBUF = "application/vnd.kubernetes.protobuf";

  test("kubectl create secret generic: a protobuf body creates the secret", async () => {
    const res = await call("POST", `${SECRETS}?fieldManager=kubectl-create&fieldValidation=Strict`, { type: PROTOBUF, body: new Uint8Array(Buffer.from(CAPTURED, "hex")) });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ kind: "Secret", metadata: { name: "s", namespace: "default" }, type: "Opaque" });
    expect(core.secrets.get("default", "s").data).toEqual({ k: "v", bin: "a\x01b" });
  });

  test("protobuf: malformed bytes are a 400, and agents do not take it (415)", async () => {
    expect((await call("POST", SECRETS, { type: PROTOBUF, body: new Uint8Array([0x6b, 0x38, 0x73, 0x00, 0x0a, 0x7f]) })).body).toMatchObject({ code: 400, message: expect.stringContaining("protobuf") });
    expect((await call("POST", AGENTS, { type: PROTOBUF, body: new Uint8Array(Buffer.from(CAPTURED, "hex")) })).status).toBe(415);
  });

  test("kubectl label (strategic merge patch) and a stale resourceVersion", async () => {
    const labelled = await call("PATCH", `${SECRETS}/plain`, { type: "application/strategic-merge-patch+json", body: { metadata: { labels: { extra: "1" } } } });
    expect(labelled.body.metadata.labels).toEqual({ kind: "plain", extra: "1" });
    expect(labelled.body.data).toEqual({ k: Buffer.from("v").toString("base64") });
    expect((await call("PATCH", `${SECRETS}/plain`, { type: "application/merge-patch+json", body: { metadata: { resourceVersion: "1" } } })).body).toMatchObject({ code: 409, reason: "Conflict" });
  });

  test("annotations are kept (kubectl apply's last-applied-configuration among them), and removed by a null", async () => {
    const res = await call("PATCH", `${SECRETS}/plain`, { type: "application/merge-patch+json", body: { metadata: { annotations: { a: "b", "kubectl.kubernetes.io/last-applied-configuration": "{}" } } } });
    expect([res.status, res.headers.get("warning")]).toEqual([200, null]);
    expect(core.secrets.get("default", "plain").annotations).toEqual({ a: "b", "kubectl.kubernetes.io/last-applied-configuration": "{}" });
    const removed = await call("PATCH", `${SECRETS}/plain`, { type: "application/merge-patch+json", body: { metadata: { annotations: { a: null } } } });
    expect(removed.body.metadata.annotations).toEqual({ "kubectl.kubernetes.io/last-applied-configuration": "{}" });
  });

  test("data patches: base64 checked, text only; stringData merges over data", async () => {
    const patched = await call("PATCH", `${SECRETS}/plain`, { type: "application/merge-patch+json", body: { data: { k2: Buffer.from("two").toString("base64") }, stringData: { k3: "three" } } });
    expect(core.secrets.get("default", "plain").data).toEqual({ k: "v", k2: "two", k3: "three" });
    expect(patched.body.data.k3).toBe(Buffer.from("three").toString("base64"));
    expect((await call("PATCH", `${SECRETS}/plain`, { type: "application/merge-patch+json", body: { data: { bad: Buffer.from([0xff, 0xfe]).toString("base64") } } })).body).toMatchObject({ code: 400, message: expect.stringContaining("not UTF-8") });
  });

  test("unknown fields: Strict 422, Warn accepted with a Warning", async () => {
    expect((await call("PUT", `${SECRETS}/u`, { body: { metadata: { name: "u" }, stringData: { k: "v" }, spec: {} } })).body).toMatchObject({ code: 422, reason: "Invalid", details: { causes: [{ field: "spec" }] } });
    const warn = await call("PUT", `${SECRETS}/u?fieldValidation=Warn`, { body: { metadata: { name: "u" }, stringData: { k: "v" }, spec: {} } });
    expect([warn.status, warn.headers.get("warning")]).toEqual([201, '299 - "unknown field \\"spec\\""']);
  });

  test("controller-managed secrets: read and deleted, never written", async () => {
    core.secrets.put({ namespace: "default", name: "pai-webhook-web", type: "pai.io/webhook-token", data: { token: "t" } });
    expect((await call("PATCH", `${SECRETS}/pai-webhook-web`, { type: "application/merge-patch+json", body: { metadata: { labels: { a: "b" } } } })).body).toMatchObject({ code: 400, message: expect.stringContaining("managed by the controller") });
    expect((await call("DELETE", `${SECRETS}/pai-webhook-web`, { body: { propagationPolicy: "Background" } })).status).toBe(200);
    expect(core.secrets.find("default", "pai-webhook-web")).toBeUndefined();
  });
});

describe("watch", () => {
  /** Starts a watch and returns a reader of its events (JSON lines; blank lines skipped). */
  async function watch(path: string, accept?: string) {
    const abort = new AbortController();
    const res = await app.handle(new Request(`http://localhost${path}`, { headers: { authorization: `Bearer ${admin}`, ...(accept ? { accept } : {}) }, signal: abort.signal }));
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let buffered = "";
    const next = async (): Promise<{ type: string; object: Record<string, any> }> => {
      for (;;) {
        const nl = buffered.indexOf("\n");
        if (nl !== -1) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line) return JSON.parse(line);
          continue;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error("the watch ended");
        buffered += new TextDecoder().decode(value);
      }
    };
    return { next, stop: () => abort.abort() };
  }

  test("a Table watch of secrets, filtered by a field selector (kubectl get secret NAME -w)", async () => {
    const w = await watch(`${SECRETS}?watch=true&fieldSelector=metadata.name%3Dwatched`, TABLE);
    try {
      core.secrets.put({ namespace: "default", name: "unwatched", data: { k: "v" } });
      core.secrets.put({ namespace: "default", name: "watched", data: { k: "v" } });
      const added = await w.next();
      expect(added.type).toBe("ADDED");
      expect(added.object).toMatchObject({ kind: "Table", rows: [{ cells: ["watched", "Opaque", 1, expect.any(String)] }] });
      core.secrets.put({ namespace: "default", name: "watched", data: { k: "v", k2: "w" } });
      expect((await w.next()).object.rows[0].cells.slice(0, 3)).toEqual(["watched", "Opaque", 2]);
    } finally {
      w.stop();
    }
  });

  test("a JSON watch of agents with a label selector, from a resourceVersion", async () => {
    const from = core.watch.current();
    const w = await watch(`${AGENTS}?watch=1&resourceVersion=${from}&labelSelector=watch%3Dme`);
    try {
      core.agents.apply({ name: "quiet", namespace: "default", spec: { models: ["pai/echo"] } }, "api");
      core.agents.apply({ name: "loud", namespace: "default", labels: { watch: "me" }, spec: { models: ["pai/echo"] } }, "api");
      expect(await w.next()).toMatchObject({ type: "ADDED", object: { kind: "Agent", metadata: { name: "loud" } } });
      core.agents.remove("default", "loud");
      expect(await w.next()).toMatchObject({ type: "DELETED", object: { metadata: { name: "loud" } } });
    } finally {
      w.stop();
    }
  });

  test("bad watch parameters are a 400 before the stream starts", async () => {
    expect((await call("GET", `${AGENTS}?watch=true&resourceVersion=abc`)).status).toBe(400);
    expect((await call("GET", `${AGENTS}?watch=true&labelSelector=${encodeURIComponent("a in (")}`)).status).toBe(400);
  });
});

describe("sessions", () => {
  beforeAll(async () => {
    const web = core.agents.get("default", "web").agent;
    for (let i = 0; i < 5; i++) await core.sessions.start(web, { title: `task ${i}\nmore lines`, origin: { kind: "api" }, kind: "run" });
    await core.sessions.start(core.agents.get("team", "helper").agent, { title: "team task", origin: { kind: "api" }, kind: "run" });
  });
  const SESSIONS = "/apis/pai.io/v1/namespaces/default/sessions";

  test("kubectl get sessions: a Table with NAME, AGENT, PHASE, AGE, TITLE", async () => {
    const { body } = await call("GET", SESSIONS, { accept: TABLE });
    expect(body.columnDefinitions.map((c: { name: string }) => c.name)).toEqual(["Name", "Agent", "Phase", "Age", "Title"]);
    expect(body.rows).toHaveLength(5);
    expect(body.rows[0].cells).toEqual(["web-run-00000005", "web", "Pending", expect.any(String), "task 4"]);
  });

  test("objects carry metadata; one session reads as kubectl get session NAME asks", async () => {
    const one = await call("GET", `${SESSIONS}/web-run-00000001`);
    expect(one.body).toMatchObject({ kind: "Session", metadata: { name: "web-run-00000001", namespace: "default" }, session: "web-run-00000001", phase: "Pending" });
    expect((await call("GET", `${SESSIONS}/nope`)).body).toMatchObject({ code: 404, message: 'sessions.pai.io "nope" not found' });
  });

  test("limit and continue page newest first; selectors by phase and agent", async () => {
    const names: string[] = [];
    let token = "";
    for (let i = 0; i < 5; i++) {
      const { body } = await call("GET", `${SESSIONS}?limit=2${token ? `&continue=${token}` : ""}`);
      names.push(...body.items.map((s: { metadata: { name: string } }) => s.metadata.name));
      if (!body.metadata.continue) break;
      token = body.metadata.continue;
    }
    expect(names).toEqual([5, 4, 3, 2, 1].map((n) => `web-run-0000000${n}`));
    expect((await call("GET", `${SESSIONS}?fieldSelector=phase%3DRunning`)).body.items).toEqual([]);
    expect((await call("GET", `/apis/pai.io/v1/sessions?fieldSelector=agentDefinition%3Dhelper`)).body.items.map((s: { metadata: { name: string } }) => s.metadata.name)).toEqual(["helper-run-00000001"]);
  });

  test("a namespace token lists its own namespace's sessions, also with -A", async () => {
    const { body } = await call("GET", "/apis/pai.io/v1/sessions", { token: teamToken, accept: TABLE });
    expect(body.rows.map((r: { cells: string[] }) => r.cells[0])).toEqual(["helper-run-00000001"]);
    expect((await call("GET", SESSIONS, { token: teamToken })).status).toBe(403);
  });

  test("sessions are not deleted, replaced, patched or watched: 405", async () => {
    expect((await call("DELETE", `${SESSIONS}/web-run-00000001`)).body).toMatchObject({ code: 405, reason: "MethodNotAllowed" });
    expect((await call("PATCH", `${SESSIONS}/web-run-00000001`, { type: "application/merge-patch+json", body: {} })).status).toBe(405);
    expect((await call("GET", `${SESSIONS}?watch=true`)).status).toBe(405);
    expect((await call("DELETE", `${SESSIONS}/web-run-00000001`, { token: null })).status).toBe(401);
  });
});
