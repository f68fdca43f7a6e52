/**
 * Namespaces are not stored: one exists while something lives in it (an agent, a secret, a
 * session or an access token). These queries find them and the earliest creation time in each
 * without reading sessions: the sessions table can hold millions of rows, so it is walked one
 * index step per namespace (a skip-scan of (namespace, seq)); agents, secrets and tokens are
 * configuration, a few rows per namespace.
 */
import type { Database } from "bun:sqlite";
import { lazy } from "../lib/lazy";

/** The sessions queries: one index step each (exported so a test can check their plans). */
export const SESSION_QUERIES = {
  // The first session (lowest seq) of the next namespace after ?1; seq follows creation.
  next: "SELECT namespace, created_at AS created FROM sessions INDEXED BY sessions_namespace_seq_idx WHERE namespace > ?1 ORDER BY namespace, seq LIMIT 1",
  first: "SELECT created_at AS created FROM sessions INDEXED BY sessions_namespace_seq_idx WHERE namespace = ?1 ORDER BY seq LIMIT 1",
};

export function createNamespaceRepo(sqlite: Database) {
  const q = <T, A extends (string | number)[] = []>(text: string) => lazy(() => sqlite.prepare<T, A>(text));
  const grouped = [
    q<{ namespace: string; created: string }>("SELECT namespace, min(created_at) AS created FROM agents GROUP BY namespace"),
    q<{ namespace: string; created: string }>("SELECT namespace, min(created_at) AS created FROM secrets GROUP BY namespace"),
    q<{ namespace: string; created: string }>("SELECT namespace, min(created_at) AS created FROM access_tokens WHERE namespace IS NOT NULL GROUP BY namespace"),
  ];
  const oneOf = [
    q<{ created: string | null }, [string]>("SELECT min(created_at) AS created FROM agents WHERE namespace = ?1"),
    q<{ created: string | null }, [string]>("SELECT min(created_at) AS created FROM secrets WHERE namespace = ?1"),
    q<{ created: string | null }, [string]>("SELECT min(created_at) AS created FROM access_tokens WHERE namespace = ?1"),
  ];
  const nextSessionNamespace = q<{ namespace: string; created: string }, [string]>(SESSION_QUERIES.next);
  const firstSessionIn = q<{ created: string }, [string]>(SESSION_QUERIES.first);

  const earlier = (a: string | undefined, b: string | null | undefined) => (b && (!a || b < a) ? b : a);

  return {
    /** Every namespace something lives in → the earliest creation time of anything in it. */
    all(): Map<string, string> {
      const out = new Map<string, string>();
      const add = (ns: string, created: string | null) => out.set(ns, earlier(out.get(ns), created) ?? created ?? "");
      for (const stmt of grouped) for (const r of stmt().all()) add(r.namespace, r.created);
      for (let r = nextSessionNamespace().get(""); r; r = nextSessionNamespace().get(r.namespace)) add(r.namespace, r.created);
      return out;
    },
    /** The earliest creation time of anything in `namespace`, or undefined when nothing lives there. */
    createdAt(namespace: string): string | undefined {
      let created: string | undefined;
      for (const stmt of oneOf) created = earlier(created, stmt().get(namespace)?.created);
      return earlier(created, firstSessionIn().get(namespace)?.created);
    },
  };
}

export type NamespaceRepo = ReturnType<typeof createNamespaceRepo>;
