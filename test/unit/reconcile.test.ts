// Covers src/controller/reconcile.ts plan(): secret action, webhook URL, conditions, observedGeneration, idempotence.
import { describe, expect, test } from "bun:test";
import { plan } from "../../src/controller/reconcile";
import type { Agent, AgentStatus } from "../../src/domain/agent";
import { WEBHOOK_SECRET_TYPE } from "../../src/service/secrets";
import type { SecretRow } from "../../src/store/secrets";

const UID = "11111111-1111-4111-8111-111111111111";
const OTHER_UID = "22222222-2222-4222-8222-222222222222";
const OLD_TOKEN = "a".repeat(64);
const NEW_TOKEN = "b".repeat(64);
const T0 = "2025-01-01T00:00:00.000Z";
const T1 = "2025-01-02T00:00:00.000Z";
const PUBLIC_URL = "https://pai.example.com";

function makeAgent(opts: { webhook?: boolean; generation?: number; status?: AgentStatus } = {}): Agent {
  return {
    apiVersion: "pai.io/v1",
    kind: "Agent",
    metadata: {
      name: "my-agent",
      namespace: "team",
      uid: UID,
      generation: opts.generation ?? 3,
      resourceVersion: "7",
      creationTimestamp: T0,
    },
    spec: { models: ["pai/echo"], ...(opts.webhook === false ? {} : { triggers: [{ webhook: {} }] }) },
    status: opts.status ?? {},
  };
}

function makeSecret(overrides: Partial<SecretRow> = {}): SecretRow {
  return {
    namespace: "team",
    name: "pai-webhook-my-agent",
    uid: "33333333-3333-4333-8333-333333333333",
    type: WEBHOOK_SECRET_TYPE,
    resourceVersion: 1,
    labels: { "pai.io/agent": "my-agent" },
    annotations: null,
    data: { token: OLD_TOKEN, callbackSecret: "whsec_c2VjcmV0" },
    ownerUid: UID,
    createdAt: T0,
    ...overrides,
  };
}

/** A token generator that records how often it was called. */
function tokens() {
  const gen = { calls: 0, next: () => (gen.calls++, NEW_TOKEN) };
  return gen;
}

describe("plan with a webhook trigger", () => {
  test("no secret → create, with the new token in status.webhookUrl", () => {
    const gen = tokens();
    const p = plan({ agent: makeAgent(), secret: undefined, publicUrl: PUBLIC_URL, now: T1, newToken: gen.next });
    expect(p.secret).toEqual({ kind: "create" });
    expect(p.token).toBe(NEW_TOKEN);
    expect(gen.calls).toBe(1);
    expect(p.status.webhookUrl).toBe(`${PUBLIC_URL}/webhooks/team/my-agent/${NEW_TOKEN}`);
  });

  const urls: { name: string; publicUrl: string; expected: string }[] = [
    { name: "no trailing slash", publicUrl: "http://localhost:8080", expected: "http://localhost:8080/webhooks/team/my-agent/" },
    { name: "one trailing slash", publicUrl: "http://localhost:8080/", expected: "http://localhost:8080/webhooks/team/my-agent/" },
    { name: "several trailing slashes", publicUrl: "https://h.example/base//", expected: "https://h.example/base/webhooks/team/my-agent/" },
  ];
  test.each(urls)("publicUrl with $name", ({ publicUrl, expected }) => {
    const p = plan({ agent: makeAgent(), secret: undefined, publicUrl, now: T1, newToken: () => NEW_TOKEN });
    expect(p.status.webhookUrl).toBe(expected + NEW_TOKEN);
  });

  test("valid own secret → none, keeps its token, no new token drawn", () => {
    const gen = tokens();
    const p = plan({ agent: makeAgent(), secret: makeSecret(), publicUrl: PUBLIC_URL, now: T1, newToken: gen.next });
    expect(p.secret).toEqual({ kind: "none" });
    expect(p.token).toBe(OLD_TOKEN);
    expect(gen.calls).toBe(0);
    expect(p.status.webhookUrl).toBe(`${PUBLIC_URL}/webhooks/team/my-agent/${OLD_TOKEN}`);
  });

  const broken: { name: string; secret: SecretRow }[] = [
    { name: "owned by another agent uid", secret: makeSecret({ ownerUid: OTHER_UID }) },
    { name: "with no owner", secret: makeSecret({ ownerUid: null }) },
    { name: "of the wrong type", secret: makeSecret({ type: "Opaque" }) },
    { name: "with no token", secret: makeSecret({ data: {} }) },
    { name: "with a short token", secret: makeSecret({ data: { token: "abc123" } }) },
    { name: "with upper-case hex", secret: makeSecret({ data: { token: "A".repeat(64) } }) },
    { name: "with a non-hex token", secret: makeSecret({ data: { token: "z".repeat(64) } }) },
    { name: "with a 65-character token", secret: makeSecret({ data: { token: "a".repeat(65) } }) },
  ];
  test.each(broken)("secret $name → create with a new token", ({ secret }) => {
    const gen = tokens();
    const p = plan({ agent: makeAgent(), secret, publicUrl: PUBLIC_URL, now: T1, newToken: gen.next });
    expect(p.secret).toEqual({ kind: "create" });
    expect(p.token).toBe(NEW_TOKEN);
    expect(gen.calls).toBe(1);
    expect(p.status.webhookUrl).toEndWith(`/${NEW_TOKEN}`);
  });

  test("conditions: Ready and WebhookReady true, stamped with now and the generation", () => {
    const p = plan({ agent: makeAgent({ generation: 5 }), secret: undefined, publicUrl: PUBLIC_URL, now: T1, newToken: () => NEW_TOKEN });
    expect(p.status.observedGeneration).toBe(5);
    expect(p.status.conditions).toEqual([
      { type: "Ready", status: "True", reason: "Reconciled", message: "Agent is ready.", observedGeneration: 5, lastTransitionTime: T1 },
      {
        type: "WebhookReady",
        status: "True",
        reason: "WebhookProvisioned",
        message: "Webhook token is in Secret team/pai-webhook-my-agent.",
        observedGeneration: 5,
        lastTransitionTime: T1,
      },
    ]);
  });

  test("conditions keep lastTransitionTime when their status is unchanged", () => {
    const first = plan({ agent: makeAgent(), secret: makeSecret(), publicUrl: PUBLIC_URL, now: T0, newToken: () => NEW_TOKEN });
    const second = plan({ agent: makeAgent({ status: first.status, generation: 4 }), secret: makeSecret(), publicUrl: PUBLIC_URL, now: T1, newToken: () => NEW_TOKEN });
    expect(second.status.conditions!.map((c) => c.lastTransitionTime)).toEqual([T0, T0]);
    expect(second.status.conditions!.map((c) => c.observedGeneration)).toEqual([4, 4]);
    expect(second.status.observedGeneration).toBe(4);
  });

  test("a condition whose status flips gets the new transition time", () => {
    const previous: AgentStatus = {
      conditions: [{ type: "Ready", status: "False", reason: "Failed", message: "x", lastTransitionTime: T0 }],
    };
    const p = plan({ agent: makeAgent({ status: previous }), secret: makeSecret(), publicUrl: PUBLIC_URL, now: T1, newToken: () => NEW_TOKEN });
    expect(p.status.conditions!.find((c) => c.type === "Ready")!.lastTransitionTime).toBe(T1);
  });
});

describe("plan without a webhook trigger", () => {
  test("own secret → delete, and status has no webhookUrl", () => {
    const gen = tokens();
    const p = plan({ agent: makeAgent({ webhook: false }), secret: makeSecret(), publicUrl: PUBLIC_URL, now: T1, newToken: gen.next });
    expect(p.secret).toEqual({ kind: "delete" });
    expect(p.status.webhookUrl).toBeUndefined();
    expect("webhookUrl" in p.status).toBe(false);
    expect(p.token).toBeUndefined();
    expect(gen.calls).toBe(0);
  });

  test("own secret with a malformed token is still deleted", () => {
    const p = plan({ agent: makeAgent({ webhook: false }), secret: makeSecret({ data: {} }), publicUrl: PUBLIC_URL, now: T1, newToken: () => NEW_TOKEN });
    expect(p.secret).toEqual({ kind: "delete" });
  });

  const untouched: { name: string; secret: SecretRow | undefined }[] = [
    { name: "no secret", secret: undefined },
    { name: "a secret owned by another uid", secret: makeSecret({ ownerUid: OTHER_UID }) },
    { name: "a user secret with no owner", secret: makeSecret({ ownerUid: null, type: "Opaque" }) },
  ];
  test.each(untouched)("$name → none", ({ secret }) => {
    const p = plan({ agent: makeAgent({ webhook: false }), secret, publicUrl: PUBLIC_URL, now: T1, newToken: () => NEW_TOKEN });
    expect(p.secret).toEqual({ kind: "none" });
  });

  test("a previous webhookUrl is dropped and only Ready is reported", () => {
    const previous: AgentStatus = { webhookUrl: `${PUBLIC_URL}/webhooks/team/my-agent/${OLD_TOKEN}`, observedGeneration: 2 };
    const p = plan({ agent: makeAgent({ webhook: false, generation: 3, status: previous }), secret: undefined, publicUrl: PUBLIC_URL, now: T1, newToken: () => NEW_TOKEN });
    expect(p.status.webhookUrl).toBeUndefined();
    expect(p.status.observedGeneration).toBe(3);
    expect(p.status.conditions!.map((c) => [c.type, c.status])).toEqual([["Ready", "True"]]);
  });
});

describe("plan is idempotent", () => {
  const scenarios: { name: string; webhook: boolean; secret: () => SecretRow | undefined }[] = [
    { name: "webhook with a valid secret", webhook: true, secret: () => makeSecret() },
    { name: "webhook, secret created on the first pass", webhook: true, secret: () => undefined },
    { name: "no webhook", webhook: false, secret: () => undefined },
  ];

  test.each(scenarios)("$name: feeding the status back yields the same status", ({ webhook, secret }) => {
    let stored = secret();
    const first = plan({ agent: makeAgent({ webhook }), secret: stored, publicUrl: PUBLIC_URL, now: T0, newToken: () => NEW_TOKEN });
    // Apply the secret action as the controller would.
    if (first.secret.kind === "create") stored = makeSecret({ data: { token: first.token!, callbackSecret: "whsec_bmV3" } });
    if (first.secret.kind === "delete") stored = undefined;

    const gen = tokens();
    const second = plan({ agent: makeAgent({ webhook, status: first.status }), secret: stored, publicUrl: PUBLIC_URL, now: T1, newToken: gen.next });
    expect(second.status).toEqual(first.status);
    expect(second.secret).toEqual({ kind: "none" });
    expect(gen.calls).toBe(0);
  });

  test("plan does not mutate the agent's status", () => {
    const status: AgentStatus = { observedGeneration: 1, conditions: [{ type: "Ready", status: "True", reason: "Reconciled", message: "m", lastTransitionTime: T0 }] };
    const snapshot = structuredClone(status);
    plan({ agent: makeAgent({ status }), secret: undefined, publicUrl: PUBLIC_URL, now: T1, newToken: () => NEW_TOKEN });
    expect(status).toEqual(snapshot);
  });
});

describe("the callback signing secret", () => {
  test("a valid token without a callbackSecret gets one added, keeping the token", () => {
    const p = plan({ agent: makeAgent({}), secret: makeSecret({ data: { token: OLD_TOKEN } }), publicUrl: PUBLIC_URL, now: T1, newToken: () => NEW_TOKEN });
    expect(p.secret).toEqual({ kind: "addCallbackSecret" });
    expect(p.token).toBe(OLD_TOKEN);
    expect(p.status.webhookUrl).toEndWith(`/${OLD_TOKEN}`);
  });
});

describe("a refused manifest edit", () => {
  test("shows as Accepted=False with the reason, while Ready stays True for the running version", () => {
    const p = plan({ agent: makeAgent({ generation: 3 }), secret: makeSecret(), publicUrl: PUBLIC_URL, now: T1, newToken: () => NEW_TOKEN, problem: "a.yaml:7:7: spec.models[0]: unknown model" });
    expect(p.status.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
    expect(p.status.conditions?.find((c) => c.type === "Accepted")).toEqual({
      type: "Accepted",
      status: "False",
      reason: "InvalidManifest",
      message: "a.yaml:7:7: spec.models[0]: unknown model (still running generation 3)",
      observedGeneration: 3,
      lastTransitionTime: T1,
    });
    const fixed = plan({ agent: makeAgent({ generation: 3, status: p.status }), secret: makeSecret(), publicUrl: PUBLIC_URL, now: T1, newToken: () => NEW_TOKEN });
    expect(fixed.status.conditions?.some((c) => c.type === "Accepted")).toBe(false);
  });
});
