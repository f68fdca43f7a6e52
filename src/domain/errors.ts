/**
 * Domain errors: each carries a public message (safe to show a caller) and, optionally, a private
 * cause for the logs. The API maps them to HTTP statuses in one place.
 */

export interface FieldProblem {
  /** Dotted path of the field, e.g. `spec.models[0]`. */
  field: string;
  message: string;
  /** 1-based line and column in the source document, when it came from YAML. */
  line?: number;
  column?: number;
}

/** What a Kubernetes `Status` says about the object an error is about (kubectl prints from it). */
export interface StatusDetails {
  name?: string;
  group?: string;
  /** The resource (`agents`) for most reasons, the kind (`Agent`) for Invalid, as Kubernetes fills it. */
  kind?: string;
}

export class DomainError extends Error {
  readonly status: number = 500;
  readonly reason: string = "InternalError";
  /** Extra response headers, e.g. Retry-After. */
  headers?: Record<string, string>;
  /** The object this error is about, for the Status's `details`. */
  details?: StatusDetails;
  constructor(message: string, readonly cause?: unknown) {
    super(message);
  }
}

export class NotFoundError extends DomainError {
  override readonly status = 404;
  override readonly reason = "NotFound";
}

export class ConflictError extends DomainError {
  override readonly status = 409;
  override readonly reason = "AlreadyExists";
}

/** A write whose resourceVersion (or other precondition) no longer matches the object: read it again. */
export class StaleError extends DomainError {
  override readonly status = 409;
  override readonly reason = "Conflict";
}

export class MethodNotAllowedError extends DomainError {
  override readonly status = 405;
  override readonly reason = "MethodNotAllowed";
}

/** A watch from a resourceVersion the store no longer has: list again, then watch from the list's. */
export class ExpiredError extends DomainError {
  override readonly status = 410;
  override readonly reason = "Expired";
}

export class BadRequestError extends DomainError {
  override readonly status = 400;
  override readonly reason = "BadRequest";
}

export class UnauthorizedError extends DomainError {
  override readonly status = 401;
  override readonly reason = "Unauthorized";
}

export class ForbiddenError extends DomainError {
  override readonly status = 403;
  override readonly reason = "Forbidden";
}

export class UnsupportedMediaTypeError extends DomainError {
  override readonly status = 415;
  override readonly reason = "UnsupportedMediaType";
}

export class PayloadTooLargeError extends DomainError {
  override readonly status = 413;
  override readonly reason = "RequestEntityTooLarge";
}

/** Back-pressure: the caller should retry after `retryAfterSeconds`. */
export class TooManyRequestsError extends DomainError {
  override readonly status = 429;
  override readonly reason = "TooManyRequests";
  constructor(message: string, retryAfterSeconds: number) {
    super(message);
    this.headers = { "retry-after": String(retryAfterSeconds) };
  }
}

/** The server cannot take this now (its own configuration, or a limit of its own): nothing the caller did wrong. */
export class ServiceUnavailableError extends DomainError {
  override readonly status = 503;
  override readonly reason = "ServiceUnavailable";
  constructor(message: string, retryAfterSeconds?: number) {
    super(message);
    if (retryAfterSeconds !== undefined) this.headers = { "retry-after": String(retryAfterSeconds) };
  }
}

/** The object is well-formed JSON/YAML but breaks the schema; lists every problem found. */
export class InvalidError extends DomainError {
  override readonly status = 422;
  override readonly reason = "Invalid";
  constructor(readonly what: string, readonly problems: FieldProblem[]) {
    super(`${what} is invalid: ${problems.map(formatProblem).join("; ")}`);
  }
}

export function formatProblem(p: FieldProblem): string {
  const at = p.line ? `line ${p.line}${p.column ? `:${p.column}` : ""}: ` : "";
  return `${at}${p.field ? `${p.field}: ` : ""}${p.message}`;
}
