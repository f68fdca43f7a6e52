/** Signing outgoing webhooks per the Standard Webhooks spec (webhook-id / webhook-timestamp / webhook-signature). */
import { createHmac, randomBytes } from "node:crypto";

const PREFIX = "whsec_";

/** A fresh signing secret: `whsec_` + base64 of 32 random bytes. */
export function newSigningSecret(): string {
  return PREFIX + randomBytes(32).toString("base64");
}

/** The HMAC key: the base64-decoded part of a `whsec_<base64>` secret (the prefix is optional). */
function key(secret: string): Buffer {
  const k = Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, "base64");
  if (k.length === 0) throw new Error("the signing secret is empty or not base64");
  return k;
}

/** The `webhook-signature` header value: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`. */
export function sign(secret: string, id: string, timestampSeconds: number, body: string): string {
  const mac = createHmac("sha256", key(secret)).update(`${id}.${timestampSeconds}.${body}`).digest("base64");
  return `v1,${mac}`;
}

/** Every header a Standard Webhooks delivery of `body` carries; `now` is in milliseconds. */
export function signatureHeaders(secret: string, id: string, body: string, now: number = Date.now()): Record<string, string> {
  const timestamp = Math.floor(now / 1000);
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": sign(secret, id, timestamp, body),
    "content-type": "application/json",
  };
}
