/** Tokens and hashes. Every secret comes from the OS CSPRNG; comparisons are constant-time. */
import { createHash, randomBytes } from "node:crypto";

/** 256 bits from the CSPRNG as 64 lower-case hex characters. */
export const randomToken = (): string => randomBytes(32).toString("hex");

export const sha256Hex = (s: string): string => createHash("sha256").update(s).digest("hex");

export const randomId = (bytes = 4): string => randomBytes(bytes).toString("hex");

export function uuid(): string {
  return crypto.randomUUID();
}

/**
 * Constant-time string equality: every character is compared whatever the first difference
 * (lengths are compared first; a length is not a secret here). The same answer as comparing the
 * strings' bytes, without encoding both on every call (it runs on each webhook request).
 */
export function safeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
