/**
 * Errors as Kubernetes `Status` objects, mapped in one place. Unknown errors become a 500 with a
 * generic message (the cause goes to the log, never to the caller).
 */
import { DomainError, InvalidError } from "../domain/errors";

export interface StatusBody {
  kind: "Status";
  apiVersion: "v1";
  status: "Failure" | "Success";
  message: string;
  reason: string;
  code: number;
  details?: { causes?: { field?: string; message: string }[]; name?: string; kind?: string };
}

export function failure(code: number, reason: string, message: string, details?: StatusBody["details"]): StatusBody {
  return { kind: "Status", apiVersion: "v1", status: "Failure", message, reason, code, ...(details ? { details } : {}) };
}

export function statusOf(err: DomainError): StatusBody {
  if (err instanceof InvalidError)
    return failure(err.status, err.reason, err.message, {
      causes: err.problems.map((p) => ({ field: p.field, message: p.line ? `line ${p.line}: ${p.message}` : p.message })),
    });
  return failure(err.status, err.reason, err.message);
}

export function jsonResponse(body: unknown, status = 200, headers?: Record<string, string>): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}
