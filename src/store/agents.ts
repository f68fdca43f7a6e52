/** Agent rows: prepared statements for the lookups the controller and webhooks make often. */
import { and, eq, sql } from "drizzle-orm";
import type { Db } from "./db";
import { lazy } from "../lib/lazy";
import { agents } from "./schema.sql";
import type { RevisionRepo } from "./revisions";
import type { Agent, AgentSpec, AgentStatus } from "../domain/agent";
import { API_VERSION, AGENT_KIND } from "../domain/agent";

export type AgentRow = typeof agents.$inferSelect;

export interface StoredAgent {
  agent: Agent;
  source: string;
}

export function rowToAgent(r: AgentRow): StoredAgent {
  return {
    source: r.source,
    agent: {
      apiVersion: API_VERSION,
      kind: AGENT_KIND,
      metadata: {
        name: r.name,
        namespace: r.namespace,
        uid: r.uid,
        generation: r.generation,
        resourceVersion: String(r.resourceVersion),
        creationTimestamp: r.createdAt,
        ...(r.labels ? { labels: r.labels } : {}),
        ...(r.annotations ? { annotations: r.annotations } : {}),
      },
      spec: r.spec as AgentSpec,
      status: r.status as AgentStatus,
    },
  };
}

export function createAgentRepo(db: Db, revisions: RevisionRepo) {
  const byKey = lazy(() =>
    db
    .select()
    .from(agents)
    .where(and(eq(agents.namespace, sql.placeholder("namespace")), eq(agents.name, sql.placeholder("name"))))
    .prepare()
  );

  return {
    get(namespace: string, name: string): StoredAgent | undefined {
      const row = byKey().get({ namespace, name });
      return row ? rowToAgent(row) : undefined;
    },
    list(namespace?: string): StoredAgent[] {
      const q = db.select().from(agents);
      const rows = namespace ? q.where(eq(agents.namespace, namespace)).all() : q.all();
      return rows.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name)).map(rowToAgent);
    },
    /** Agents whose source is `source`, or starts with it when `prefix` is set. */
    listBySource(source: string, prefix = false): StoredAgent[] {
      const where = prefix ? sql`substr(${agents.source}, 1, ${source.length}) = ${source}` : eq(agents.source, source);
      return db.select().from(agents).where(where).all().map(rowToAgent);
    },
    /** Inserts an agent; its resourceVersion is the store's next revision (the row's own is ignored). */
    insert(row: AgentRow) {
      revisions.record("Agent", row.namespace, row.name, "ADDED", (rev) => {
        db.insert(agents).values({ ...row, resourceVersion: rev }).run();
        return rowToAgent(byKey().get({ namespace: row.namespace, name: row.name })!).agent;
      });
    },
    update(namespace: string, name: string, values: Partial<AgentRow>) {
      if (!byKey().get({ namespace, name })) return;
      revisions.record("Agent", namespace, name, "MODIFIED", (rev) => {
        db.update(agents)
          .set({ ...values, resourceVersion: rev })
          .where(and(eq(agents.namespace, namespace), eq(agents.name, name)))
          .run();
        return rowToAgent(byKey().get({ namespace, name })!).agent;
      });
    },
    delete(namespace: string, name: string): boolean {
      const before = byKey().get({ namespace, name });
      if (!before) return false;
      revisions.record("Agent", namespace, name, "DELETED", (rev) => {
        db.delete(agents).where(and(eq(agents.namespace, namespace), eq(agents.name, name))).run();
        // The deleted object, at the revision of its deletion (as a watch reports it).
        return rowToAgent({ ...before, resourceVersion: rev }).agent;
      });
      return true;
    },
  };
}

export type AgentRepo = ReturnType<typeof createAgentRepo>;
