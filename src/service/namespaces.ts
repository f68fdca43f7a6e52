/**
 * Namespaces, read-only: the namespaces something lives in (agents, secrets, sessions, access
 * tokens), and `default` always. Nothing creates or deletes one; it appears with its first object.
 */
import type { NamespaceRepo } from "../store/namespaces";
import { DEFAULT_NAMESPACE } from "../domain/names";

export interface NamespaceInfo {
  name: string;
  /** The earliest creation time of anything in it; the server's start for an empty `default`. */
  createdAt: string;
}

export function createNamespaceService(deps: { store: { namespaces: Pick<NamespaceRepo, "all" | "createdAt">; revisions: { current(): number } }; startedAt?: string }) {
  const { store } = deps;
  const startedAt = deps.startedAt ?? new Date().toISOString();
  return {
    /** Every namespace, by name. */
    list(): NamespaceInfo[] {
      const all = store.namespaces.all();
      if (!all.has(DEFAULT_NAMESPACE)) all.set(DEFAULT_NAMESPACE, startedAt);
      return [...all].map(([name, createdAt]) => ({ name, createdAt: createdAt || startedAt })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },
    find(name: string): NamespaceInfo | undefined {
      const createdAt = store.namespaces.createdAt(name);
      if (createdAt !== undefined) return { name, createdAt };
      return name === DEFAULT_NAMESPACE ? { name, createdAt: startedAt } : undefined;
    },
    /** The store's current revision: the resourceVersion namespaces are read at. */
    revision: () => store.revisions.current(),
  };
}

export type NamespaceService = ReturnType<typeof createNamespaceService>;
