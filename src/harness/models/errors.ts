/** Error helpers shared by the SDK-backed model clients. */
import { ModelError } from "./types";

type ErrorClass = abstract new (...args: never[]) => Error;

/** The error classes an SDK throws (both SDKs are generated alike, with the same names). */
export interface SdkErrorClasses {
  UserAbort: ErrorClass;
  ConnectionTimeout: ErrorClass;
  Connection: ErrorClass;
  Api: ErrorClass;
}

/** What a provider says about one of its API errors. */
export interface ApiErrorInfo {
  status?: number;
  /** The provider's error type or code, shown after the status. */
  kind?: string | null;
  detail: string;
  /** Whether to try the next model when the error came inside a stream, with no HTTP status. */
  fallbackWithoutStatus: boolean;
}

/**
 * Maps whatever a model call threw to a ModelError: aborts are final, timeouts and connection
 * errors fall back, API errors fall back on 408/429/5xx. The API key never reaches the message.
 */
export function toModelError(
  err: unknown,
  ctx: { id: string; apiKey: string; baseURL: string; signal?: AbortSignal },
  sdk: SdkErrorClasses,
  describe: (err: Error) => ApiErrorInfo,
): ModelError {
  const { id, apiKey, baseURL, signal } = ctx;
  if (err instanceof ModelError) return err;
  const redact = (s: string) => (apiKey.length >= 8 ? s.split(apiKey).join("***") : s).slice(0, 1000);
  if (err instanceof sdk.UserAbort || signal?.aborted) return new ModelError(`${id}: aborted`, false);
  if (err instanceof sdk.ConnectionTimeout) return new ModelError(`${id}: request to ${origin(baseURL)} timed out`, true);
  if (err instanceof sdk.Connection) {
    const cause = err.cause instanceof Error ? err.cause.message : err.message;
    return new ModelError(redact(`${id}: connection to ${origin(baseURL)} failed: ${cause}`), true);
  }
  if (err instanceof sdk.Api) {
    const info = describe(err);
    const head = [info.status, info.kind].filter((x) => x != null).join(" ");
    const fallback = info.status ? FALLBACK_STATUS(info.status) : info.fallbackWithoutStatus;
    return new ModelError(redact(`${id}: ${head ? `${head}: ` : ""}${info.detail}`), fallback, info.status);
  }
  // A socket error while reading the stream is not wrapped by the SDK.
  if (isNetworkError(err)) {
    return new ModelError(redact(`${id}: connection to ${origin(baseURL)} failed while streaming: ${(err as Error).message.replace(/\. For more information.*$/, "")}`), true);
  }
  const unknown = new ModelError(`${id}: ${err instanceof Error ? err.message : String(err)}`, false);
  return Object.assign(unknown, { cause: err });
}

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
