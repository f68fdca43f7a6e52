/** PaiAccessTokens, stored only as sha256 hashes; lookup by hash is the authentication hot path. */
import { eq, and, isNull, sql } from "drizzle-orm";
import type { Db } from "./db";
import { lazy } from "../lib/lazy";
import { accessTokens } from "./schema.sql";

export type TokenRow = typeof accessTokens.$inferSelect;

export function createTokenRepo(db: Db) {
  const byHash = lazy(() =>
    db.select().from(accessTokens).where(eq(accessTokens.hash, sql.placeholder("hash"))).prepare()
  );
  return {
    byHash(hash: string): TokenRow | undefined {
      return byHash().get({ hash });
    },
    insert(row: TokenRow) {
      db.insert(accessTokens).values(row).run();
    },
    list(namespace?: string): TokenRow[] {
      const q = db.select().from(accessTokens);
      return (namespace ? q.where(eq(accessTokens.namespace, namespace)) : q.where(sql`${accessTokens.namespace} is not null`))
        .all()
        .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    },
    delete(namespace: string, id: string): boolean {
      return (db.delete(accessTokens).where(and(eq(accessTokens.namespace, namespace), eq(accessTokens.id, id))).run() as unknown as { changes: number }).changes > 0;
    },
    deleteAdmin() {
      db.delete(accessTokens).where(isNull(accessTokens.namespace)).run();
    },
  };
}

export type TokenRepo = ReturnType<typeof createTokenRepo>;
