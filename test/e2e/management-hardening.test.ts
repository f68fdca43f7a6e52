/**
 * The management API checks who is calling before it reads a body, and reads a body only within
 * fixed costs: unauthenticated bodies are never parsed (401/403 first), absurd nesting and document
 * floods are refused before parsing with a 400 that names the limit, and other content types get
 * 415. Also `POST /api/v1/namespaces/{ns}/secrets` (create, 409 when taken) and the CLI's
 * `pai create secret [--overwrite]` on top of it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startServer, type TestServer } from "../helpers";

let server: TestServer;
let teamToken: string;
beforeAll(async () => {
  server = await startServer();
  const res = await server.api("/apis/pai.io/v1/namespaces/team/accesstokens", { method: "POST", json: { metadata: { name: "t" } } });
  teamToken = ((await res.json()) as { token: string }).token;
});
afterAll(async () => {
  await server.stop();
});

const AGENTS = "/apis/pai.io/v1/namespaces/default/agents";
const SECRETS = "/api/v1/namespaces/default/secrets";
/** 1 MB of `[`: a second or more of the YAML parser's time (and a stack overflow) if it ever got there. */
const NESTED = "[".repeat(1_000_000);

async function status(res: Response) {
  const body = (await res.json()) as { code: number; reason: string; message: string };
  return { status: res.status, code: body.code, reason: body.reason, message: body.message };
}

const raw = (path: string, init: { method: string; body?: string | Blob; type?: string; token?: string }) =>
  fetch(`${server.url}${path}`, {
    method: init.method,
    headers: { ...(init.type ? { "content-type": init.type } : {}), ...(init.token ? { authorization: `Bearer ${init.token}` } : {}) },
    body: init.body,
  });

describe("the caller is checked before the body is read", () => {
  test("1 MB of nested YAML without a token: 401 at once, and the server keeps answering meanwhile", async () => {
    const started = performance.now();
    const big = raw(AGENTS, { method: "POST", body: NESTED, type: "application/yaml" }).then(async (r) => ({ ...(await status(r)), ms: performance.now() - started }));
    // Health is asked while the big body is in flight: a server busy parsing could not answer it.
    const health = (async () => {
      const t = performance.now();
      const r = await fetch(`${server.url}/healthz`);
      return { status: r.status, ms: performance.now() - t };
    })();
    const [b, h] = await Promise.all([big, health]);
    expect(b).toMatchObject({ status: 401, code: 401, reason: "Unauthorized" });
    expect(h.status).toBe(200);
    // Before the fix the body was parsed first: ~6 s (and a 400) on an idle machine.
    expect(b.ms).toBeLessThan(2000);
    expect(h.ms).toBeLessThan(2000);
  });

  test("the same body with a wrong token: 401; with a namespace token: 403 (writing agents needs the admin token)", async () => {
    expect(await status(await raw(AGENTS, { method: "POST", body: NESTED, type: "application/yaml", token: "pai_nope" }))).toMatchObject({ status: 401 });
    expect(await status(await raw(AGENTS, { method: "POST", body: NESTED, type: "application/yaml", token: teamToken }))).toMatchObject({ status: 403, reason: "Forbidden" });
  });

  test("PUT a secret with a body that fails validation: 401 without a token, 403 with a namespace token, 400 only for the admin", async () => {
    // Fails the schema (values must be strings); Elysia validates before onBeforeHandle runs.
    const bad = JSON.stringify({ data: { k: 1 } });
    const none = await status(await raw(`${SECRETS}/x`, { method: "PUT", body: bad, type: "application/json" }));
    expect(none).toMatchObject({ status: 401, reason: "Unauthorized" });
    // No schema details leak to a caller who may not use the route.
    expect(none.message).not.toMatch(/data|Expected/);
    expect(await status(await raw(`${SECRETS}/x`, { method: "PUT", body: bad, type: "application/json", token: teamToken }))).toMatchObject({ status: 403 });
    expect(await status(await raw(`${SECRETS}/x`, { method: "PUT", body: bad, type: "application/json", token: server.token }))).toMatchObject({ status: 400 });
  });

  test("malformed JSON without a token is 401, not a parse error", async () => {
    for (const path of [`${AGENTS}/a`, `${SECRETS}/a`]) expect((await raw(path, { method: "PUT", body: '{"x": ', type: "application/json" })).status).toBe(401);
    expect((await raw("/apis/pai.io/v1/namespaces/default/accesstokens", { method: "POST", body: '{"x": ', type: "application/json" })).status).toBe(401);
  });

  test("starting a session: 401 without a token, 403 with another namespace's token, before the body is validated", async () => {
    const path = "/apis/pai.io/v1/namespaces/default/sessions";
    const bad = JSON.stringify({ title: 5 });
    expect(await status(await raw(path, { method: "POST", body: NESTED, type: "application/yaml" }))).toMatchObject({ status: 401 });
    expect(await status(await raw(path, { method: "POST", body: bad, type: "application/json" }))).toMatchObject({ status: 401 });
    expect(await status(await raw(path, { method: "POST", body: bad, type: "application/json", token: teamToken }))).toMatchObject({ status: 403 });
    // The namespace's own token gets as far as validation.
    expect(await status(await raw("/apis/pai.io/v1/namespaces/team/sessions", { method: "POST", body: bad, type: "application/json", token: teamToken }))).toMatchObject({ status: 400 });
  });

  test("DELETE without a token is still 401", async () => {
    expect((await raw(`${AGENTS}/a`, { method: "DELETE" })).status).toBe(401);
    expect((await raw(`${SECRETS}/a`, { method: "DELETE" })).status).toBe(401);
  });
});

describe("what a body may cost, for the admin too", () => {
  const cases: { name: string; method: string; path: string; body: string; type: string; message: RegExp }[] = [
    { name: "nested YAML flow collections", method: "POST", path: AGENTS, body: NESTED, type: "application/yaml", message: /nested more than 64 levels/ },
    { name: "nested YAML block sequences on one line", method: "PUT", path: `${AGENTS}/deep`, body: "- ".repeat(400_000) + "x\n", type: "application/yaml", message: /nested more than 64 levels/ },
    { name: "nested JSON", method: "PUT", path: `${AGENTS}/deep`, body: "[".repeat(100) + "]".repeat(100), type: "application/json", message: /nested more than 64 levels/ },
    { name: "nested JSON in a secret", method: "PUT", path: `${SECRETS}/deep`, body: `{"data": ${"[".repeat(70)}${"]".repeat(70)}}`, type: "application/json", message: /nested more than 64 levels/ },
    { name: "nested JSON when starting a session", method: "POST", path: "/apis/pai.io/v1/namespaces/default/sessions", body: `{"env": ${"[".repeat(70)}${"]".repeat(70)}}`, type: "application/json", message: /nested more than 64 levels/ },
    { name: "nested YAML by indentation", method: "PUT", path: `${AGENTS}/deep`, body: Array.from({ length: 70 }, (_, i) => `${" ".repeat(i)}k:`).join("\n") + " 1\n", type: "application/yaml", message: /line \d+: collections are nested more than 64 levels/ },
    { name: "a flood of YAML documents", method: "PUT", path: `${AGENTS}/many`, body: "---\n".repeat(200_000), type: "application/yaml", message: /exactly one YAML document in the body, got more than 8/ },
    { name: "two YAML documents", method: "PUT", path: `${AGENTS}/two`, body: "a: 1\n---\nb: 2\n", type: "application/yaml", message: /exactly one YAML document in the body, got 2/ },
  ];
  for (const c of cases) {
    test(`${c.name}: 400 naming the limit, quickly`, async () => {
      const started = performance.now();
      const r = await status(await raw(c.path, { method: c.method, body: c.body, type: c.type, token: server.token }));
      expect(r).toMatchObject({ status: 400, code: 400, reason: "BadRequest" });
      expect(r.message).toMatch(c.message);
      expect(performance.now() - started).toBeLessThan(2000);
    });
  }

  test("another Content-Type is 415 with what to send instead", async () => {
    const r = await status(await raw(`${SECRETS}/plain`, { method: "PUT", body: "hello", type: "text/plain", token: server.token }));
    expect(r).toMatchObject({ status: 415, reason: "UnsupportedMediaType" });
    expect(r.message).toContain("application/json or application/yaml");
    const none = await status(await raw(`${SECRETS}/plain`, { method: "PUT", body: new Blob(['{"stringData":{"a":"b"}}']), token: server.token }));
    expect(none).toMatchObject({ status: 415 });
    expect(none.message).toContain("no Content-Type");
  });

  test("a string where the schema wants an object is a 400, not an object of its characters", async () => {
    for (const body of [{ stringData: "hello" }, { metadata: "x", stringData: { a: "b" } }]) {
      const r = await status(await raw(`${SECRETS}/coerced`, { method: "PUT", body: JSON.stringify(body), type: "application/json", token: server.token }));
      expect(r).toMatchObject({ status: 400, reason: "BadRequest" });
      expect(r.message).toMatch(/request body does not fit the schema: (stringData|metadata): Expected object/);
    }
    expect((await server.api(`${SECRETS}/coerced`)).status).toBe(404);
    const token = await status(await raw("/apis/pai.io/v1/namespaces/default/accesstokens", { method: "POST", body: '{"metadata": "x"}', type: "application/json", token: server.token }));
    expect(token).toMatchObject({ status: 400 });
  });

  test("an empty JSON body is a clear 400 where a body is needed, and fine where it is optional", async () => {
    const r = await status(await raw(`${SECRETS}/empty`, { method: "PUT", body: "", type: "application/json", token: server.token }));
    expect(r.status).toBe(400);
    const token = await raw("/apis/pai.io/v1/namespaces/default/accesstokens", { method: "POST", body: "", type: "application/json", token: server.token });
    expect(token.status).toBe(201);
    const noBody = await raw("/apis/pai.io/v1/namespaces/default/accesstokens", { method: "POST", token: server.token });
    expect(noBody.status).toBe(201);
  });
});

describe("ordinary bodies still work", () => {
  test("an agent as YAML (with a leading ---) and as JSON (with a charset), updated, then deleted", async () => {
    const yaml = `---\napiVersion: pai.io/v1\nkind: Agent\nmetadata:\n  name: plain\nspec:\n  models: [pai/echo]\n  triggers:\n    - webhook: {}\n`;
    expect((await raw(AGENTS, { method: "POST", body: yaml, type: "application/yaml; charset=utf-8", token: server.token })).status).toBe(201);
    const json = { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name: "plain" }, spec: { models: ["pai/echo"], system: "[{nested: [brackets]}] in text are fine" } };
    expect((await raw(`${AGENTS}/plain`, { method: "PUT", body: JSON.stringify(json), type: "application/json; charset=utf-8", token: server.token })).status).toBe(200);
    expect((await raw(`${AGENTS}/plain`, { method: "DELETE", token: server.token })).status).toBe(200);
  });

  test("a secret as YAML, and a session started with a namespace token", async () => {
    const s = await raw(`${SECRETS}/yaml-secret`, { method: "PUT", body: "stringData:\n  k: v\n", type: "application/yaml", token: server.token });
    expect(s.status).toBe(201);
    await server.api("/apis/pai.io/v1/namespaces/team/agents/echo", { method: "PUT", json: { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name: "echo" }, spec: { models: ["pai/echo"] } } });
    const started = await raw("/apis/pai.io/v1/namespaces/team/sessions", { method: "POST", body: JSON.stringify({ agentDefinition: "echo", title: "hi" }), type: "application/json", token: teamToken });
    expect(started.status).toBe(201);
  });
});

describe("creating a secret that exists", () => {
  const create = (name: string, body: unknown) => server.api(SECRETS, { method: "POST", json: body ?? { metadata: { name }, stringData: { k: "v1" } } });

  test("POST creates (201), then refuses the same name with 409 AlreadyExists, keeping the value", async () => {
    expect((await create("made", undefined)).status).toBe(201);
    const again = await status(await server.api(SECRETS, { method: "POST", json: { metadata: { name: "made" }, stringData: { k: "v2" } } }));
    expect(again).toMatchObject({ status: 409, reason: "AlreadyExists" });
    expect(again.message).toContain('secrets "made" already exists');
    expect(again.message).toContain("--overwrite");
    const kept = (await (await server.api(`${SECRETS}/made`)).json()) as { data: Record<string, string> };
    expect(Buffer.from(kept.data.k!, "base64").toString()).toBe("v1");
  });

  test("POST without a name, with a managed name, or with another namespace in the body: 400", async () => {
    expect(await status(await server.api(SECRETS, { method: "POST", json: { stringData: { k: "v" } } }))).toMatchObject({ status: 400, message: expect.stringContaining("metadata.name is required") });
    expect(await status(await create("pai-webhook-x", { metadata: { name: "pai-webhook-x" }, stringData: { token: "x" } }))).toMatchObject({ status: 400, message: expect.stringContaining("managed by the controller") });
    expect(await status(await create("n", { metadata: { name: "Bad_Name" }, stringData: { k: "v" } }))).toMatchObject({ status: 400, message: expect.stringContaining("invalid secret name") });
    expect(await status(await create("n", { metadata: { name: "n", namespace: "other" }, stringData: { k: "v" } }))).toMatchObject({ status: 400, message: expect.stringContaining("does not match the namespace") });
  });

  test("pai create secret: created, then refused with a hint; --overwrite replaces it (configured)", async () => {
    const first = await server.cli(["create", "secret", "cli-secret", "--from-literal", "k=one"]);
    expect(first).toMatchObject({ code: 0, stdout: "secret/cli-secret created\n" });
    const second = await server.cli(["create", "secret", "cli-secret", "--from-literal", "k=two"]);
    expect(second.code).toBe(1);
    expect(second.stdout).toBe("");
    expect(second.stderr).toContain('secrets "cli-secret" already exists');
    expect(second.stderr).toContain("--overwrite");
    const value = async () => {
      const s = JSON.parse((await server.cli(["get", "secret", "cli-secret", "-o", "json"])).stdout) as { data: Record<string, string> };
      return Buffer.from(s.data.k!, "base64").toString();
    };
    expect(await value()).toBe("one");
    expect(await server.cli(["create", "secret", "cli-secret", "--from-literal", "k=three", "--overwrite"])).toMatchObject({ code: 0, stdout: "secret/cli-secret configured\n" });
    expect(await value()).toBe("three");
    // --overwrite of a name that does not exist yet creates it, and says so.
    expect(await server.cli(["create", "secret", "cli-new", "--from-literal", "k=v", "--overwrite"])).toMatchObject({ code: 0, stdout: "secret/cli-new created\n" });
  });

  test("pai create secret pai-webhook-NAME is refused with or without --overwrite", async () => {
    for (const extra of [[], ["--overwrite"]]) {
      const r = await server.cli(["create", "secret", "pai-webhook-x", "--from-literal", "token=x", ...extra]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("managed by the controller");
    }
  });
});
