/**
 * A read-through cache of rows by namespace/name, for lookups on the webhook hot path. The service
 * that owns the rows drops an entry whenever it writes one; misses are cached too, with a size
 * bound so random names from callers cannot grow it without limit.
 */
export interface ReadCache<T> {
  get(namespace: string, name: string): T | undefined;
  drop(namespace: string, name: string): void;
}

export function createReadCache<T>(load: (namespace: string, name: string) => T | undefined, maxEntries = 10_000): ReadCache<T> {
  const entries = new Map<string, T | null>();
  return {
    get(namespace, name) {
      const k = `${namespace}/${name}`;
      const hit = entries.get(k);
      if (hit !== undefined) return hit ?? undefined;
      const value = load(namespace, name);
      if (entries.size >= maxEntries) entries.clear();
      entries.set(k, value ?? null);
      return value;
    },
    drop(namespace, name) {
      entries.delete(`${namespace}/${name}`);
    },
  };
}
