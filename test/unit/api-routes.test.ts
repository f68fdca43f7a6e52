/**
 * Route behaviour in the middle: the real core (store in a temp folder, services, supervisor not
 * started, so sessions stay Pending) behind `createApi(deps)`, driven with `app.handle(new
 * Request(…))` — no socket, no child process. A table of scenarios, as PocketBase's API tests.
 * The webhook entrance is a native Bun route; it is called through its route table.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createApi } from "../../src/api/app";
import { WEBHOOK_PATH, webhookRoutes } from "../../src/api/webhooks";
import { BodyBudget } from "../../src/api/body";
import { createCore, type Core } from "../../src/core";
import { webhookSecretName } from "../../src/domain/names";
import { createLogger } from "../../src/lib/log";
import { removeDir, tempDir } from "../helpers";

let dir: string;
let core: Core;
let app: ReturnType<typeof createApi>;
let admin: string;
let nsToken: string;
let webhookToken: string;

beforeAll(async () => {
  dir = tempDir("pai-api-");
  core = createCore({ dataDir: dir, maxSessions: 1, trustedProxies: [], allowPrivateCallbacks: false }, createLogger("error"));
  admin = (await core.tokens.ensureAdminToken(join(dir, "admin-token"))).token;
  nsToken = (await core.tokens.create("team", "team-token")).token;
  app = createApi({ ...core, log: createLogger("error"), ready: () => true, version: "test", maxBodyBytes: 64 * 1024 });
  core.agents.apply({ name: "echo", namespace: "default", spec: { models: ["pai/echo"], triggers: [{ webhook: {} }] } }, "api");
  core.agents.apply({ name: "helper", namespace: "team", spec: { models: ["pai/echo"] } }, "api");
  // The controller is not started here: the webhook Secret is put by hand.
  webhookToken = "a".repeat(64);
  core.secrets.put({ namespace: "default", name: webhookSecretName("echo"), data: { token: webhookToken } });
});
afterAll(async () => {
  await core.stop();
  removeDir(dir);
});

interface Scenario {
  name: string;
  method: string;
  url: string;
  token?: "admin" | "namespace";
  body?: string;
  contentType?: string;
  status: number;
  /** Substrings the response body must contain. */
  contains?: string[];
}

const scenarios: Scenario[] = [
  { name: "health needs no token", method: "GET", url: "/healthz", status: 200, contains: ['"ok"'] },
  { name: "agents without a token: 401", method: "GET", url: "/apis/pai.io/v1/namespaces/default/agents", status: 401, contains: ["missing bearer token"] },
  { name: "agents with a namespace token: 403", method: "GET", url: "/apis/pai.io/v1/namespaces/default/agents", token: "namespace", status: 403 },
  { name: "agents with the admin token", method: "GET", url: "/apis/pai.io/v1/namespaces/default/agents", token: "admin", status: 200, contains: ['"AgentList"', '"echo"'] },
  { name: "an unknown agent: 404 Status", method: "GET", url: "/apis/pai.io/v1/namespaces/default/agents/ghost", token: "admin", status: 404, contains: ['"kind":"Status"', "ghost"] },
  {
    name: "a body without a token is not parsed: 401, not 400",
    method: "PUT",
    url: "/api/v1/namespaces/default/secrets/x",
    body: "{not json",
    contentType: "application/json",
    status: 401,
  },
  {
    name: "a nested body with the admin token: 400 naming the limit",
    method: "POST",
    url: "/apis/pai.io/v1/namespaces/default/agents",
    token: "admin",
    body: "[".repeat(100) + "]".repeat(100),
    contentType: "application/json",
    status: 400,
    contains: ["64"],
  },
  {
    name: "an invalid agent: 422 with the field",
    method: "POST",
    url: "/apis/pai.io/v1/namespaces/default/agents",
    token: "admin",
    body: JSON.stringify({ apiVersion: "pai.io/v1", kind: "Agent", metadata: { name: "bad" }, spec: { models: ["gpt4"] } }),
    contentType: "application/json",
    status: 422,
    contains: ["spec.models[0]"],
  },
  {
    name: "a metadata.name whose toString is broken: 400, not 500",
    method: "PUT",
    url: "/apis/pai.io/v1/namespaces/default/agents/x",
    token: "admin",
    body: JSON.stringify({ apiVersion: "pai.io/v1", kind: "Agent", metadata: { name: { toString: "" } }, spec: { models: ["pai/echo"] } }),
    contentType: "application/json",
    status: 400,
    contains: ["metadata.name"],
  },
  {
    name: "an agent whose spec.env name a process cannot take: 422",
    method: "PUT",
    url: "/apis/pai.io/v1/namespaces/default/agents/x",
    token: "admin",
    body: JSON.stringify({ apiVersion: "pai.io/v1", kind: "Agent", metadata: { name: "x" }, spec: { models: ["pai/echo"], env: [{ name: "1 2", value: "3" }] } }),
    contentType: "application/json",
    status: 422,
    contains: ["spec.env[0].name"],
  },
  { name: "a namespace token reads its own sessions", method: "GET", url: "/apis/pai.io/v1/namespaces/team/sessions", token: "namespace", status: 200, contains: ['"SessionList"'] },
  { name: "a namespace token may not read another namespace's sessions", method: "GET", url: "/apis/pai.io/v1/namespaces/default/sessions", token: "namespace", status: 403 },
  {
    name: "a namespace token starts a session in its namespace",
    method: "POST",
    url: "/apis/pai.io/v1/namespaces/team/sessions",
    token: "namespace",
    body: JSON.stringify({ agentDefinition: "helper", title: "hi" }),
    contentType: "application/json",
    status: 201,
    contains: ['"phase":"Pending"', '"helper-run-'],
  },
  {
    name: "a session start with a proxy variable: 400 naming it",
    method: "POST",
    url: "/apis/pai.io/v1/namespaces/team/sessions",
    token: "namespace",
    body: JSON.stringify({ agentDefinition: "helper", title: "hi", env: [{ name: "https_proxy", value: "http://evil" }] }),
    contentType: "application/json",
    status: 400,
    contains: ["https_proxy"],
  },
  { name: "an unknown route: 404 Status", method: "GET", url: "/nope", status: 404, contains: ["no route for GET /nope"] },
];

describe("management routes", () => {
  for (const sc of scenarios) {
    test(sc.name, async () => {
      const headers: Record<string, string> = {};
      if (sc.token) headers.authorization = `Bearer ${sc.token === "admin" ? admin : nsToken}`;
      if (sc.contentType) headers["content-type"] = sc.contentType;
      const res = await app.handle(new Request(`http://localhost${sc.url}`, { method: sc.method, headers, body: sc.body }));
      const text = await res.text();
      expect({ status: res.status, text }).toMatchObject({ status: sc.status });
      for (const c of sc.contains ?? []) expect(text).toContain(c);
    });
  }
});

describe("the webhook route table", () => {
  const server = { requestIP: () => ({ address: "127.0.0.1", family: "IPv4", port: 1 }), timeout() {} } as never;
  const routes = () => webhookRoutes({ ...core, log: createLogger("error"), maxBodyBytes: 1024, bodyBudget: new BodyBudget(4096) });
  const call = (method: "GET" | "POST", token: string, body?: string) => {
    const request = Object.assign(new Request(`http://localhost/webhooks/default/echo/${token}`, { method, body, headers: { "content-type": "application/json" } }), {
      params: { namespace: "default", name: "echo", token },
    });
    return routes()[WEBHOOK_PATH]![method](request, server);
  };

  test("a ping with the token: 200 {ok: true}; with another: 401", async () => {
    expect(await (await call("GET", webhookToken)).json()).toEqual({ ok: true });
    expect((await call("GET", "b".repeat(64))).status).toBe(401);
  });

  test("a delivery commits a Pending session before its 200", async () => {
    const res = await call("POST", webhookToken, JSON.stringify({ title: "from the table" }));
    expect(res.status).toBe(200);
    const { session } = (await res.json()) as { session: string };
    expect(core.sessions.get("default", session)).toMatchObject({ title: "from the table", phase: "Pending" });
  });

  test("a body over the cap: 413; over the budget: 503 with Retry-After", async () => {
    expect((await call("POST", webhookToken, JSON.stringify({ title: "x".repeat(2000) }))).status).toBe(413);
    const tight = webhookRoutes({ ...core, log: createLogger("error"), maxBodyBytes: 1024, bodyBudget: new BodyBudget(10) });
    const request = Object.assign(new Request(`http://localhost/webhooks/default/echo/${webhookToken}`, { method: "POST", body: JSON.stringify({ title: "fits the cap" }) }), {
      params: { namespace: "default", name: "echo", token: webhookToken },
    });
    const res = await tight[WEBHOOK_PATH]!.POST(request, server);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("2");
  });
});
