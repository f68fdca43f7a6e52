// Covers src/lib/standard-webhooks.ts: secrets and signatures, checked with the reference `standardwebhooks` verifier.
import { describe, expect, test } from "bun:test";
import { Webhook } from "standardwebhooks";
import { newSigningSecret, sign, signatureHeaders } from "../../src/lib/standard-webhooks";

const body = JSON.stringify({ type: "session.completed", data: { name: "triage-1", phase: "Succeeded" } });

describe("newSigningSecret", () => {
  test("is whsec_ + base64 of 32 bytes, different every time", () => {
    const a = newSigningSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(a.slice(6), "base64")).toHaveLength(32);
    expect(newSigningSecret()).not.toBe(a);
  });
});

describe("sign", () => {
  test("matches the reference library", () => {
    const secret = newSigningSecret();
    const ts = 1_744_123_456;
    expect(sign(secret, "msg_1", ts, body)).toBe(new Webhook(secret).sign("msg_1", new Date(ts * 1000), body));
  });

  test("matches the spec's example", () => {
    // From the Standard Webhooks spec / reference library tests.
    const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const payload = '{"test": 2432232314}';
    expect(sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, payload)).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  });

  test("an empty secret is a bug", () => expect(() => sign("whsec_", "msg_1", 1, body)).toThrow());
});

describe("signatureHeaders", () => {
  test("carries every header, timestamp in seconds", () => {
    const h = signatureHeaders(newSigningSecret(), "msg_2", body, 1_744_123_456_789);
    expect(Object.keys(h).sort()).toEqual(["content-type", "webhook-id", "webhook-signature", "webhook-timestamp"]);
    expect(h["webhook-id"]).toBe("msg_2");
    expect(h["webhook-timestamp"]).toBe("1744123456");
    expect(h["content-type"]).toBe("application/json");
    expect(h["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
  });

  test("verifies with the reference library", () => {
    const secret = newSigningSecret();
    const h = signatureHeaders(secret, "msg_3", body);
    expect(new Webhook(secret).verify(body, h)).toEqual(JSON.parse(body));
  });

  test("a tampered body fails", () => {
    const secret = newSigningSecret();
    const h = signatureHeaders(secret, "msg_4", body);
    expect(() => new Webhook(secret).verify(body.replace("Succeeded", "Failed"), h)).toThrow();
  });

  test("another id, another secret, or an old timestamp fails", () => {
    const secret = newSigningSecret();
    const h = signatureHeaders(secret, "msg_5", body);
    expect(() => new Webhook(secret).verify(body, { ...h, "webhook-id": "msg_6" })).toThrow();
    expect(() => new Webhook(newSigningSecret()).verify(body, h)).toThrow();
    const old = signatureHeaders(secret, "msg_5", body, Date.now() - 10 * 60_000);
    expect(() => new Webhook(secret).verify(body, old)).toThrow();
  });
});
