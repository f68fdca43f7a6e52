/**
 * The product page's "Webhook invocation", point by point, through real HTTP against a real
 * server: fire-and-forget, wait, env, pings, allowCIDRs, Linear and GitHub signatures, idempotent
 * deliveries, raw events, senders' body formats, limits, maxPending and callbacks.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { sign as githubSign } from "@octokit/webhooks-methods";
import { Webhook } from "standardwebhooks";
import { fail, hang, reply, startModelServer, type FakeModelServer } from "../fakes/model-server";
import { eventually, startServer, type TestServer } from "../helpers";

let server: TestServer;
let models: FakeModelServer;
const urls: Record<string, string> = {};

const agent = (name: string, spec: Record<string, unknown>) => ({ apiVersion: "pai.io/v1", kind: "Agent", metadata: { name }, spec });
const webhook = (extra: Record<string, unknown> = {}) => [{ webhook: extra }];

async function apply(name: string, spec: Record<string, unknown>) {
  const res = await server.api(`/apis/pai.io/v1/namespaces/default/agents/${name}`, { method: "PUT", json: agent(name, spec) });
  expect(res.status).toBeLessThan(300);
  urls[name] = await eventually(async () => {
    const a = (await (await server.api(`/apis/pai.io/v1/namespaces/default/agents/${name}`)).json()) as { status: { webhookUrl?: string } };
    return a.status.webhookUrl?.replace(/^http:\/\/localhost:\d+/, server.url);
  }, 5000, `webhook URL of ${name}`);
}

const post = (name: string, body: unknown, headers: Record<string, string> = {}, init: RequestInit = {}) =>
  fetch(urls[name]!, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: typeof body === "string" ? body : JSON.stringify(body), ...init });
const session = async (name: string) =>
  (await (await server.api(`/agents/${name}?namespace=default`)).json()) as { phase: string; title: string; response: string | null; origin: Record<string, string> };
const events = async (name: string) => ((await (await server.api(`/agents/${name}/events?namespace=default`)).json()) as { events: { type: string; content: any }[] }).events;
const sessionsOf = async (agentName: string) =>
  ((await (await server.api("/apis/pai.io/v1/namespaces/default/sessions")).json()) as { items: { session: string; agentDefinition: string }[] }).items.filter((s) => s.agentDefinition === agentName);
const waitPhase = (name: string, phases: string[]) =>
  eventually(async () => {
    const s = await session(name);
    return phases.includes(s.phase) ? s : undefined;
  }, 10_000, `${name} in ${phases}`);

beforeAll(async () => {
  models = startModelServer();
  server = await startServer({
    args: ["--allow-private-callbacks"],
    env: { ANTHROPIC_API_KEY: "k", ANTHROPIC_BASE_URL: models.anthropicBaseUrl, PAI_CALLBACK_BACKOFF_MS: "50,50" },
  });
  await apply("my-agent", { models: ["pai/echo"], triggers: webhook(), system: "You are a helpful agent." });
  await apply("claude", { models: ["anthropic/claude-sonnet-4-6"], triggers: webhook() });
  await apply("slow", { models: ["anthropic/claude-slow"], triggers: webhook() });
});
afterAll(async () => {
  await server.stop();
  await models.stop();
});
beforeEach(() => models.reset());

describe("fire-and-forget", () => {
  test("POST answers 200 {session, agentDefinition} at once; the session is committed and runs", async () => {
    const res = await post("my-agent", { title: "Analyse Q1 results and send summary to Slack" });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { session: string; agentDefinition: string };
    expect(Object.keys(body).sort()).toEqual(["agentDefinition", "session"]);
    expect(body.agentDefinition).toBe("my-agent");
    expect(body.session).toMatch(/^my-agent-wh-[0-9a-f]{8}$/);
    // Committed before the answer: readable right away.
    const s = await session(body.session);
    expect(s.title).toBe("Analyse Q1 results and send summary to Slack");
    expect(s.origin).toMatchObject({ kind: "webhook", sender: "generic" });
    expect((await waitPhase(body.session, ["Complete"])).response).toBe("Analyse Q1 results and send summary to Slack");
  });

  test('without a title the prompt is "Webhook trigger — <agent-name>"', async () => {
    for (const body of ["", "{}"]) {
      const res = await fetch(urls["my-agent"]!, { method: "POST", headers: { "content-type": "application/json" }, body });
      const { session: name } = (await res.json()) as { session: string };
      const done = await waitPhase(name, ["Complete"]);
      expect(done.title).toBe("Webhook trigger — my-agent");
      expect(done.response).toBe("Webhook trigger — my-agent");
    }
  });

  test("no Pai access token is needed; the URL token is the credential and a wrong one gets 401", async () => {
    const wrong = urls["my-agent"]!.replace(/[0-9a-f]{64}$/, "0".repeat(64));
    const before = (await sessionsOf("my-agent")).length;
    const res = await fetch(wrong, { method: "POST", headers: { "content-type": "application/json" }, body: '{"title":"x"}' });
    expect(res.status).toBe(401);
    expect((await sessionsOf("my-agent")).length).toBe(before);
  });

  test("a trailing slash works too", async () => {
    expect((await fetch(`${urls["my-agent"]}/`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"title":"slash"}' })).status).toBe(200);
  });
});

describe("synchronous (lambda) mode", () => {
  test('"wait": 300 returns the reply with phase Complete', async () => {
    models.enqueue("claude-sonnet-4-6", reply("A cow says moo."));
    const res = await post("claude", { title: "what sound does a cow make? answer in one sentence", wait: 300 });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toEqual({ session: expect.stringMatching(/^claude-wh-[0-9a-f]{8}$/), agentDefinition: "claude", response: "A cow says moo.", phase: "Complete" });
  });

  test('"wait": true works the same; an error ends with phase Error and response null', async () => {
    models.enqueue("claude-sonnet-4-6", fail(400));
    const body = (await (await post("claude", { title: "bad", wait: true })).json()) as Record<string, unknown>;
    expect(body).toMatchObject({ agentDefinition: "claude", response: null, phase: "Error" });
  });

  test("when the wait runs out: phase Running, response null, timedOut and pollUrl; the session goes on", async () => {
    models.enqueue("claude-slow", { delayMs: 2500, text: "late but fine" });
    const started = Date.now();
    const body = (await (await post("slow", { title: "take your time", wait: 1 })).json()) as Record<string, unknown>;
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(body).toEqual({
      session: body.session,
      agentDefinition: "slow",
      response: null,
      phase: "Running",
      pollUrl: `/agents/${body.session}/events?event_type=agent.message&namespace=default`,
      timedOut: true,
    });
    expect((await waitPhase(body.session as string, ["Complete"])).response).toBe("late but fine");
    // The pollUrl works with a PaiAccessToken.
    const token = (await server.cli(["create", "token", "-n", "default"])).stdout.trim();
    const polled = (await (await fetch(`${server.url}${body.pollUrl}`, { headers: { authorization: `Bearer ${token}` } })).json()) as { events: { content: { text: string } }[]; count: number };
    expect(polled.count).toBe(1);
    expect(polled.events[0]!.content.text).toBe("late but fine");
  });

  test("false, 0 and null mean fire-and-forget; wait longer than 600 is capped, not refused", async () => {
    for (const wait of [false, 0, null]) {
      const body = (await (await post("my-agent", { title: "ff", wait })).json()) as Record<string, unknown>;
      expect(Object.keys(body).sort()).toEqual(["agentDefinition", "session"]);
    }
    const capped = await post("my-agent", { title: "capped", wait: 3600 });
    expect(((await capped.json()) as { phase: string }).phase).toBe("Complete");
  });

  test("wait without title is a 400 that says so; a wait of the wrong type names the field", async () => {
    const res = await post("my-agent", { wait: 300 });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toBe("wait requires title: without a prompt the agent has nothing to do");
    for (const wait of ["300", -5, 1.5, {}]) {
      const bad = await post("my-agent", { title: "x", wait });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { message: string }).message).toStartWith("wait must be true, false, null or a whole number of seconds up to 600");
    }
  });

  test("a caller that hangs up while waiting does not cancel or harm the session", async () => {
    models.enqueue("claude-slow", { delayMs: 1000, text: "finished anyway" });
    const ac = new AbortController();
    const pending = post("slow", { title: "I will hang up", wait: 300 }, {}, { signal: ac.signal }).catch((e) => e);
    await eventually(() => models.requestsFor("claude-slow").length === 1, 5000, "model called");
    ac.abort();
    expect(await pending).toBeInstanceOf(Error);
    const name = (await sessionsOf("slow"))[0]!.session;
    expect((await waitPhase(name, ["Complete", "Error", "Cancelled"])).response).toBe("finished anyway");
  });
});

describe("env overrides", () => {
  test("env [{name, value}] reaches the session; names that could take over the process are a 400 naming them", async () => {
    const ok = await post("my-agent", { title: "Process the overnight batch", env: [{ name: "BATCH_DATE", value: "2026-04-12" }, { name: "TARGET_ENV", value: "production" }] });
    expect(ok.status).toBe(200);
    const s = (await (await server.api(`/agents/${((await ok.json()) as { session: string }).session}?namespace=default`)).json()) as { env: { name: string }[] };
    expect(s.env).toEqual([{ name: "BATCH_DATE" }, { name: "TARGET_ENV" }]);
    const bad = await post("my-agent", { title: "x", env: [{ name: "LD_PRELOAD", value: "/x.so" }, { name: "PATH", value: "/tmp" }, { name: "BUN_OPTIONS", value: "" }, { name: "PAI_PORT", value: "1" }] });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toBe("env: these variables may not be set by a webhook caller: LD_PRELOAD, PATH, BUN_OPTIONS, PAI_PORT");
  });

  test("malformed env entries name the field", async () => {
    const cases: [unknown, string][] = [
      ["BATCH=1", 'env must be a list of {"name": …, "value": …}'],
      [[{ name: "A" }], "env[0].value must be a string"],
      [[{ name: "A", value: 1 }], "env[0].value must be a string"],
      [[{ value: "x" }], "env[0].name must be a non-empty string"],
    ];
    for (const [env, message] of cases) {
      const res = await post("my-agent", { title: "x", env });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { message: string }).message).toBe(message);
    }
  });

  test("allowedEnv narrows what callers may set", async () => {
    await apply("narrow", { models: ["pai/echo"], triggers: webhook({ allowedEnv: ["BATCH_DATE"] }) });
    expect((await post("narrow", { title: "x", env: [{ name: "BATCH_DATE", value: "1" }] })).status).toBe(200);
    const res = await post("narrow", { title: "x", env: [{ name: "OTHER", value: "1" }] });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toBe("env: OTHER is not in this agent's allowedEnv (BATCH_DATE)");
  });
});

describe("verification pings", () => {
  test("GET with a valid token: 200 {ok: true} and no session; wrong token 401; unknown agent or no webhook 404", async () => {
    await server.api("/apis/pai.io/v1/namespaces/default/agents/no-hook", { method: "PUT", json: agent("no-hook", { models: ["pai/echo"] }) });
    const before = (await sessionsOf("my-agent")).length;
    const ok = await fetch(urls["my-agent"]!);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ ok: true });
    expect((await sessionsOf("my-agent")).length).toBe(before);
    const token = urls["my-agent"]!.split("/").at(-1)!;
    expect((await fetch(urls["my-agent"]!.replace(token, "f".repeat(64)))).status).toBe(401);
    expect((await fetch(`${server.url}/webhooks/default/ghost/${token}`)).status).toBe(404);
    expect((await fetch(`${server.url}/webhooks/default/no-hook/${token}`)).status).toBe(404);
    expect((await fetch(`${server.url}/webhooks/other-ns/my-agent/${token}`)).status).toBe(404);
  });
});

describe("token rotation", () => {
  test("after the Secret is deleted the old URL answers 401 to POST at once", async () => {
    await apply("rotating", { models: ["pai/echo"], triggers: webhook() });
    const old = urls["rotating"]!;
    expect((await post("rotating", { title: "before" })).status).toBe(200);
    await server.cli(["delete", "secret", "pai-webhook-rotating"]);
    expect((await fetch(old, { method: "POST", headers: { "content-type": "application/json" }, body: '{"title":"after"}' })).status).toBe(401);
  });
});

describe("Linear", () => {
  const SECRET = "lin_wh_signing_secret";
  const project = (ts = Date.now()) => JSON.stringify({ action: "create", type: "Project", data: { name: "WhatsApp Provider", description: "..." }, webhookTimestamp: ts });
  const linearHeaders = (body: string, secret = SECRET, delivery: string = crypto.randomUUID()) => ({
    "linear-signature": createHmac("sha256", secret).update(body).digest("hex"),
    "linear-delivery": delivery,
    "linear-event": "Project",
    "user-agent": "Linear-Webhook",
  });

  beforeAll(async () => {
    await apply("planner", { models: ["anthropic/claude-planner"], triggers: webhook({ linearSignatureSecret: SECRET }) });
  });

  test("a signed delivery starts a session titled from the payload; the agent gets the payload as webhook.json", async () => {
    const body = project();
    const res = await post("planner", body, linearHeaders(body, SECRET, "delivery-1"));
    expect(res.status).toBe(200);
    const { session: name } = (await res.json()) as { session: string };
    const s = await waitPhase(name, ["Complete", "Error"]);
    expect(s).toMatchObject({ phase: "Complete", title: "Project created: WhatsApp Provider", origin: { kind: "webhook", sender: "linear", delivery: "delivery-1", event: "Project" } });
    const prompt = models.requestsFor("claude-planner")[0]!.messages[0]!.content;
    expect(prompt).toStartWith("Project created: WhatsApp Provider\n\n");
    expect(prompt).toContain("webhook.json");
    const file = join(server.dataDir, "sessions", "default", name, "webhook.json");
    expect(JSON.parse(readFileSync(file, "utf8"))).toEqual(JSON.parse(body));
  });

  test("a wrong signature, a missing one and a stale timestamp get 401 and no session", async () => {
    const before = (await sessionsOf("planner")).length;
    const body = project();
    const wrong = await post("planner", body, linearHeaders(body, "not-the-secret"));
    expect(wrong.status).toBe(401);
    const { "linear-signature": _, ...unsigned } = linearHeaders(body);
    expect((await post("planner", body, unsigned)).status).toBe(401);
    const plain = await post("planner", { title: "no signature at all" });
    expect(plain.status).toBe(401);
    const stale = project(Date.now() - 120_000);
    const old = await post("planner", stale, linearHeaders(stale));
    expect(old.status).toBe(401);
    expect(((await old.json()) as { message: string }).message).toContain("webhookTimestamp");
    expect((await sessionsOf("planner")).length).toBe(before);
  });

  test("linearSignatureSecret as {secretRef: {name, key}} is resolved from the store's secrets", async () => {
    await server.cli(["create", "secret", "linear-signing", "--from-literal", `signing=${SECRET}-ref`]);
    await apply("planner-ref", { models: ["pai/echo"], triggers: webhook({ linearSignatureSecret: { secretRef: { name: "linear-signing", key: "signing" } } }) });
    const body = JSON.stringify({ action: "update", type: "Project", data: { name: "Roadmap" }, webhookTimestamp: Date.now() });
    const res = await post("planner-ref", body, linearHeaders(body, `${SECRET}-ref`));
    expect(res.status).toBe(200);
    expect((await waitPhase(((await res.json()) as { session: string }).session, ["Complete"])).title).toBe("Project updated: Roadmap");
    expect((await post("planner-ref", body, linearHeaders(body, SECRET))).status).toBe(401);
  });

  test("an Issue event gets a sensible title", async () => {
    const body = JSON.stringify({ action: "create", type: "Issue", data: { identifier: "ENG-42", title: "Login fails on Safari" }, webhookTimestamp: Date.now() });
    const res = await post("planner", body, linearHeaders(body));
    expect((await session(((await res.json()) as { session: string }).session)).title).toBe("Issue created: ENG-42 Login fails on Safari");
  });
});

describe("GitHub", () => {
  const SECRET = "gh-secret";
  const pr = JSON.stringify({ action: "opened", number: 7, pull_request: { title: "Add webhooks", number: 7 }, repository: { full_name: "acme/widgets" } });

  beforeAll(async () => {
    await apply("reviewer", { models: ["pai/echo"], triggers: webhook({ githubSignatureSecret: SECRET }) });
  });

  test("a pull_request signed with @octokit/webhooks-methods starts a titled session", async () => {
    const res = await post("reviewer", pr, { "x-github-event": "pull_request", "x-github-delivery": crypto.randomUUID(), "x-hub-signature-256": await githubSign(SECRET, pr) });
    expect(res.status).toBe(200);
    const s = await waitPhase(((await res.json()) as { session: string }).session, ["Complete"]);
    expect(s.title).toBe("Pull request opened: Add webhooks (#7) in acme/widgets");
    expect(s.origin).toMatchObject({ sender: "github", event: "pull_request" });
  });

  test("the ping event answers 200 without a session; a bad signature gets 401", async () => {
    const before = (await sessionsOf("reviewer")).length;
    const ping = JSON.stringify({ zen: "Keep it logically awesome.", hook_id: 1 });
    const res = await post("reviewer", ping, { "x-github-event": "ping", "x-github-delivery": crypto.randomUUID(), "x-hub-signature-256": await githubSign(SECRET, ping) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
    const bad = await post("reviewer", pr, { "x-github-event": "pull_request", "x-hub-signature-256": await githubSign("wrong", pr) });
    expect(bad.status).toBe(401);
    expect((await sessionsOf("reviewer")).length).toBe(before);
  });

  test("GitHub's form-encoded deliveries (payload=…) work, signed over the raw form", async () => {
    const form = `payload=${encodeURIComponent(pr)}`;
    const res = await post("reviewer", form, { "content-type": "application/x-www-form-urlencoded", "x-github-event": "pull_request", "x-hub-signature-256": await githubSign(SECRET, form) });
    expect(res.status).toBe(200);
    expect((await session(((await res.json()) as { session: string }).session)).title).toBe("Pull request opened: Add webhooks (#7) in acme/widgets");
  });
});

describe("retried deliveries", () => {
  test("the same Idempotency-Key returns the same session with the same body, once", async () => {
    const key = crypto.randomUUID();
    const first = await (await post("my-agent", { title: "once" }, { "idempotency-key": key })).json();
    const again = await (await post("my-agent", { title: "once" }, { "idempotency-key": key })).json();
    expect(again).toEqual(first);
    const concurrent = await Promise.all(Array.from({ length: 5 }, () => post("my-agent", { title: "once" }, { "idempotency-key": key }).then((r) => r.json())));
    for (const c of concurrent) expect(c).toEqual(first);
    expect((await sessionsOf("my-agent")).filter((s) => s.session === (first as { session: string }).session)).toHaveLength(1);
  });

  test("five concurrent first deliveries with one key make one session", async () => {
    const key = crypto.randomUUID();
    const bodies = await Promise.all(Array.from({ length: 5 }, () => post("my-agent", { title: "race" }, { "webhook-id": key }).then((r) => r.json() as Promise<{ session: string }>)));
    expect(new Set(bodies.map((b) => b.session)).size).toBe(1);
  });

  test("a retried delivery in wait mode waits on the same session", async () => {
    models.enqueue("claude-slow", { delayMs: 800, text: "one answer" });
    const key = crypto.randomUUID();
    const [a, b] = await Promise.all([post("slow", { title: "q", wait: 30 }, { "x-github-delivery": key }), Bun.sleep(200).then(() => post("slow", { title: "q", wait: 30 }, { "x-github-delivery": key }))]);
    const [ja, jb] = [await a.json(), await b.json()];
    expect(ja).toEqual(jb);
    expect(ja).toMatchObject({ response: "one answer", phase: "Complete" });
    expect(models.requestsFor("claude-slow")).toHaveLength(1);
  });
});

describe("raw events and senders' formats", () => {
  test("a JSON body without a title is kept: webhook.json, a note after the prompt, and the sender recorded", async () => {
    models.enqueue("claude-sonnet-4-6", reply("ok"));
    const event = { event: "deal.won", amount: 1200, customer: { id: "c_1" } };
    const res = await post("claude", event, { "idempotency-key": "zap-123" });
    const { session: name } = (await res.json()) as { session: string };
    const s = await waitPhase(name, ["Complete"]);
    expect(s.title).toBe("Webhook trigger — claude");
    expect(s.origin).toMatchObject({ kind: "webhook", sender: "generic", delivery: "zap-123" });
    const prompt = models.requestsFor("claude-sonnet-4-6")[0]!.messages[0]!.content;
    expect(prompt).toBe("Webhook trigger — claude\n\nThe webhook's payload (delivery zap-123) is in the file webhook.json in your working folder.");
    expect(JSON.parse(readFileSync(join(server.dataDir, "sessions", "default", name, "webhook.json"), "utf8"))).toEqual(event);
  });

  test("a title with extra fields (n8n, Retool) keeps the extra fields as the payload", async () => {
    const res = await post("my-agent", { title: "Summarise this row", row: { id: 7, name: "Ada" } });
    const { session: name } = (await res.json()) as { session: string };
    expect((await waitPhase(name, ["Complete"])).response).toStartWith("Summarise this row\n\nThe webhook's payload");
    expect(existsSync(join(server.dataDir, "sessions", "default", name, "webhook.json"))).toBe(true);
  });

  test("form-encoded bodies, JSON sent as a form by curl -d, and a charset parameter all work", async () => {
    const form = await post("my-agent", "title=from+a+form&wait=true", { "content-type": "application/x-www-form-urlencoded" });
    expect(await form.json()).toMatchObject({ response: "from a form", phase: "Complete" });
    const curlD = await post("my-agent", '{"title": "curl without -H", "wait": 30}', { "content-type": "application/x-www-form-urlencoded" });
    expect(await curlD.json()).toMatchObject({ response: "curl without -H", phase: "Complete" });
    const charset = await post("my-agent", '{"title": "héllo", "wait": 30}', { "content-type": "application/json; charset=utf-8" });
    expect(await charset.json()).toMatchObject({ response: "héllo", phase: "Complete" });
  });

  test("bad bodies: malformed JSON 400, wrong field type 400 naming it, other media types 415, over 1 MiB 413", async () => {
    const malformed = await post("my-agent", '{"title": ');
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { message: string }).message).toStartWith("request body is not valid JSON");
    const typed = await post("my-agent", { title: 42 });
    expect(typed.status).toBe(400);
    expect(((await typed.json()) as { message: string }).message).toBe("title must be a string");
    const cb = await post("my-agent", { title: "x", callbackUrl: 5 });
    expect(((await cb.json()) as { message: string }).message).toBe("callbackUrl must be a string");
    const xml = await post("my-agent", "<title>x</title>", { "content-type": "application/xml" });
    expect(xml.status).toBe(415);
    const big = await post("my-agent", { title: "x".repeat(1024 * 1024 + 10) });
    expect(big.status).toBe(413);
  });
});

describe("maxPending", () => {
  test("beyond it: 429 with Retry-After, and no session", async () => {
    await apply("busy", { models: ["anthropic/claude-busy"], maxConcurrentSessions: 1, triggers: webhook({ maxPending: 1 }) });
    models.script((m) => (m === "claude-busy" ? hang : undefined));
    const first = (await (await post("busy", { title: "runs" })).json()) as { session: string };
    await waitPhase(first.session, ["Running"]);
    expect((await post("busy", { title: "waits" })).status).toBe(200);
    const third = await post("busy", { title: "refused" });
    expect(third.status).toBe(429);
    expect(third.headers.get("retry-after")).toBe("10");
    expect((await sessionsOf("busy")).length).toBe(2);
    for (const s of await sessionsOf("busy")) await server.cli(["cancel", s.session]);
  });
});

describe("callbackUrl", () => {
  test("when the session ends, a signed {session, agentDefinition, response, phase} is POSTed, retried, and each attempt recorded", async () => {
    const received: { headers: Record<string, string>; body: string }[] = [];
    const receiver = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(req) {
        received.push({ headers: Object.fromEntries(req.headers), body: await req.text() });
        return new Response(null, { status: received.length === 1 ? 500 : 204 });
      },
    });
    try {
      const res = await post("my-agent", { title: "call me back", callbackUrl: `http://127.0.0.1:${receiver.port}/hook` });
      const { session: name } = (await res.json()) as { session: string };
      await eventually(() => received.length === 2, 5000, "two attempts");
      const body = JSON.parse(received[1]!.body);
      expect(body).toEqual({ session: name, agentDefinition: "my-agent", response: "call me back", phase: "Complete" });
      const secret = JSON.parse((await server.cli(["get", "secret", "pai-webhook-my-agent", "-o", "json"])).stdout).data.callbackSecret;
      const verified = new Webhook(Buffer.from(secret, "base64").toString()).verify(received[1]!.body, received[1]!.headers);
      expect(verified).toEqual(body);
      const attempts = await eventually(async () => {
        const cb = (await events(name)).filter((e) => e.type === "session.callback");
        return cb.length === 2 ? cb : undefined;
      }, 5000, "attempts recorded");
      expect(attempts.map((e) => [e.content.attempt, e.content.status])).toEqual([
        [1, 500],
        [2, 204],
      ]);
    } finally {
      receiver.stop(true);
    }
  });

  test("loopback and private callback addresses are refused unless the operator allows them", async () => {
    const strict = await startServer();
    try {
      await strict.api("/apis/pai.io/v1/namespaces/default/agents/a", { method: "PUT", json: agent("a", { models: ["pai/echo"], triggers: webhook() }) });
      const url = await eventually(async () => ((await (await strict.api("/apis/pai.io/v1/namespaces/default/agents/a")).json()) as { status: { webhookUrl?: string } }).status.webhookUrl, 5000, "url");
      for (const cb of ["http://127.0.0.1:9/x", "http://169.254.169.254/latest/meta-data", "http://[::1]/x", "http://10.1.2.3/x", "http://localhost:9/x", "ftp://example.com/x"]) {
        const res = await fetch(url.replace(/^http:\/\/localhost:\d+/, strict.url), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ title: "x", callbackUrl: cb }) });
        expect(res.status).toBe(400);
        expect(((await res.json()) as { message: string }).message).toContain("callbackUrl");
      }
    } finally {
      await strict.stop();
    }
  });
});

describe("metrics", () => {
  test("/metrics counts webhook answers by code and sessions by phase, for any valid token only", async () => {
    expect((await fetch(`${server.url}/metrics`)).status).toBe(401);
    const wrong = urls["my-agent"]!.replace(/[0-9a-f]{64}$/, "0".repeat(64));
    await fetch(wrong, { method: "POST", body: "{}" });
    const done = (await (await post("my-agent", { title: "count me", wait: 30 })).json()) as { phase: string };
    expect(done.phase).toBe("Complete");
    const nsToken = (await server.cli(["create", "token", "-n", "default"])).stdout.trim();
    const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${nsToken}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain; version=0.0.4");
    const text = await res.text();
    const value = (line: string) => Number(new RegExp(`^${line.replace(/[{}"]/g, "\\$&")} (\\d+)$`, "m").exec(text)?.[1] ?? NaN);
    expect(value('pai_webhook_requests_total{code="200",method="POST"}')).toBeGreaterThan(10);
    expect(value('pai_webhook_requests_total{code="401",method="POST"}')).toBeGreaterThanOrEqual(1);
    expect(value('pai_sessions_finished_total{phase="Complete"}')).toBeGreaterThan(5);
    expect(value("pai_sessions_started_total")).toBeGreaterThan(10);
    expect(value("pai_agents")).toBeGreaterThan(5);
    expect(value("process_resident_memory_bytes")).toBeGreaterThan(10_000_000);
    expect(text).toContain("# TYPE pai_sessions_running gauge");
  });
});
