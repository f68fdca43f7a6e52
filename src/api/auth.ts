/**
 * Bearer-token authentication for the management API: the admin token may do everything, a
 * PaiAccessToken only its namespace. Routes with a body check the caller in their parse hook, so
 * nobody gets a body parsed or validated before they are known to be allowed.
 */
import { ForbiddenError, UnauthorizedError } from "../domain/errors";
import type { Principal, TokenService } from "../service/tokens";
import type { TSchema } from "@sinclair/typebox";
import { checkBody, parseBody } from "./params";

export function bearer(header: string | null | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1]! : null;
}

export function requirePrincipal(tokens: TokenService, header: string | null | undefined): Principal {
  const token = bearer(header);
  if (!token) throw new UnauthorizedError("missing bearer token: send Authorization: Bearer <token>");
  const p = tokens.authenticate(token);
  if (!p) throw new UnauthorizedError("invalid or revoked token");
  return p;
}

export function requireAdmin(tokens: TokenService, header: string | null | undefined): Principal {
  const p = requirePrincipal(tokens, header);
  if (!p.admin) throw new ForbiddenError("this endpoint needs the admin token; a namespace token cannot manage resources");
  return p;
}

/** The admin token, or a PaiAccessToken of `namespace`; another namespace's token gets 403. */
export function requireNamespace(tokens: TokenService, header: string | null | undefined, namespace: string): Principal {
  const p = requirePrincipal(tokens, header);
  if (!p.admin && p.namespace !== namespace) throw new ForbiddenError(`this token is for namespace "${p.namespace}", not "${namespace}"`);
  return p;
}

interface ParseContext {
  request: Request;
  contentType: string;
  params?: Record<string, string | undefined>;
}

/**
 * A parse hook that first runs `authorize` (which throws 401/403), then parses the body with the
 * caps of `parseBody` and, given a schema, checks it as sent (see `checkBody`). Elysia runs parse hooks and body validation before onBeforeHandle, so an
 * onBeforeHandle check alone would let anyone make the server parse and validate their body.
 * Elysia calls parse hooks for every method but GET and HEAD, with or without a body.
 */
export function authorizedBody(authorize: (request: Request, params: Record<string, string | undefined>) => void, schema?: TSchema) {
  return async (ctx: ParseContext) => {
    authorize(ctx.request, ctx.params ?? {});
    const body = await parseBody(ctx.request, ctx.contentType);
    if (schema) checkBody(schema, body);
    return body;
  };
}
