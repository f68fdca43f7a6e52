/**
 * PaiAccessTokens shared by replicas (`--database postgres://…`). Every request authenticates, so
 * each replica keeps the tokens' hashes in memory: loaded at start, reloaded when another replica
 * says they changed (NOTIFY) and every few seconds besides, so a revoked token stops working on
 * every replica at once in the usual case and within the poll in the worst.
 *
 * Each replica keeps its own admin token file in its data dir; all of them are valid on every
 * replica. A replica whose file is missing or stale makes a new admin token and removes only the
 * one its file held before, never another replica's.
 */
import { existsSync, readFileSync, writeFileSync, chmodSync } from "node:fs";
import { NotFoundError } from "../domain/errors";
import { randomId, randomToken, sha256Hex } from "../lib/crypto";
import type { Logger } from "../lib/log";
import type { PgRunRepo } from "../store/pg/run-repo";
import type { TokenRow } from "../store/tokens";
import { TOKEN_PREFIX, type Principal, type TokenService } from "./tokens";

export const TOKENS_CHANNEL = "pai_tokens";

export function createPgTokenService(deps: { repo: PgRunRepo; log: Logger; pollMs?: number }): TokenService & { open(): Promise<void>; close(): Promise<void> } {
  const { repo, log } = deps;
  let byHash = new Map<string, TokenRow>();
  let timer: ReturnType<typeof setInterval> | undefined;
  let unlisten: (() => Promise<void>) | undefined;

  async function reload() {
    const rows = await repo.tokens.all();
    byHash = new Map(rows.map((r) => [r.hash, r]));
  }
  const reloadQuietly = () => void reload().catch((err) => log.warn("failed to reload access tokens", { error: (err as Error).message }));
  /** After a write here: this replica sees it at once, the others when the notification arrives. */
  async function changed() {
    await reload();
    await repo.notify(TOKENS_CHANNEL, "changed").catch((err) => log.warn("NOTIFY failed (other replicas reload within their poll)", { error: (err as Error).message }));
  }

  async function create(namespace: string | null, name: string): Promise<{ token: string; row: TokenRow }> {
    const token = `${TOKEN_PREFIX}${randomToken()}`;
    const row: TokenRow = { id: `tok-${randomId(6)}`, namespace, name, hash: sha256Hex(token), createdAt: new Date().toISOString() };
    await repo.tokens.insert(row);
    await changed();
    return { token, row };
  }

  function authenticate(token: string | undefined | null): Principal | null {
    if (!token) return null;
    const row = byHash.get(sha256Hex(token));
    if (!row) return null;
    return { admin: row.namespace === null, namespace: row.namespace, tokenId: row.id };
  }

  return {
    create,
    authenticate,
    async ensureAdminToken(file: string) {
      let previous: string | undefined;
      if (existsSync(file)) {
        const token = readFileSync(file, "utf8").trim();
        const row = await repo.tokens.byHash(sha256Hex(token));
        if (row && row.namespace === null) {
          chmodSync(file, 0o600);
          return { token, created: false };
        }
        previous = row?.id;
      }
      if (previous) await repo.tokens.deleteAdmin(previous);
      const { token } = await create(null, "admin");
      writeFileSync(file, `${token}\n`, { mode: 0o600 });
      chmodSync(file, 0o600);
      return { token, created: true };
    },
    list: async (namespace?: string) => [...byHash.values()].filter((r) => (namespace ? r.namespace === namespace : r.namespace !== null)).sort((a, b) => a.createdAt.localeCompare(b.createdAt)),
    async remove(namespace: string, id: string) {
      if (!(await repo.tokens.delete(namespace, id))) throw new NotFoundError(`token "${id}" not found in namespace "${namespace}"`);
      await changed();
    },
    async open() {
      await reload();
      unlisten = await repo.listen(TOKENS_CHANNEL, reloadQuietly, reloadQuietly);
      timer = setInterval(reloadQuietly, deps.pollMs ?? 5000);
      timer.unref?.();
    },
    async close() {
      clearInterval(timer);
      await unlisten?.().catch(() => {});
    },
  };
}
