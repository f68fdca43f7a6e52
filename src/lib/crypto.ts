/** Tokens and hashes. Every secret comes from the OS CSPRNG; comparisons are constant-time. */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** 256 bits from the CSPRNG as 64 lower-case hex characters. */
export const randomToken = (): string => randomBytes(32).toString("hex");

export const sha256Hex = (s: string): string => createHash("sha256").update(s).digest("hex");

export const randomId = (bytes = 4): string => randomBytes(bytes).toString("hex");

export function uuid(): string {
  return crypto.randomUUID();
}

/** Constant-time string equality (lengths are compared first; a length is not a secret here). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}
