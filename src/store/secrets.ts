/** Secret rows: webhook tokens the controller makes, and secrets users store for secretRef. */
import { and, eq, sql } from "drizzle-orm";
import type { Db } from "./db";
import { lazy } from "../lib/lazy";
import { secrets } from "./schema.sql";
import type { RevisionRepo } from "./revisions";

export type SecretRow = typeof secrets.$inferSelect;

export function createSecretRepo(db: Db, revisions: RevisionRepo) {
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
    /** Inserts or replaces the whole secret; its resourceVersion is the store's next revision. */
    put(row: Omit<SecretRow, "resourceVersion">) {
      const existed = !!byKey().get({ namespace: row.namespace, name: row.name });
      revisions.record("Secret", row.namespace, row.name, existed ? "MODIFIED" : "ADDED", (rev) => {
        db.insert(secrets)
          .values({ ...row, resourceVersion: rev })
          .onConflictDoUpdate({
            target: [secrets.namespace, secrets.name],
            set: { uid: row.uid, type: row.type, labels: row.labels, annotations: row.annotations, data: row.data, ownerUid: row.ownerUid, createdAt: row.createdAt, resourceVersion: rev },
          })
          .run();
        return byKey().get({ namespace: row.namespace, name: row.name });
      });
    },
    delete(namespace: string, name: string): boolean {
      const before = byKey().get({ namespace, name });
      if (!before) return false;
      revisions.record("Secret", namespace, name, "DELETED", (rev) => {
        db.delete(secrets).where(and(eq(secrets.namespace, namespace), eq(secrets.name, name))).run();
        // A deleted secret's values do not stay behind in the log.
        return { ...before, data: {}, resourceVersion: rev };
      });
      return true;
    },
  };
}

export type SecretRepo = ReturnType<typeof createSecretRepo>;
