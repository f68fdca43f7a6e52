/**
 * PaiAccessTokens. A namespace token reads that namespace's sessions; the admin token (namespace
 * null) may do everything and is made by `pai serve` on first start, written to a 0600 file.
 */
import { existsSync, readFileSync, writeFileSync, chmodSync } from "node:fs";
import type { Store } from "../store";
import type { TokenRow } from "../store/tokens";
import { NotFoundError } from "../domain/errors";
import { randomToken, sha256Hex, randomId } from "../lib/crypto";

export const TOKEN_PREFIX = "pai_";

export interface Principal {
  admin: boolean;
  namespace: string | null;
  tokenId: string;
}

export function createTokenService(deps: { store: Store }) {
  const { store } = deps;

  function create(namespace: string | null, name: string): { token: string; row: TokenRow } {
    const token = `${TOKEN_PREFIX}${randomToken()}`;
    const row: TokenRow = {
      id: `tok-${randomId(6)}`,
      namespace,
      name,
      hash: sha256Hex(token),
      createdAt: new Date().toISOString(),
    };
    store.tokens.insert(row);
    return { token, row };
  }

  /** Returns who holds `token`, or null. Lookup is by hash, so no token is ever compared in clear. */
  function authenticate(token: string | undefined | null): Principal | null {
    if (!token) return null;
    const row = store.tokens.byHash(sha256Hex(token));
    if (!row) return null;
    return { admin: row.namespace === null, namespace: row.namespace, tokenId: row.id };
  }

  /**
   * Makes sure the admin token file exists and matches a stored hash. A token that survives a
   * restart stays the same; a missing or stale file gets a new token.
   */
  function ensureAdminToken(file: string): { token: string; created: boolean } {
    if (existsSync(file)) {
      const token = readFileSync(file, "utf8").trim();
      const p = authenticate(token);
      if (p?.admin) {
        chmodSync(file, 0o600);
        return { token, created: false };
      }
    }
    store.tokens.deleteAdmin();
    const { token } = create(null, "admin");
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
    return { token, created: true };
  }

  function remove(namespace: string, id: string) {
    if (!store.tokens.delete(namespace, id)) throw new NotFoundError(`token "${id}" not found in namespace "${namespace}"`);
  }

  return { create, authenticate, ensureAdminToken, list: (ns?: string) => store.tokens.list(ns), remove };
}

type MaybePromise<T> = T | Promise<T>;

/** Access tokens as the API and the server use them: in this process's store, or shared by replicas (./tokens-pg.ts). */
export interface TokenService {
  create(namespace: string | null, name: string): MaybePromise<{ token: string; row: TokenRow }>;
  /** Synchronous everywhere: it runs on every request (replicas answer from a cache). */
  authenticate(token: string | undefined | null): Principal | null;
  ensureAdminToken(file: string): MaybePromise<{ token: string; created: boolean }>;
  list(namespace?: string): MaybePromise<TokenRow[]>;
  remove(namespace: string, id: string): MaybePromise<void>;
}
