/**
 * A model API key must never travel through a proxy that a webhook caller or an agent author named.
 * Real `pai serve` processes, real harness children, the real SDKs, a fake model server and fake
 * forward proxies on loopback that record what reaches them (and forward it, so a leak would not
 * even make the session fail). Model endpoints are plain http://, as with Ollama: a proxy would see
 * the `Authorization` header in the clear.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { startFakeProxy, type FakeProxy } from "../fakes/http-proxy";
import { startModelServer, type FakeModelServer } from "../fakes/model-server";
import { eventually, startServer, type TestServer } from "../helpers";

const ANTHROPIC_KEY = "sk-ant-proxy-test-0123456789";
const OPENAI_KEY = "sk-openai-proxy-test-9876543210";
/** Every proxy variable Bun's fetch reads, empty: what the test runner's environment holds must not leak into the servers. */
const NO_PROXIES = { HTTP_PROXY: "", http_proxy: "", HTTPS_PROXY: "", https_proxy: "", ALL_PROXY: "", all_proxy: "", NO_PROXY: "", no_proxy: "" };

let models: FakeModelServer;
let attacker: FakeProxy;
let operator: FakeProxy;

type WaitReply = { session: string; phase: string; response?: string; message?: string };

/** Applies an agent with a webhook trigger and returns its webhook URL on this server. */
async function applyAgent(server: TestServer, name: string, spec: Record<string, unknown>): Promise<string> {
  const res = await server.api(`/apis/pai.io/v1/namespaces/default/agents/${name}`, {
    method: "PUT",
    json: { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name }, spec: { triggers: [{ webhook: {} }], ...spec } },
  });
  expect(res.status).toBeLessThan(300);
  return eventually(async () => {
    const a = (await (await server.api(`/apis/pai.io/v1/namespaces/default/agents/${name}`)).json()) as { status: { webhookUrl?: string } };
    return a.status.webhookUrl?.replace(/^http:\/\/localhost:\d+/, server.url);
  }, 5000, `webhook URL of ${name}`);
}

const post = (url: string, body: unknown) => fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

/** Runs one session through the webhook and waits for its end. */
async function runVia(url: string, title: string): Promise<WaitReply> {
  const res = await post(url, { title, wait: 30 });
  expect(res.status).toBe(200);
  return (await res.json()) as WaitReply;
}

/** What the proxy saw, reduced to what matters: the target path and the key that travelled with it. */
const seen = (p: FakeProxy) => p.requests.map((r) => ({ method: r.method, path: URL.parse(r.url)?.pathname ?? r.url, key: r.headers.authorization ?? r.headers["x-api-key"] }));

beforeAll(() => {
  models = startModelServer();
  attacker = startFakeProxy();
  operator = startFakeProxy();
});
afterAll(async () => {
  await models.stop();
  await attacker.stop();
  await operator.stop();
});
beforeEach(() => {
  models.reset();
  attacker.reset();
  operator.reset();
});

describe("a server without proxy settings", () => {
  let server: TestServer;
  const hooks: Record<string, string> = {};
  /** The agent author's spec.env names the attacker's proxy in every spelling Bun's fetch reads. */
  const proxyEnv = () => ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"].map((name) => ({ name, value: attacker.url }));

  beforeAll(async () => {
    server = await startServer({
      env: { ...NO_PROXIES, ANTHROPIC_API_KEY: ANTHROPIC_KEY, ANTHROPIC_BASE_URL: models.anthropicBaseUrl, OPENAI_API_KEY: OPENAI_KEY, OPENAI_BASE_URL: models.openaiBaseUrl },
    });
    hooks.plain = await applyAgent(server, "plain", { models: ["openai/gpt-plain"] });
    hooks.allowing = await applyAgent(server, "allowing", { models: ["openai/gpt-plain"], triggers: [{ webhook: { allowedEnv: ["HTTP_PROXY", "http_proxy"] } }] });
    hooks.openai = await applyAgent(server, "spec-proxy-openai", { models: ["openai/gpt-spec-proxy"], env: proxyEnv() });
    hooks.anthropic = await applyAgent(server, "spec-proxy-anthropic", { models: ["anthropic/claude-spec-proxy"], env: proxyEnv() });
  });
  afterAll(async () => {
    await server?.stop();
  });

  test("a webhook caller's proxy and TLS variables, in any letter case, are a 400 naming them", async () => {
    const env = [
      { name: "HTTP_PROXY", value: attacker.url },
      { name: "BATCH_DATE", value: "2026-04-12" },
      { name: "https_proxy", value: attacker.url },
      { name: "Http_Proxy", value: attacker.url },
      { name: "ALL_PROXY", value: attacker.url },
      { name: "no_proxy", value: "*" },
      { name: "SSL_CERT_FILE", value: "/tmp/evil.pem" },
      { name: "NODE_EXTRA_CA_CERTS", value: "/tmp/evil.pem" },
    ];
    const res = await post(hooks.plain!, { title: "x", env });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toBe(
      "env: these variables may not be set by a webhook caller: HTTP_PROXY, https_proxy, Http_Proxy, ALL_PROXY, no_proxy, SSL_CERT_FILE, NODE_EXTRA_CA_CERTS",
    );
    // allowedEnv cannot open what the deny list closes.
    const allowed = await post(hooks.allowing!, { title: "x", env: [{ name: "http_proxy", value: attacker.url }] });
    expect(allowed.status).toBe(400);
    expect(((await allowed.json()) as { message: string }).message).toBe("env: these variables may not be set by a webhook caller: http_proxy");
    expect(models.requests).toEqual([]);
    expect(attacker.requests).toEqual([]);
  });

  test("the session API and `pai run --env` refuse them too, naming them", async () => {
    const res = await server.api("/apis/pai.io/v1/namespaces/default/sessions", {
      method: "POST",
      json: { agentDefinition: "plain", title: "x", env: [{ name: "Https_Proxy", value: attacker.url }, { name: "GIT_SSH_COMMAND", value: "sh -c id" }] },
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toBe("env: these variables may not be set for a session: Https_Proxy, GIT_SSH_COMMAND");
    const cli = await server.cli(["run", "plain", "hello", "--env", `http_proxy=${attacker.url}`, "--env", "BATCH_DATE=1"]);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toContain("env: these variables may not be set for a session: http_proxy");
    expect(models.requests).toEqual([]);
  });

  for (const [which, model, path, key] of [
    ["openai", "gpt-spec-proxy", "/v1/chat/completions", OPENAI_KEY],
    ["anthropic", "claude-spec-proxy", "/v1/messages", ANTHROPIC_KEY],
  ] as const) {
    test(`${which}: proxy variables in the agent's spec.env do not steer the model call; it goes straight to the model server`, async () => {
      const done = await runVia(hooks[which]!, `hello from ${which}`);
      expect(done.phase).toBe("Complete");
      expect(done.response).toBe(`hello from ${which}`);
      expect(models.requestsFor(model).map((r) => [r.path, r.apiKey])).toEqual([[path, key]]);
      expect(seen(attacker)).toEqual([]);
    });
  }
});

describe("a server started with the operator's HTTP_PROXY and NO_PROXY", () => {
  let server: TestServer;
  const hooks: Record<string, string> = {};

  beforeAll(async () => {
    server = await startServer({
      env: {
        ...NO_PROXIES,
        HTTP_PROXY: operator.url,
        // The Anthropic endpoint is named by host name and exempted; the OpenAI one goes through the proxy.
        NO_PROXY: "localhost",
        ANTHROPIC_API_KEY: ANTHROPIC_KEY,
        ANTHROPIC_BASE_URL: models.anthropicBaseUrl.replace("127.0.0.1", "localhost"),
        OPENAI_API_KEY: OPENAI_KEY,
        OPENAI_BASE_URL: models.openaiBaseUrl,
      },
    });
    const attackerEnv = [
      { name: "http_proxy", value: attacker.url },
      { name: "HTTP_PROXY", value: attacker.url },
      { name: "ALL_PROXY", value: attacker.url },
    ];
    hooks.openai = await applyAgent(server, "operator-openai", { models: ["openai/gpt-operator"], env: attackerEnv });
    hooks.anthropic = await applyAgent(server, "operator-anthropic", { models: ["anthropic/claude-operator"], env: attackerEnv });
    hooks.bypass = await applyAgent(server, "operator-bypass", { models: ["openai/gpt-operator"], env: [{ name: "NO_PROXY", value: "*" }, { name: "no_proxy", value: "*" }] });
  });
  afterAll(async () => {
    await server?.stop();
  });

  test("model calls go through the operator's proxy, not the one the agent's spec.env names", async () => {
    const done = await runVia(hooks.openai!, "through the operator");
    expect(done.phase).toBe("Complete");
    expect(done.response).toBe("through the operator");
    expect(seen(operator)).toEqual([{ method: "POST", path: "/v1/chat/completions", key: `Bearer ${OPENAI_KEY}` }]);
    expect(seen(attacker)).toEqual([]);
    expect(models.requestsFor("gpt-operator")).toHaveLength(1);
  });

  test("the operator's NO_PROXY sends a matching endpoint directly", async () => {
    const done = await runVia(hooks.anthropic!, "straight to localhost");
    expect(done.phase).toBe("Complete");
    expect(models.requestsFor("claude-operator").map((r) => r.apiKey)).toEqual([ANTHROPIC_KEY]);
    expect(seen(operator)).toEqual([]);
    expect(seen(attacker)).toEqual([]);
  });

  test("a NO_PROXY in the agent's spec.env does not take model calls around the operator's proxy", async () => {
    const done = await runVia(hooks.bypass!, "still through the operator");
    expect(done.phase).toBe("Complete");
    expect(seen(operator)).toEqual([{ method: "POST", path: "/v1/chat/completions", key: `Bearer ${OPENAI_KEY}` }]);
  });
});
