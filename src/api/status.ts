/**
 * Errors as Kubernetes `Status` objects, mapped in one place. Unknown errors become a 500 with a
 * generic message (the cause goes to the log, never to the caller).
 */
import { DomainError, InvalidError } from "../domain/errors";
import type { Logger } from "../lib/log";

export interface StatusBody {
  kind: "Status";
  apiVersion: "v1";
  status: "Failure" | "Success";
  message: string;
  reason: string;
  code: number;
  details?: { causes?: { field?: string; message: string; reason?: string }[]; name?: string; group?: string; kind?: string };
}

export function failure(code: number, reason: string, message: string, details?: StatusBody["details"]): StatusBody {
  return { kind: "Status", apiVersion: "v1", status: "Failure", message, reason, code, ...(details ? { details } : {}) };
}

export function statusOf(err: DomainError): StatusBody {
  if (err instanceof InvalidError)
    return failure(err.status, err.reason, err.message, {
      ...err.details,
      causes: err.problems.map((p) => ({
        // Kubernetes' cause reasons: kubectl shows them, clients switch on them.
        reason: p.message === "required field is missing" ? "FieldValueRequired" : "FieldValueInvalid",
        field: p.field,
        message: p.line ? `line ${p.line}: ${p.message}` : p.message,
      })),
    });
  return failure(err.status, err.reason, err.message, err.details);
}

export function jsonResponse(body: unknown, status = 200, headers?: Record<string, string>): Response {
  return Response.json(body, headers ? { status, headers } : { status });
}

/** A request path fit for the log: the token part of a webhook URL is replaced. */
export function safePath(request: Request): string {
  return new URL(request.url).pathname.replace(/^(\/webhooks\/[^/]+\/[^/]+\/)[^/]+/, "$1***");
}

/**
 * Any error as a response: domain errors with their status and message, Elysia's own (no route,
 * unparseable body, schema) as 4xx, anything else as a 500 whose cause goes to the log only.
 */
export function errorResponse(error: unknown, request: Request, log: Logger, code?: string | number): Response {
  if (error instanceof DomainError) return jsonResponse(statusOf(error), error.status, error.headers);
  switch (code) {
    case "NOT_FOUND":
      return jsonResponse(failure(404, "NotFound", `no route for ${request.method} ${safePath(request)}`), 404);
    case "PARSE": {
      const cause = (error as Error).cause;
      if (cause instanceof DomainError) return jsonResponse(statusOf(cause), cause.status);
      return jsonResponse(failure(400, "BadRequest", "request body is not valid JSON"), 400);
    }
    case "VALIDATION": {
      const all = (error as { all?: { path?: string; summary?: string; message?: string }[] }).all ?? [];
      const causes = all.map((e) => ({ field: (e.path ?? "").replace(/^\//, "").replace(/\//g, "."), message: e.summary ?? e.message ?? "invalid" }));
      const message = causes.length ? causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message)).join("; ") : "invalid request";
      return jsonResponse(failure(400, "BadRequest", message, { causes }), 400);
    }
  }
  const sqlite = (error as { code?: unknown } | null)?.code;
  if (typeof sqlite === "string" && /^SQLITE_(FULL|IOERR|BUSY|LOCKED|READONLY|CANTOPEN)/.test(sqlite)) {
    // The store cannot take the write (disk full, I/O error, locked): nothing was accepted; retry later.
    log.error("store unavailable", { method: request.method, path: safePath(request), code: sqlite, error: (error as Error).message });
    return jsonResponse(failure(503, "ServiceUnavailable", "the server cannot store this right now; nothing was accepted, retry later"), 503, { "retry-after": "5" });
  }
  const status = (error as { status?: number } | null)?.status;
  if (typeof status === "number" && status >= 400 && status < 500)
    return jsonResponse(failure(status, "BadRequest", (error as Error).message ?? "bad request"), status);
  log.error("unhandled error", { method: request.method, path: safePath(request), error: (error as Error)?.stack ?? String(error) });
  return jsonResponse(failure(500, "InternalError", "internal error; see the server log"), 500);
}
