/** Secret rows: webhook tokens the controller makes, and secrets users store for secretRef. */
import { and, eq, sql } from "drizzle-orm";
import type { Db } from "./db";
import { lazy } from "../lib/lazy";
import { secrets } from "./schema.sql";

export type SecretRow = typeof secrets.$inferSelect;

export function createSecretRepo(db: Db) {
  const byKey = lazy(() =>
    db
    .select()
    .from(secrets)
    .where(and(eq(secrets.namespace, sql.placeholder("namespace")), eq(secrets.name, sql.placeholder("name"))))
    .prepare()
  );

  return {
    get(namespace: string, name: string): SecretRow | undefined {
      return byKey().get({ namespace, name });
    },
    list(namespace?: string): SecretRow[] {
      const q = db.select().from(secrets);
      const rows = namespace ? q.where(eq(secrets.namespace, namespace)).all() : q.all();
      return rows.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
    },
    listOwnedBy(ownerUid: string): SecretRow[] {
      return db.select().from(secrets).where(eq(secrets.ownerUid, ownerUid)).all();
    },
    /** Inserts or replaces the whole secret. */
    put(row: Omit<SecretRow, "resourceVersion">) {
      db.insert(secrets)
        .values({ ...row, resourceVersion: 1 })
        .onConflictDoUpdate({
          target: [secrets.namespace, secrets.name],
          set: {
            uid: row.uid,
            type: row.type,
            labels: row.labels,
            data: row.data,
            ownerUid: row.ownerUid,
            createdAt: row.createdAt,
            resourceVersion: sql`${secrets.resourceVersion} + 1`,
          },
        })
        .run();
    },
    delete(namespace: string, name: string): boolean {
      return (db.delete(secrets).where(and(eq(secrets.namespace, namespace), eq(secrets.name, name))).run() as unknown as { changes: number }).changes > 0;
    },
  };
}

export type SecretRepo = ReturnType<typeof createSecretRepo>;
