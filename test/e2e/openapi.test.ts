/**
 * The OpenAPI documents of a real `pai serve`: /openapi/json passes a real validator
 * (@readme/openapi-parser), describes every operation (ids, answers, errors, bodies, typed query
 * parameters), and real answers fit its schemas; a client generated from it with openapi-typescript
 * type-checks with openapi-fetch and drives the server; the webhook body the docs page offers can
 * be sent as is. /openapi/v3 is what kubectl reads: checked by shape here, and with the real
 * kubectl (`apply --validate=strict`, explain, a Secret's strategic merge patch).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { validate } from "@readme/openapi-parser";
import { AgentManifest } from "../../src/domain/agent";
import { WebhookBody } from "../../src/domain/webhook";
import { toOpenApiSchema } from "../../src/api/openapi/convert";
import { derivedOperationId } from "../../src/api/openapi/document";
import { MAX_EVENTS_PAGE, OPERATIONS } from "../../src/api/openapi/operations";
import * as S from "../../src/api/openapi/schemas";
import { CRD_PATH } from "../../src/api/openapi/crd";
import { eventually, removeDir, ROOT, startServer, tempDir, type TestServer } from "../helpers";
import { HAVE_KUBECTL, startKubeServer, warnSkippedWithoutKubectl, type KubeServer } from "../kube";
import { checkClosed } from "../openapi-check";

type Doc = { openapi: string; paths: Record<string, Record<string, any>>; components: { schemas: Record<string, any> } };
const METHODS = ["get", "put", "post", "delete", "patch", "head", "options", "trace"];

let server: TestServer;
let manifests: string;
let doc: Doc;
const ops = () => Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).filter(([m]) => METHODS.includes(m)).map(([method, op]) => ({ path, method, op })));

beforeAll(async () => {
  manifests = tempDir("pai-openapi-manifests-");
  writeFileSync(join(manifests, "echo.yaml"), "apiVersion: pai.io/v1\nkind: Agent\nmetadata:\n  name: echo\nspec:\n  models: [pai/echo]\n  triggers:\n    - webhook: {}\n");
  server = await startServer({ manifests });
  await eventually(async () => (await (await server.api("/apis/pai.io/v1/namespaces/default/agents/echo")).json()).status?.webhookUrl, 10_000, "echo's webhook URL");
  doc = (await (await fetch(`${server.url}/openapi/json`)).json()) as Doc;
});

afterAll(async () => {
  await server?.stop();
  removeDir(manifests);
});

describe("/openapi/json", () => {
  test("is valid OpenAPI 3 for a real validator (@readme/openapi-parser)", async () => {
    expect(doc.openapi).toBe("3.0.3");
    const result = await validate(structuredClone(doc) as never);
    expect(result).toMatchObject({ valid: true, specification: "OpenAPI" });
    // The validator is not a rubber stamp: the 3.1 keyword `const` and a missing `responses` are errors.
    const broken = structuredClone(doc);
    broken.components.schemas.Agent.properties.kind.const = "Agent";
    delete broken.paths["/healthz"]!.get.responses;
    const refused = await validate(broken as never);
    expect(refused.valid).toBe(false);
    expect(JSON.stringify((refused as { errors: unknown }).errors)).toContain("const");
  });

  test("every operation has a named id (no stand-in), its answers and its errors as Status", () => {
    const ids = ops().map((o) => o.op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const { path, method, op } of ops()) {
      const where = `${method.toUpperCase()} ${path}`;
      // A route missing from operations.ts gets a derived id: add it there.
      expect({ where, known: where in OPERATIONS }).toEqual({ where, known: true });
      expect(op.operationId).not.toBe(derivedOperationId(method, path));
      const codes = Object.keys(op.responses);
      const ok = codes.filter((c) => /^2/.test(c));
      expect({ where, ok: ok.length > 0 }).toEqual({ where, ok: true });
      for (const c of ok) if (c !== "204") expect({ where, c, schema: Object.values(op.responses[c].content ?? {}).every((m: any) => m.schema) && !!op.responses[c].content }).toEqual({ where, c, schema: true });
      // Errors are Status objects (/readyz's 503 is its own answer, listed with its successes).
      for (const c of OPERATIONS[where]!.errors.map(String)) expect({ where, c, ref: op.responses[c].content["application/json"].schema.$ref }).toEqual({ where, c, ref: "#/components/schemas/Status" });
      for (const c of codes.filter((c) => /^[45]/.test(c))) expect({ where, c, schema: !!op.responses[c].content["application/json"].schema }).toEqual({ where, c, schema: true });
      for (const p of (op.parameters ?? []).filter((p: any) => p.in === "path")) expect(path).toContain(`{${p.name}}`);
      for (const name of [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1])) expect((op.parameters ?? []).some((p: any) => p.in === "path" && p.name === name)).toBe(true);
      if (op.requestBody) for (const [type, media] of Object.entries(op.requestBody.content)) expect({ where, type, schema: !!(media as any).schema }).toEqual({ where, type, schema: true });
    }
  });

  test("operation ids make good method names", () => {
    const id = (method: string, path: string) => doc.paths[path]![method].operationId;
    expect(id("get", "/apis/pai.io/v1/namespaces/{namespace}/agents")).toBe("listAgents");
    expect(id("get", "/apis/pai.io/v1/namespaces/{namespace}/agents/{name}")).toBe("readAgent");
    expect(id("post", "/apis/pai.io/v1/namespaces/{namespace}/agents")).toBe("createAgent");
    expect(id("put", "/apis/pai.io/v1/namespaces/{namespace}/agents/{name}")).toBe("replaceAgent");
    expect(id("patch", "/apis/pai.io/v1/namespaces/{namespace}/agents/{name}")).toBe("patchAgent");
    expect(id("delete", "/apis/pai.io/v1/namespaces/{namespace}/agents/{name}")).toBe("deleteAgent");
    expect(id("post", "/apis/pai.io/v1/namespaces/{namespace}/sessions")).toBe("startSession");
    expect(id("get", "/agents/{session}")).toBe("readSession");
    expect(id("get", "/agents/{session}/events")).toBe("listSessionEvents");
    expect(id("post", "/webhooks/{namespace}/{name}/{token}")).toBe("invokeWebhook");
    for (const o of ops()) expect(o.op.operationId).toMatch(/^[a-z][A-Za-z0-9]+$/);
  });

  test("components name the resources, their lists, events and Status", () => {
    for (const name of ["Agent", "AgentList", "Secret", "SecretList", "Session", "SessionList", "Event", "EventList", "Status", "AgentManifest", "WebhookBody"])
      expect(Object.keys(doc.components.schemas)).toContain(name);
    const list = doc.paths["/apis/pai.io/v1/namespaces/{namespace}/agents"]!.get;
    expect(list.responses["200"].content["application/json"].schema).toEqual({ $ref: "#/components/schemas/AgentList" });
    expect(doc.components.schemas.AgentList.properties.items.items).toEqual({ $ref: "#/components/schemas/Agent" });
    expect(doc.components.schemas.Agent.properties.spec).toEqual({ $ref: "#/components/schemas/AgentSpec" });
  });

  test("request bodies are the schemas the routes validate with", () => {
    const body = (method: string, path: string) => doc.paths[path]![method].requestBody;
    const create = body("post", "/apis/pai.io/v1/namespaces/{namespace}/agents");
    expect(Object.keys(create.content)).toEqual(["application/json", "application/yaml"]);
    expect(create.content["application/json"].schema).toEqual({ $ref: "#/components/schemas/AgentManifest" });
    // The component is the domain's AgentManifest, converted (its sub-schemas by reference).
    const refs = new Map<object, string>([[AgentManifest.properties.spec, "AgentSpec"]]);
    expect(doc.components.schemas.AgentManifest).toEqual(toOpenApiSchema(AgentManifest, refs));
    expect(body("post", "/api/v1/namespaces/{namespace}/secrets").content["application/json"].schema).toEqual({ $ref: "#/components/schemas/SecretInput" });
    expect(Object.keys(doc.components.schemas.SecretInput.properties)).toEqual(expect.arrayContaining(["metadata", "data", "stringData", "type"]));
    expect(body("post", "/apis/pai.io/v1/namespaces/{namespace}/sessions").content["application/json"].schema).toEqual({ $ref: "#/components/schemas/SessionStart" });
    expect(doc.components.schemas.SessionStart.required).toEqual(["agentDefinition", "title"]);
    expect(body("post", "/apis/pai.io/v1/namespaces/{namespace}/accesstokens").required).toBe(false);
    const patch = body("patch", "/apis/pai.io/v1/namespaces/{namespace}/agents/{name}");
    expect(patch.content["application/json-patch+json"].schema).toEqual({ $ref: "#/components/schemas/JsonPatch" });
    expect(patch.content["application/merge-patch+json"].schema).toEqual({ $ref: "#/components/schemas/Patch" });
    expect(doc.components.schemas.WebhookBody).toEqual(toOpenApiSchema(WebhookBody));
  });

  test("query parameters are typed: limit and after are integers with the bounds the handler enforces", async () => {
    const q = (method: string, path: string) => Object.fromEntries((doc.paths[path]![method].parameters ?? []).filter((p: any) => p.in === "query").map((p: any) => [p.name, p.schema]));
    const events = q("get", "/agents/{session}/events");
    expect(events.after).toEqual({ type: "integer", minimum: 0, default: 0 });
    expect(events.limit).toEqual({ type: "integer", minimum: 1, maximum: MAX_EVENTS_PAGE, default: MAX_EVENTS_PAGE });
    const list = q("get", "/apis/pai.io/v1/namespaces/{namespace}/agents");
    expect(list.limit.type).toBe("integer");
    expect(list.watch.type).toBe("boolean");
    expect(list.labelSelector.type).toBe("string");
    expect(q("patch", "/apis/pai.io/v1/namespaces/{namespace}/agents/{name}").fieldValidation).toEqual({ type: "string", enum: ["Strict", "Warn", "Ignore"] });
    // What the document says is what the handler does.
    const start = await server.api("/apis/pai.io/v1/namespaces/default/sessions", { method: "POST", json: { agentDefinition: "echo", title: "bounds" } });
    const name = ((await start.json()) as { session: string }).session;
    const status = async (query: string) => (await server.api(`/agents/${name}/events?namespace=default&${query}`)).status;
    expect(await status(`limit=${MAX_EVENTS_PAGE}`)).toBe(200);
    expect(await status("limit=1&after=0")).toBe(200);
    expect(await status(`limit=${MAX_EVENTS_PAGE + 1}`)).toBe(400);
    expect(await status("limit=0")).toBe(400);
    expect(await status("after=-1")).toBe(400);
    expect(await status("limit=ten")).toBe(400);
  });

  test("the webhook POST documents a JSON and a form body with an example, and that example, sent as is, starts a session", async () => {
    const post = doc.paths["/webhooks/{namespace}/{name}/{token}"]!.post;
    expect(post.security).toEqual([]);
    const content = post.requestBody.content;
    expect(Object.keys(content).sort()).toEqual(["application/json", "application/x-www-form-urlencoded"]);
    for (const media of Object.values(content) as any[]) expect(media.example).toEqual({ title: "what sound does a cow make?", wait: 30 });
    expect(content["application/x-www-form-urlencoded"].encoding).toEqual({ env: { contentType: "application/json" } });
    expect(Object.keys(content["application/x-www-form-urlencoded"].schema.properties)).toEqual(["title", "env", "wait", "callbackUrl", "payload"]);
    expect(post.responses["200"].content["application/json"].schema).toEqual({ $ref: "#/components/schemas/WebhookAccepted" });

    // What "Try it out" sends: the example, as JSON and as a form.
    const url = (((await (await server.api("/apis/pai.io/v1/namespaces/default/agents/echo")).json()) as any).status.webhookUrl as string).replace(/^https?:\/\/[^/]+/, server.url);
    const asJson = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(content["application/json"].example) });
    expect(asJson.status).toBe(200);
    const answer = await asJson.json();
    expect(checkClosed(S.WebhookAccepted, answer)).toEqual([]);
    expect(answer).toMatchObject({ agentDefinition: "echo", phase: "Complete", response: "what sound does a cow make?" });
    const form = new URLSearchParams(Object.entries(content["application/x-www-form-urlencoded"].example).map(([k, v]) => [k, String(v)]));
    const asForm = await fetch(url, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: form.toString() });
    expect(asForm.status).toBe(200);
    expect(await asForm.json()).toMatchObject({ phase: "Complete", response: "what sound does a cow make?" });
    const ping = await fetch(url);
    expect(checkClosed(S.WebhookPing, await ping.json())).toEqual([]);
  });

  test("the docs page is Swagger UI on this document, offline", async () => {
    const html = await (await fetch(`${server.url}/openapi`)).text();
    expect(html).toContain("SwaggerUIBundle");
    expect(html).toContain("openapi/json");
    expect(html).not.toMatch(/(src|href)="https?:/);
  });
});

describe("real answers fit the documented schemas (every object closed)", () => {
  test("agents, secrets, sessions, events, tokens, namespaces, Status, health", async () => {
    const get = async (path: string, init?: Parameters<TestServer["api"]>[1]) => {
      const res = await server.api(path, init);
      return { status: res.status, body: (await res.json()) as any };
    };
    const fits = (schema: Parameters<typeof checkClosed>[0], value: unknown) => expect(checkClosed(schema, value)).toEqual([]);
    fits(S.AgentList, (await get("/apis/pai.io/v1/namespaces/default/agents")).body);
    fits(S.AgentList, (await get("/apis/pai.io/v1/agents")).body);
    const agent = (await get("/apis/pai.io/v1/namespaces/default/agents/echo")).body;
    fits(S.Agent, agent);
    expect(agent.status.conditions.length).toBeGreaterThan(0);
    fits(S.SecretList, (await get("/api/v1/namespaces/default/secrets")).body);
    fits(S.Secret, (await get("/api/v1/namespaces/default/secrets/pai-webhook-echo")).body);
    const created = await get("/api/v1/namespaces/default/secrets", { method: "POST", json: { metadata: { name: "fits", labels: { a: "b" } }, stringData: { k: "v" } } });
    expect(created.status).toBe(201);
    fits(S.Secret, created.body);
    const started = await get("/apis/pai.io/v1/namespaces/default/sessions", { method: "POST", json: { agentDefinition: "echo", title: "fit?", env: [{ name: "A", value: "1" }] } });
    expect(started.status).toBe(201);
    fits(S.Session, started.body);
    const name = started.body.session as string;
    const done = await eventually(async () => {
      const s = (await get(`/agents/${name}?namespace=default`)).body;
      return s.phase === "Complete" ? s : undefined;
    });
    fits(S.Session, done);
    fits(S.SessionList, (await get("/apis/pai.io/v1/namespaces/default/sessions")).body);
    fits(S.SessionList, (await get("/apis/pai.io/v1/sessions")).body);
    const events = (await get(`/agents/${name}/events?namespace=default`)).body;
    fits(S.EventList, events);
    expect(events.events.length).toBeGreaterThan(1);
    const token = await get("/apis/pai.io/v1/namespaces/default/accesstokens", { method: "POST", json: { metadata: { name: "ci" } } });
    fits(S.PaiAccessToken, token.body);
    fits(S.PaiAccessTokenList, (await get("/apis/pai.io/v1/namespaces/default/accesstokens")).body);
    fits(S.Status, (await get(`/apis/pai.io/v1/namespaces/default/accesstokens/${token.body.metadata.uid}`, { method: "DELETE" })).body);
    const missing = await get("/apis/pai.io/v1/namespaces/default/agents/nope");
    expect(missing.status).toBe(404);
    fits(S.Status, missing.body);
    const invalid = await get("/apis/pai.io/v1/namespaces/default/agents", { method: "POST", json: { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name: "bad" }, spec: { models: ["gpt4"] } } });
    expect(invalid.status).toBe(422);
    fits(S.Status, invalid.body);
    const anonymous = await fetch(`${server.url}/apis/pai.io/v1/agents`);
    expect(anonymous.status).toBe(401);
    fits(S.Status, await anonymous.json());
    fits(S.Health, await (await fetch(`${server.url}/healthz`)).json());
    fits(S.VersionInfo, (await get("/version")).body);
    fits(S.APIVersions, (await get("/api")).body);
    fits(S.APIGroupList, (await get("/apis")).body);
    fits(S.APIGroup, (await get("/apis/pai.io")).body);
    fits(S.APIResourceList, (await get("/api/v1")).body);
    fits(S.APIResourceList, (await get("/apis/pai.io/v1")).body);
    fits(S.NamespaceList, (await get("/api/v1/namespaces")).body);
    fits(S.Namespace, (await get("/api/v1/namespaces/default")).body);
  });
});

describe("a client generated from the live document (openapi-typescript + openapi-fetch)", () => {
  let dir: string;
  beforeAll(async () => {
    dir = tempDir("pai-openapi-client-");
    // The generator's own command line, on the live URL.
    const gen = Bun.spawnSync([join(ROOT, "node_modules", ".bin", "openapi-typescript"), `${server.url}/openapi/json`, "-o", join(dir, "schema.d.ts")], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    if (gen.exitCode !== 0) throw new Error(`openapi-typescript failed: ${gen.stderr.toString()}`);
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ESNext",
          module: "ESNext",
          moduleResolution: "bundler",
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: [],
          lib: ["ESNext", "DOM"],
          // The project's openapi-fetch, for tsc and for Bun alike.
          paths: { "openapi-fetch": [join(ROOT, "node_modules", "openapi-fetch")] },
        },
        files: ["client.ts"],
      }),
    );
  });
  afterAll(() => removeDir(dir));

  const CLIENT = `import createClient from "openapi-fetch";
import type { paths } from "./schema";

declare const process: { argv: string[] };
const [baseUrl, token] = process.argv.slice(2) as [string, string];
const client = createClient<paths>({ baseUrl, headers: { authorization: \`Bearer \${token}\` } });

const agents = await client.GET("/apis/pai.io/v1/namespaces/{namespace}/agents", { params: { path: { namespace: "default" }, query: { limit: 10 } } });
if (!agents.data) throw new Error(\`listAgents: \${agents.response.status}\`);
const names: string[] = agents.data.items.map((a) => a.metadata.name);
const models: string[] = agents.data.items.flatMap((a) => a.spec.models);
const started = await client.POST("/apis/pai.io/v1/namespaces/{namespace}/sessions", {
  params: { path: { namespace: "default" } },
  body: { agentDefinition: "echo", title: "what sound does a cow make?" },
});
if (!started.data) throw new Error(\`startSession: \${started.error?.message}\`);
const session: string = started.data.session;
let phase: "Pending" | "Running" | "Complete" | "Error" | "Cancelled" = started.data.phase;
let response: string | null = null;
for (let i = 0; i < 400 && phase !== "Complete" && phase !== "Error"; i++) {
  await new Promise((r) => setTimeout(r, 25));
  const read = await client.GET("/agents/{session}", { params: { path: { session }, query: { namespace: "default" } } });
  if (!read.data) throw new Error(\`readSession: \${read.error?.message}\`);
  phase = read.data.phase;
  response = read.data.response;
}
const events = await client.GET("/agents/{session}/events", { params: { path: { session }, query: { namespace: "default", after: 0, limit: 100 } } });
if (!events.data) throw new Error(\`listSessionEvents: \${events.error?.message}\`);
const types: string[] = events.data.events.map((e) => e.type);
const lastId: number | undefined = events.data.lastEventId;
const missing = await client.GET("/apis/pai.io/v1/namespaces/{namespace}/agents/{name}", { params: { path: { namespace: "default", name: "no-such-agent" } } });
const reason: string | undefined = missing.error?.reason;
console.log(JSON.stringify({ names, models, session, phase, response, types, lastId, reason, status: missing.response.status }));
`;

  const tsc = (file: string) => {
    writeFileSync(join(dir, "tsconfig.json"), readFileSync(join(dir, "tsconfig.json"), "utf8").replace(/"files":\["[^"]+"\]/, `"files":["${file}"]`));
    const r = Bun.spawnSync([join(ROOT, "node_modules", ".bin", "tsc"), "-p", dir], { cwd: dir, stdout: "pipe", stderr: "pipe" });
    return { code: r.exitCode, out: r.stdout.toString() + r.stderr.toString() };
  };

  test("type-checks with the project's TypeScript: answers are typed, not never or any", () => {
    writeFileSync(join(dir, "client.ts"), CLIENT);
    expect(tsc("client.ts")).toEqual({ code: 0, out: "" });
    // Types that are wrong are caught: a name is no number, a limit no string, a session needs its title.
    writeFileSync(
      join(dir, "wrong.ts"),
      `import createClient from "openapi-fetch";
import type { paths } from "./schema";
const client = createClient<paths>({ baseUrl: "http://x" });
const agents = await client.GET("/apis/pai.io/v1/namespaces/{namespace}/agents", { params: { path: { namespace: "default" } } });
export const n: number = agents.data!.items[0]!.metadata.name;
await client.GET("/agents/{session}/events", { params: { path: { session: "s" }, query: { limit: "ten" } } });
await client.POST("/apis/pai.io/v1/namespaces/{namespace}/sessions", { params: { path: { namespace: "default" } }, body: { agentDefinition: "echo" } });
`,
    );
    const wrong = tsc("wrong.ts");
    expect(wrong.code).not.toBe(0);
    expect(wrong.out).toContain("wrong.ts(5,");
    expect(wrong.out).toContain("wrong.ts(6,");
    expect(wrong.out).toContain("wrong.ts(7,");
  }, 60_000);

  test("run with Bun against pai serve: lists agents, starts a session, reads it and its events", async () => {
    writeFileSync(join(dir, "client.ts"), CLIENT);
    const proc = Bun.spawn([process.execPath, join(dir, "client.ts"), server.url, server.token], { cwd: dir, stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect({ code, err }).toEqual({ code: 0, err: "" });
    const r = JSON.parse(out);
    expect(r.names).toContain("echo");
    expect(r.models).toContain("pai/echo");
    expect(r.session).toMatch(/^echo-run-[0-9a-f]{8}$/);
    expect(r.phase).toBe("Complete");
    expect(r.response).toBe("what sound does a cow make?");
    expect(r.types[0]).toBe("session.status_running");
    expect(r.types.at(-1)).toBe("session.status_closed");
    expect(r.lastId).toBe(r.types.length);
    expect({ status: r.status, reason: r.reason }).toEqual({ status: 404, reason: "NotFound" });
  }, 30_000);
});

describe("/openapi/v3, as kube-apiserver serves it", () => {
  const index = async () => (await (await fetch(`${server.url}/openapi/v3`)).json()) as { paths: Record<string, { serverRelativeURL: string }> };
  const groupVersion = async (key: string) => {
    const url = (await index()).paths[key]!.serverRelativeURL;
    return (await (await fetch(`${server.url}${url}`)).json()) as Doc;
  };

  test("the index points at one document per group-version, by content hash", async () => {
    const paths = (await index()).paths;
    expect(Object.keys(paths).sort()).toEqual(["api/v1", "apis/pai.io/v1"]);
    for (const [key, { serverRelativeURL }] of Object.entries(paths)) expect(serverRelativeURL).toMatch(new RegExp(`^/openapi/v3/${key}\\?hash=[0-9A-F]{128}$`));
  });

  test("each document is valid OpenAPI 3, with Kubernetes schema names and group-version-kinds", async () => {
    for (const key of ["api/v1", "apis/pai.io/v1"]) {
      const d = await groupVersion(key);
      expect(await validate(structuredClone(d) as never)).toMatchObject({ valid: true });
    }
    const pai = await groupVersion("apis/pai.io/v1");
    expect(pai.components.schemas["io.pai.v1.Agent"]["x-kubernetes-group-version-kind"]).toEqual([{ group: "pai.io", kind: "Agent", version: "v1" }]);
    expect(pai.components.schemas["io.pai.v1.AgentList"]["x-kubernetes-group-version-kind"]).toEqual([{ group: "pai.io", kind: "AgentList", version: "v1" }]);
    expect(pai.components.schemas["io.pai.v1.Agent"].properties.metadata).toEqual({ $ref: "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" });
    const core = await groupVersion("api/v1");
    expect(core.components.schemas["io.k8s.api.core.v1.Secret"]["x-kubernetes-group-version-kind"]).toEqual([{ group: "", kind: "Secret", version: "v1" }]);
    expect(Object.keys(core.paths).every((p) => p.startsWith("/api/v1/"))).toBe(true);
    expect(Object.keys(pai.paths).every((p) => p.startsWith("/apis/pai.io/v1/"))).toBe(true);
  });

  test("each writable kind has a PATCH that declares fieldValidation (what kubectl looks for before trusting server-side validation)", async () => {
    const patchOf = async (key: string, kind: string) => {
      const d = await groupVersion(key);
      return Object.values(d.paths)
        .map((item) => item.patch)
        .find((op) => op && op["x-kubernetes-group-version-kind"]?.kind === kind && !op.operationId.endsWith("Status"));
    };
    const agent = await patchOf("apis/pai.io/v1", "Agent");
    expect(agent.operationId).toBe("patchPaiIoV1NamespacedAgent");
    expect(agent["x-kubernetes-group-version-kind"]).toEqual({ group: "pai.io", version: "v1", kind: "Agent" });
    expect(agent.parameters.find((p: any) => p.name === "fieldValidation")).toMatchObject({ in: "query" });
    // A custom kind takes no strategic merge patch (kubectl then sends a merge patch); a core kind does.
    expect(Object.keys(agent.requestBody.content).sort()).toEqual(["application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json"]);
    const secret = await patchOf("api/v1", "Secret");
    expect(secret.operationId).toBe("patchCoreV1NamespacedSecret");
    expect(secret["x-kubernetes-group-version-kind"]).toEqual({ group: "", version: "v1", kind: "Secret" });
    expect(secret.parameters.find((p: any) => p.name === "fieldValidation")).toMatchObject({ in: "query" });
    expect(Object.keys(secret.requestBody.content)).toContain("application/strategic-merge-patch+json");
  });

  test("every operation documented there is served (the same method and path is in /openapi/json)", async () => {
    for (const key of ["api/v1", "apis/pai.io/v1"]) {
      const d = await groupVersion(key);
      for (const [path, item] of Object.entries(d.paths))
        for (const method of Object.keys(item).filter((m) => METHODS.includes(m))) expect({ method, path, served: !!doc.paths[path]?.[method] }).toEqual({ method, path, served: true });
    }
  });

  test("caching as kube-apiserver does it: the current hash may be kept, a stale one is sent on, a document can be revalidated", async () => {
    const url = (await index()).paths["api/v1"]!.serverRelativeURL;
    const current = await fetch(`${server.url}${url}`);
    expect(current.headers.get("cache-control")).toContain("immutable");
    const etag = current.headers.get("etag")!;
    expect(etag).toBe(`"${url.split("hash=")[1]}"`);
    const stale = await fetch(`${server.url}/openapi/v3/api/v1?hash=0123`, { redirect: "manual" });
    expect(stale.status).toBe(301);
    expect(stale.headers.get("location")).toBe(url);
    expect((await fetch(`${server.url}/openapi/v3/api/v1`, { headers: { "if-none-match": etag } })).status).toBe(304);
    const protobufOnly = await fetch(`${server.url}/openapi/v3/api/v1`, { headers: { accept: "application/com.github.proto-openapi.spec.v3@v1.0+protobuf" } });
    expect(protobufOnly.status).toBe(406);
    expect(await protobufOnly.json()).toMatchObject({ kind: "Status", reason: "NotAcceptable", code: 406 });
    const unknown = await fetch(`${server.url}/openapi/v3/apis/apps/v1`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ kind: "Status", reason: "NotFound" });
    // No OpenAPI v2: kubectl 1.32 asks for it only as a fallback and carries on (see the kubectl tests below).
    expect((await fetch(`${server.url}/openapi/v2`)).status).toBe(404);
  });

  test("the CRD's names are discovery's", async () => {
    const crd = parse(readFileSync(join(ROOT, CRD_PATH), "utf8"));
    const discovery = (await (await server.api("/apis/pai.io/v1")).json()) as { resources: { name: string; singularName: string; kind: string; shortNames?: string[]; categories?: string[]; namespaced: boolean }[] };
    const agents = discovery.resources.find((r) => r.name === "agents")!;
    expect(crd.spec.names).toEqual({
      kind: agents.kind,
      listKind: `${agents.kind}List`,
      plural: agents.name,
      singular: agents.singularName,
      ...(agents.shortNames ? { shortNames: agents.shortNames } : {}),
      ...(agents.categories ? { categories: agents.categories } : {}),
    });
    expect(crd.spec.scope).toBe(agents.namespaced ? "Namespaced" : "Cluster");
  });
});

/** Headless Chromium (Debian's `chromium`), for the docs page; tests that need it skip, loudly, without it. */
const CHROMIUM = Bun.which("chromium") ?? Bun.which("chromium-browser") ?? undefined;
if (!CHROMIUM)
  console.warn(
    `\n${"!".repeat(78)}\nSKIPPED: test/e2e/openapi.test.ts: the docs page's "Try it out" in a real browser\n  chromium is not installed (apt-get install chromium), so this test did not run.\n${"!".repeat(78)}\n`,
  );

/** Chromium over the DevTools protocol: just enough to open a page, run script in it, and type. */
async function browser(dir: string) {
  const proc = Bun.spawn([CHROMIUM!, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", `--user-data-dir=${dir}`, "--remote-debugging-port=0", "--window-size=1300,1800", "about:blank"], {
    stdout: "ignore",
    stderr: "ignore",
  });
  const port = await eventually(() => readFileSync(join(dir, "DevToolsActivePort"), "utf8").split("\n")[0], 15_000, "chromium's DevTools port");
  const target = await eventually(async () => ((await (await fetch(`http://127.0.0.1:${port}/json`)).json()) as { type: string; webSocketDebuggerUrl: string }[]).find((t) => t.type === "page"), 10_000, "a page");
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve);
    ws.addEventListener("error", reject);
  });
  let next = 0;
  const waiting = new Map<number, (v: any) => void>();
  ws.addEventListener("message", (e) => {
    const m = JSON.parse(String(e.data));
    waiting.get(m.id)?.(m.result ?? { error: m.error });
  });
  const send = (method: string, params: object = {}) =>
    new Promise<any>((resolve) => {
      const id = ++next;
      waiting.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  const evaluate = async (expression: string) => (await send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true })).result?.value;
  return {
    send,
    evaluate,
    until: (expression: string, what: string) => eventually(() => evaluate(expression), 15_000, what),
    async close() {
      await send("Browser.close").catch(() => {});
      proc.kill();
      await proc.exited;
    },
  };
}

describe.skipIf(!CHROMIUM)("the docs page in a real browser", () => {
  test('"Try it out" on the webhook POST sends the documented example and shows the session\'s reply', async () => {
    const url = ((await (await server.api("/apis/pai.io/v1/namespaces/default/agents/echo")).json()) as any).status.webhookUrl as string;
    const [namespace, name, token] = url.split("/").slice(-3);
    const dir = tempDir("pai-chromium-");
    const b = await browser(dir);
    try {
      const op = "#operations-Webhooks-invokeWebhook";
      // Deep link: the page opens with this operation expanded.
      await b.send("Page.navigate", { url: `${server.url}/openapi#/Webhooks/invokeWebhook` });
      await b.until(`!!document.querySelector('${op} .try-out__btn')`, "the webhook operation");
      expect(await b.evaluate(`document.querySelector('${op} .opblock-section-request-body')?.innerText`)).toContain("application/json");
      await b.evaluate(`document.querySelector('${op} .try-out__btn').click()`);
      await b.until(`document.querySelectorAll('${op} .parameters input').length === 3`, "the path parameters' inputs");
      for (const [i, value] of [namespace, name, token].entries()) {
        await b.evaluate(`document.querySelectorAll('${op} .parameters input')[${i}].focus()`);
        await b.send("Input.insertText", { text: value });
      }
      await b.evaluate("document.activeElement.blur()");
      // The body offered is the document's example, as is.
      expect(JSON.parse(await b.evaluate(`document.querySelector('${op} textarea.body-param__text').value`))).toEqual({ title: "what sound does a cow make?", wait: 30 });
      // Swagger UI takes typed values after a short debounce: Execute until it sends (it shows a live response).
      const answer = await eventually(async () => {
        await b.evaluate(`document.querySelector('${op} .execute')?.click()`);
        await Bun.sleep(300);
        return b.evaluate(`document.querySelector('${op} .live-responses-table .response-col_description pre')?.textContent`);
      }, 15_000, "the live response");
      expect(await b.evaluate(`document.querySelector('${op} .live-responses-table .response .response-col_status')?.textContent.trim()`)).toBe("200");
      expect(JSON.parse(answer)).toMatchObject({ agentDefinition: "echo", phase: "Complete", response: "what sound does a cow make?" });
    } finally {
      await b.close();
      removeDir(dir);
    }
  }, 60_000);
});

warnSkippedWithoutKubectl("test/e2e/openapi.test.ts: kubectl apply --validate=strict, explain and Secret patches through /openapi/v3");

describe.skipIf(!HAVE_KUBECTL)("the real kubectl reads /openapi/v3", () => {
  let k: KubeServer;
  beforeAll(async () => {
    k = await startKubeServer();
  });
  afterAll(async () => {
    await k?.stop();
  });

  const agent = (models: string, extra = "") => `apiVersion: pai.io/v1
kind: Agent
metadata:
  name: strict
spec:
  models: [${models}]${extra}
  triggers:
    - webhook: {}
`;
  const requests = (log: string) => log.split("\n").filter((l) => /round_trippers.*(GET|POST|PATCH|PUT) https/.test(l)).map((l) => /(GET|POST|PATCH|PUT) (\S+) (\d+)/.exec(l)!.slice(1).join(" "));

  test("apply --validate=strict finds the PATCH with fieldValidation, so the server validates: create, then change", async () => {
    const created = await k.kubectl(["apply", "--validate=strict", "-f", "-", "-v=6"], { stdin: agent("pai/echo") });
    expect(created.code).toBe(0);
    expect(created.stdout).toBe("agent.pai.io/strict created\n");
    const first = requests(created.stderr);
    expect(first.some((r) => /^GET \S+\/openapi\/v3\/apis\/pai\.io\/v1\?hash=[0-9A-F]+\S* 200$/.test(r))).toBe(true);
    // Server-side validation: kubectl asks for it and does not validate by itself.
    expect(first.some((r) => /^POST \S+\/apis\/pai\.io\/v1\/namespaces\/default\/agents\?\S*fieldValidation=Strict\S* 201$/.test(r))).toBe(true);
    const changed = await k.kubectl(["apply", "--validate=strict", "-f", "-", "-v=6"], { stdin: agent("pai/echo, anthropic/claude-sonnet-4-6") });
    expect(changed.code).toBe(0);
    expect(changed.stdout).toBe("agent.pai.io/strict configured\n");
    expect(requests(changed.stderr).some((r) => /^PATCH \S+\/agents\/strict\?\S*fieldValidation=Strict\S* 200$/.test(r))).toBe(true);
    // The v2 document it asks for on the way (for strategic merge of a custom kind) is not needed: no warning.
    expect(changed.stderr).not.toMatch(/^(W|E)\d{4} /m);
    expect((await (await k.api("/apis/pai.io/v1/namespaces/default/agents/strict")).json()).spec.models).toEqual(["pai/echo", "anthropic/claude-sonnet-4-6"]);
  }, 60_000);

  test("an unknown field is the server's error, as against a cluster, not kubectl's client-side one", async () => {
    const r = await k.kubectl(["apply", "--validate=strict", "-f", "-"], { stdin: agent("pai/echo", "\n  bogus: 1") });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("spec.bogus");
    expect(r.stderr).toContain("unknown field");
    expect(r.stderr).not.toContain("error validating data");
  }, 30_000);

  test("a Secret applied twice: kubectl computes the strategic merge patch from the v1 document, with no warning", async () => {
    const secret = (v: string) => `apiVersion: v1\nkind: Secret\nmetadata:\n  name: applied\n  labels:\n    app: web\nstringData:\n  key: ${v}\n`;
    expect((await k.kubectl(["apply", "-f", "-"], { stdin: secret("one") })).code).toBe(0);
    const again = await k.kubectl(["apply", "-f", "-", "-v=6"], { stdin: secret("two") });
    expect(again.code).toBe(0);
    expect(again.stdout).toBe("secret/applied configured\n");
    expect(again.stderr).not.toContain("error calculating patch");
    expect(requests(again.stderr).some((r) => /^GET \S+\/openapi\/v3\/api\/v1\?hash=\S+ 200$/.test(r))).toBe(true);
    expect(requests(again.stderr).some((r) => /^PATCH \S+\/api\/v1\/namespaces\/default\/secrets\/applied\?\S* 200$/.test(r))).toBe(true);
    const stored = (await (await k.api("/api/v1/namespaces/default/secrets/applied")).json()) as { data: Record<string, string> };
    expect(Buffer.from(stored.data.key!, "base64").toString()).toBe("two");
  }, 60_000);

  test("kubectl explain reads the Agent schema (descriptions from the TypeBox schema)", async () => {
    const r = await k.kubectl(["explain", "agents.spec.models"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("KIND:       Agent");
    expect(r.stdout).toContain("Models to try in order: anthropic/<model>, openai/<model> or pai/echo.");
  }, 30_000);
});
