/**
 * The management API through real HTTP: authentication, every bad input as a clear 4xx (never a
 * 500), YAML bodies, secrets for secretRef, health, and the offline OpenAPI docs page.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { agentYaml, startServer, type TestServer } from "../helpers";

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.stop();
});

const AGENTS = "/apis/pai.io/v1/namespaces/default/agents";
const agent = (name: string, spec: Record<string, unknown> = {}, meta: Record<string, unknown> = {}) => ({
  apiVersion: "pai.io/v1",
  kind: "Agent",
  metadata: { name, ...meta },
  spec: { models: ["pai/echo"], triggers: [{ webhook: {} }], ...spec },
});

describe("authentication", () => {
  const paths = [AGENTS, "/apis/pai.io/v1/agents", "/api/v1/namespaces/default/secrets", "/apis/pai.io/v1/namespaces/default/accesstokens"];
  for (const path of paths) {
    test(`${path}: no token and a wrong token get 401 and no data`, async () => {
      await server.api(`${AGENTS}/secret-agent`, { method: "PUT", json: agent("secret-agent") });
      const variants: Record<string, string>[] = [{}, { authorization: "Bearer pai_0000" }, { authorization: "Basic YWRtaW46YWRtaW4=" }, { authorization: `Bearer ${server.token}x` }];
      for (const headers of variants) {
        const res = await fetch(`${server.url}${path}`, { headers });
        expect(res.status).toBe(401);
        const body = await res.json();
        expect(body).toMatchObject({ kind: "Status", status: "Failure", code: 401, reason: "Unauthorized" });
        expect(JSON.stringify(body)).not.toContain("secret-agent");
      }
    });
  }

  test("writes without a token are refused and change nothing", async () => {
    const res = await fetch(`${server.url}${AGENTS}/sneaky`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(agent("sneaky")) });
    expect(res.status).toBe(401);
    expect((await server.api(`${AGENTS}/sneaky`)).status).toBe(404);
  });
});

describe("bad input gets a 4xx that says what to fix", () => {
  const cases: { name: string; method: string; path: string; body?: string; contentType?: string; status: number; message: RegExp }[] = [
    { name: "malformed JSON", method: "PUT", path: `${AGENTS}/a`, body: '{"apiVersion": ', status: 400, message: /not valid JSON/ },
    { name: "wrong apiVersion", method: "PUT", path: `${AGENTS}/a`, body: JSON.stringify({ ...agent("a"), apiVersion: "v1" }), status: 422, message: /apiVersion: must be "pai.io\/v1"/ },
    { name: "wrong kind", method: "PUT", path: `${AGENTS}/a`, body: JSON.stringify({ ...agent("a"), kind: "Pod" }), status: 422, message: /kind: must be "Agent"/ },
    { name: "unknown model prefix", method: "PUT", path: `${AGENTS}/a`, body: JSON.stringify(agent("a", { models: ["gemini/x"] })), status: 422, message: /spec\.models\[0\]: unknown model "gemini\/x"/ },
    { name: "unknown field", method: "PUT", path: `${AGENTS}/a`, body: JSON.stringify(agent("a", { toolz: ["x"] })), status: 422, message: /spec\.toolz: unknown field/ },
    { name: "unknown tool", method: "PUT", path: `${AGENTS}/a`, body: JSON.stringify(agent("a", { tools: ["x"] })), status: 422, message: /spec\.tools\[0\]: expected a built-in tool \(bash, read_file, write_file, edit_file, glob, grep, web_fetch\), got string "x"/ },
    { name: "bad CIDR", method: "PUT", path: `${AGENTS}/a`, body: JSON.stringify(agent("a", { triggers: [{ webhook: { allowCIDRs: ["1.2.3.4/40"] } }] })), status: 422, message: /allowCIDRs\[0\]: "1.2.3.4\/40" is not/ },
    { name: "bad secretRef", method: "PUT", path: `${AGENTS}/a`, body: JSON.stringify(agent("a", { triggers: [{ webhook: { linearSignatureSecret: { secretRef: { name: "s" } } } }] })), status: 422, message: /linearSignatureSecret: expected a string, or \{secretRef/ },
    { name: "name not a DNS label in the URL", method: "PUT", path: `${AGENTS}/My_Agent`, body: JSON.stringify(agent("My_Agent")), status: 400, message: /invalid agent name: "My_Agent" is not a DNS-1123 label/ },
    { name: "name in body differs from URL", method: "PUT", path: `${AGENTS}/a`, body: JSON.stringify(agent("b")), status: 400, message: /metadata.name "b" does not match the name in the URL \("a"\)/ },
    { name: "namespace in body differs from URL", method: "PUT", path: `${AGENTS}/a`, body: JSON.stringify(agent("a", {}, { namespace: "other" })), status: 400, message: /metadata.namespace "other" does not match/ },
    { name: "bad namespace", method: "GET", path: "/apis/pai.io/v1/namespaces/Bad.NS/agents", status: 400, message: /invalid namespace name/ },
    { name: "body is a list", method: "PUT", path: `${AGENTS}/a`, body: "[1,2]", status: 422, message: /expected an Agent object, got a list/ },
    { name: "unknown agent", method: "GET", path: `${AGENTS}/ghost`, status: 404, message: /^agents\.pai\.io "ghost" not found$/ },
    { name: "unknown route", method: "GET", path: "/apis/pai.io/v1/nothing", status: 404, message: /no route for GET/ },
    { name: "invalid YAML body", method: "PUT", path: `${AGENTS}/a`, body: "metadata: [x\n", contentType: "application/yaml", status: 400, message: /invalid YAML at line \d+/ },
    { name: "secret with bad base64", method: "PUT", path: "/api/v1/namespaces/default/secrets/s", body: JSON.stringify({ data: { k: "%%%" } }), status: 400, message: /data.k: value is not valid base64/ },
    { name: "managed secret name", method: "PUT", path: "/api/v1/namespaces/default/secrets/pai-webhook-x", body: JSON.stringify({ stringData: { token: "x" } }), status: 400, message: /managed by the controller/ },
    { name: "secret of wrong shape", method: "PUT", path: "/api/v1/namespaces/default/secrets/s", body: JSON.stringify({ data: "nope" }), status: 400, message: /data/ },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const res = await server.api(c.path, { method: c.method, body: c.body, headers: c.body ? { "content-type": c.contentType ?? "application/json" } : {} });
      const body = (await res.json()) as { kind: string; message: string; code: number };
      expect({ status: res.status, kind: body.kind, code: body.code }).toEqual({ status: c.status, kind: "Status", code: c.status });
      expect(body.message).toMatch(c.message);
    });
  }

  test("a body over the size limit is refused with 413", async () => {
    const res = await server.api(`${AGENTS}/big`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(agent("big", { system: "x".repeat(2 * 1024 * 1024) })) });
    expect(res.status).toBe(413);
  });
});

describe("agents over the API", () => {
  test("PUT creates (201) then updates (200), bumping generation only when the spec changes", async () => {
    const created = await server.api(`${AGENTS}/api-agent`, { method: "PUT", json: agent("api-agent") });
    expect(created.status).toBe(201);
    expect(((await created.json()) as { metadata: { generation: number } }).metadata.generation).toBe(1);
    const same = await server.api(`${AGENTS}/api-agent`, { method: "PUT", json: agent("api-agent", {}, { labels: { team: "a" } }) });
    expect(same.status).toBe(200);
    expect(((await same.json()) as { metadata: { generation: number; labels: object } }).metadata).toMatchObject({ generation: 1, labels: { team: "a" } });
    const changed = await server.api(`${AGENTS}/api-agent`, { method: "PUT", json: agent("api-agent", { system: "new" }) });
    expect(((await changed.json()) as { metadata: { generation: number } }).metadata.generation).toBe(2);
  });

  test("POST creates, and a second POST is a 409", async () => {
    expect((await server.api(AGENTS, { method: "POST", json: agent("posted") })).status).toBe(201);
    const again = await server.api(AGENTS, { method: "POST", json: agent("posted") });
    expect(again.status).toBe(409);
    expect(((await again.json()) as { message: string }).message).toBe('agents.pai.io "posted" already exists');
  });

  test("a YAML body is accepted", async () => {
    const res = await server.api(`${AGENTS}/yaml-agent`, { method: "PUT", headers: { "content-type": "application/yaml" }, body: agentYaml("yaml-agent") });
    expect(res.status).toBe(201);
    expect(((await res.json()) as { spec: { models: string[] } }).spec.models).toEqual(["anthropic/claude-sonnet-4-6"]);
  });

  test("the output of GET can be applied again unchanged", async () => {
    const got = await (await server.api(`${AGENTS}/posted`)).json();
    const res = await server.api(`${AGENTS}/posted`, { method: "PUT", json: got });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { metadata: { generation: number } }).metadata.generation).toBe(1);
  });

  test("a user secret round-trips base64 data and stringData", async () => {
    const put = await server.api("/api/v1/namespaces/default/secrets/linear", { method: "PUT", json: { data: { a: Buffer.from("one").toString("base64") }, stringData: { b: "two" } } });
    expect(put.status).toBe(201);
    const got = (await (await server.api("/api/v1/namespaces/default/secrets/linear")).json()) as { type: string; data: Record<string, string> };
    expect(got.type).toBe("Opaque");
    expect(Object.fromEntries(Object.entries(got.data).map(([k, v]) => [k, Buffer.from(v, "base64").toString()]))).toEqual({ a: "one", b: "two" });
  });
});

describe("health and docs", () => {
  test("/healthz and /readyz answer without a token", async () => {
    expect(await (await fetch(`${server.url}/healthz`)).json()).toEqual({ status: "ok" });
    expect(await (await fetch(`${server.url}/readyz`)).json()).toEqual({ status: "ready" });
  });

  test("/openapi/json documents the Kubernetes-shaped paths", async () => {
    const doc = (await (await fetch(`${server.url}/openapi/json`)).json()) as { openapi: string; paths: Record<string, Record<string, { requestBody?: unknown }>> };
    expect(doc.openapi).toMatch(/^3\./);
    for (const p of [
      "/apis/pai.io/v1/namespaces/{namespace}/agents",
      "/apis/pai.io/v1/namespaces/{namespace}/agents/{name}",
      "/api/v1/namespaces/{namespace}/secrets/{name}",
      "/apis/pai.io/v1/namespaces/{namespace}/accesstokens",
      "/webhooks/{namespace}/{name}/{token}",
      "/healthz",
      "/readyz",
    ])
      expect(Object.keys(doc.paths)).toContain(p);
    // The body is the AgentManifest component, whose spec is the AgentSpec component.
    expect(JSON.stringify(doc.paths["/apis/pai.io/v1/namespaces/{namespace}/agents/{name}"]!.put!.requestBody)).toContain("#/components/schemas/AgentManifest");
    expect(JSON.stringify((doc as unknown as { components: { schemas: Record<string, unknown> } }).components.schemas.AgentSpec)).toContain("linearSignatureSecret");
    expect(Object.keys(doc.paths).some((p) => p.startsWith("/openapi/assets"))).toBe(false);
  });

  test("/openapi renders from embedded assets, with no script from the internet", async () => {
    const html = await (await fetch(`${server.url}/openapi`)).text();
    expect(html).toContain('src="/openapi/assets/swagger-ui-bundle.js"');
    expect(html).toContain('href="/openapi/assets/swagger-ui.css"');
    expect(html).not.toMatch(/(src|href)="https?:/);
    const js = await fetch(`${server.url}/openapi/assets/swagger-ui-bundle.js`);
    expect(js.status).toBe(200);
    expect((await js.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
    expect((await fetch(`${server.url}/openapi/assets/swagger-ui.css`)).status).toBe(200);
  });
});

describe("the webhook verification ping", () => {
  test("unknown agent 404, agent without webhook 404, wrong token 401", async () => {
    await server.api(`${AGENTS}/no-hook`, { method: "PUT", json: agent("no-hook", { triggers: [] }) });
    const token = "0".repeat(64);
    expect((await fetch(`${server.url}/webhooks/default/ghost/${token}`)).status).toBe(404);
    expect((await fetch(`${server.url}/webhooks/default/no-hook/${token}`)).status).toBe(404);
    expect((await fetch(`${server.url}/webhooks/default/api-agent/${token}`)).status).toBe(401);
    expect((await fetch(`${server.url}/webhooks/default/api-agent/short`)).status).toBe(401);
  });
});
