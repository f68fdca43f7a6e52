/** Bearer-token authentication for the management API: the admin token may do everything. */
import { ForbiddenError, UnauthorizedError } from "../domain/errors";
import type { Principal, TokenService } from "../service/tokens";

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
