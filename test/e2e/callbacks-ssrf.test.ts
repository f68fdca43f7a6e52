/**
 * Callbacks against server-side request forgery. Delivery runs on the real store and services with
 * real HTTP on loopback; only DNS and the address rule are stood in for (see fakes/rebinding), so a
 * host name can rebind between check and connection. The request-time check runs in a real server.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { Webhook } from "standardwebhooks";
import { createStore } from "../../src/store";
import { createTopics } from "../../src/service/topics";
import { createSecretService } from "../../src/service/secrets";
import { createSessionService, type LocalSessionService as SessionService } from "../../src/service/sessions";
import { createCallbackService, type CallbackDeps } from "../../src/service/callbacks";
import { createLogger } from "../../src/lib/log";
import { newSigningSecret } from "../../src/lib/standard-webhooks";
import { webhookSecretName } from "../../src/domain/names";
import { CallbackState, EventType, Phase } from "../../src/domain/session";
import type { Agent } from "../../src/domain/agent";
import { ALLOWED, FORBIDDEN, onlyAllowed, rebindingResolver, startPair, type Pair } from "../fakes/rebinding";
import { eventually, removeDir, startServer, tempDir, type TestServer } from "../helpers";

describe("delivery", () => {
  let dir: string;
  let store: ReturnType<typeof createStore>;
  let sessions: SessionService;
  let signing: string;
  let pair: Pair | undefined;
  /** Starts a session with `callbackUrl`, ends it, and returns its callback state and attempts. */
  let deliver: (url: string, deps: Partial<CallbackDeps>) => Promise<{ state: string | null | undefined; attempts: Record<string, unknown>[] }>;
  const log = createLogger("error", () => {});

  const agent = {
    apiVersion: "pai.io/v1",
    kind: "Agent",
    metadata: { name: "cb", namespace: "default", uid: "u-cb", generation: 1, resourceVersion: "1", creationTimestamp: new Date().toISOString() },
    spec: { models: ["pai/echo"] },
  } as unknown as Agent;

  beforeAll(() => {
    dir = tempDir("pai-cb-ssrf-");
    store = createStore(dir);
    const secrets = createSecretService({ store, topics: createTopics() });
    signing = newSigningSecret();
    secrets.put({ namespace: "default", name: webhookSecretName("cb"), data: { callbackSecret: signing } });
    sessions = createSessionService({ store, log });
    deliver = async (callbackUrl, deps) => {
      const callbacks = createCallbackService({ sessions, objects: { findSecret: secrets.find }, log, allowPrivate: false, backoffMs: [10], timeoutMs: 2000, ...deps });
      const s = await sessions.start(agent, { title: "t", origin: { kind: "webhook" }, kind: "wh", callbackUrl });
      const done = await sessions.finish(s, { phase: Phase.Complete, response: "done", error: null });
      callbacks.enqueue(done);
      await callbacks.idle();
      await sessions.flush();
      const attempts = sessions.events("default", s.name, { type: EventType.Callback }).map((e) => e.content as Record<string, unknown>);
      return { state: sessions.find("default", s.name)!.callbackState, attempts };
    };
  });
  afterAll(() => {
    store.close();
    removeDir(dir);
  });
  afterEach(() => {
    pair?.stop();
    pair = undefined;
  });


  test("a host that rebinds to a forbidden address after the check gets the signed POST at the checked address", async () => {
    pair = startPair();
    const dns = rebindingResolver();
    const { state, attempts } = await deliver(`http://rebind.test:${pair.port}/hook`, { resolve: dns.resolve, addressProblem: onlyAllowed() });
    expect(state).toBe(CallbackState.Delivered);
    expect(attempts).toEqual([{ url: `http://rebind.test:${pair.port}/hook`, attempt: 1, status: 200 }]);
    expect(dns.calls).toEqual(["rebind.test"]);
    expect(pair.forbidden.seen).toEqual([]);
    const [seen] = pair.allowed.seen;
    expect(seen).toMatchObject({ method: "POST", path: "/hook", host: `rebind.test:${pair.port}` });
    expect(new Webhook(signing).verify(seen!.body, seen!.headers)).toMatchObject({ agentDefinition: "cb", phase: "Complete", response: "done" });
  });

  test("each retry resolves once and is checked again: a host that has turned forbidden is refused, not retried", async () => {
    pair = startPair(() => new Response(null, { status: 503 }));
    const dns = rebindingResolver();
    const { state, attempts } = await deliver(`http://rebind.test:${pair.port}/hook`, { resolve: dns.resolve, addressProblem: onlyAllowed() });
    expect(state).toBe(CallbackState.Failed);
    expect(attempts).toEqual([
      { url: `http://rebind.test:${pair.port}/hook`, attempt: 1, status: 503 },
      { url: `http://rebind.test:${pair.port}/hook`, attempt: 2, error: `callbackUrl host rebind.test resolves to ${FORBIDDEN}, forbidden in this test` },
    ]);
    expect(pair.allowed.seen).toHaveLength(1);
    expect(pair.forbidden.seen).toEqual([]);
  });

  test("a redirect is not followed: it counts as a failed attempt and is retried", async () => {
    pair = startPair(() => new Response(null, { status: 302, headers: { location: `http://${FORBIDDEN}:${pair!.port}/stolen` } }));
    const { state, attempts } = await deliver(`http://redirect.test:${pair.port}/hook`, { resolve: async () => [ALLOWED], addressProblem: onlyAllowed() });
    expect(state).toBe(CallbackState.Failed);
    expect(attempts.map((a) => a.status)).toEqual([302, 302]);
    expect(pair.forbidden.seen).toEqual([]);
  });

  test("a name that does not resolve is a network error and is retried", async () => {
    let calls = 0;
    const resolve = async () => {
      if (++calls === 1) throw Object.assign(new Error("getaddrinfo EAI_AGAIN"), { code: "EAI_AGAIN" });
      return [ALLOWED];
    };
    pair = startPair();
    const { state, attempts } = await deliver(`http://flaky.test:${pair.port}/hook`, { resolve, addressProblem: onlyAllowed() });
    expect(state).toBe(CallbackState.Delivered);
    expect(attempts.map((a) => a.error ?? a.status)).toEqual(["host flaky.test does not resolve (EAI_AGAIN)", 200]);
  });

  test("with the default rule, an IPv6 spelling of loopback is refused at delivery without a connection", async () => {
    pair = startPair();
    const { state, attempts } = await deliver(`http://[::ffff:7f00:1]:${pair.port}/hook`, {});
    expect(state).toBe(CallbackState.Failed);
    expect(attempts).toEqual([{ url: `http://[::ffff:7f00:1]:${pair.port}/hook`, attempt: 1, error: "callbackUrl host ::ffff:7f00:1 is a loopback address" }]);
    expect(pair.forbidden.seen).toEqual([]);
  });
});

describe("request time", () => {
  let server: TestServer;
  let url: string;

  beforeAll(async () => {
    server = await startServer();
    const manifest = { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name: "a" }, spec: { models: ["pai/echo"], triggers: [{ webhook: {} }] } };
    expect((await server.api("/apis/pai.io/v1/namespaces/default/agents/a", { method: "PUT", json: manifest })).status).toBeLessThan(300);
    url = await eventually(async () => {
      const a = (await (await server.api("/apis/pai.io/v1/namespaces/default/agents/a")).json()) as { status: { webhookUrl?: string } };
      return a.status.webhookUrl?.replace(/^http:\/\/localhost:\d+/, server.url);
    }, 5000, "webhook URL");
  });
  afterAll(() => server.stop());

  const refused: [string, string][] = [
    ["http://[::127.0.0.1]/x", "IPv4-compatible address (deprecated) of 127.0.0.1"],
    ["http://[::ffff:0:7f00:1]/x", "IPv4-translated address (obsolete) of 127.0.0.1"],
    ["http://[2002:7f00:1::]/x", "6to4 address (deprecated) of 127.0.0.1"],
    ["http://[2002:a9fe:a9fe::]/x", "6to4 address (deprecated) of 169.254.169.254"],
    ["http://[64:ff9b:1::a9fe:a9fe]/x", "local-use NAT64 address"],
    ["http://[64:ff9b::a9fe:a9fe]/x", "NAT64 address of 169.254.169.254, a link-local address"],
    ["http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/x", "Teredo address"],
    ["http://[fec0::1]/x", "site-local address"],
    ["http://2130706433/x", "127.0.0.1 is a loopback address"],
    ["http://0x7f.1/x", "127.0.0.1 is a loopback address"],
    ["http://0177.0.0.1/x", "127.0.0.1 is a loopback address"],
    ["http://100.64.0.1/x", "carrier-grade NAT"],
    ["http://198.18.0.1/x", "benchmarking"],
    ["http://203.0.113.1/x", "documentation"],
  ];
  test.each(refused)("callbackUrl %s gets a 400 that says why", async (callbackUrl, why) => {
    const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ title: "x", callbackUrl }) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toContain(why);
  });
});
