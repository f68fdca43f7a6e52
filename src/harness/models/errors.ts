/** Error helpers shared by the SDK-backed model clients. */

/** Statuses worth trying the next model for: timeout, rate limit, server errors, overloaded (529). */
export const FALLBACK_STATUS = (s: number) => s === 408 || s === 429 || s >= 500;

/** A socket error from fetch while reading the body (Bun: `code: "ECONNRESET"`; Node/undici: cause `UND_ERR_SOCKET`). */
export function isNetworkError(err: unknown): boolean {
  const code = (e: unknown) => (e && typeof e === "object" && "code" in e ? String(e.code) : "");
  return /^(ECONN|EPIPE|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|UND_ERR)/.test(code(err) || code((err as { cause?: unknown })?.cause));
}

/** The base URL without credentials or query, safe to show. */
export function origin(baseURL: string): string {
  try {
    const u = new URL(baseURL);
    return `${u.origin}${u.pathname.replace(/\/$/, "")}`;
  } catch {
    return "the API";
  }
}
