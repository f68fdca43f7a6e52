/**
 * One primitive for "something happened": a typed topic. Subscribers listen to every message, or
 * only to those published under one key (a session's `namespace/name`, say), so a waiter on one
 * session costs nothing when the others change. A subscriber that throws does not stop the
 * others; the error goes to the topic's `onError`. Modelled on PocketBase's `hook.Hook[T]`.
 */
export type Handler<T> = (message: T) => void;

export class Topic<T> {
  private all = new Set<Handler<T>>();
  private byKey = new Map<string, Set<Handler<T>>>();

  constructor(private readonly onError: (err: unknown) => void = (err) => queueMicrotask(() => { throw err; })) {}

  /** Every message; returns the unsubscribe function. */
  subscribe(fn: Handler<T>): () => void {
    this.all.add(fn);
    return () => {
      this.all.delete(fn);
    };
  }

  /** Messages published under `key` only; returns the unsubscribe function. */
  subscribeKey(key: string, fn: Handler<T>): () => void {
    let set = this.byKey.get(key);
    if (!set) this.byKey.set(key, (set = new Set()));
    set.add(fn);
    return () => {
      set!.delete(fn);
      if (!set!.size && this.byKey.get(key) === set) this.byKey.delete(key);
    };
  }

  /** Calls the subscribers of `key` (if given), then everyone's; in subscription order. */
  publish(message: T, key?: string) {
    const keyed = key === undefined ? undefined : this.byKey.get(key);
    // Copied first: a subscriber may unsubscribe (or subscribe another) while being called.
    if (keyed) for (const fn of [...keyed]) this.call(fn, message);
    if (this.all.size) for (const fn of [...this.all]) this.call(fn, message);
  }

  /**
   * Calls the subscribers of `key` only: for news of something that happened elsewhere (another
   * replica), which those waiting on it must hear but everyone's subscribers (metrics, callbacks)
   * already heard where it happened.
   */
  publishKeyed(message: T, key: string) {
    const keyed = this.byKey.get(key);
    if (keyed) for (const fn of [...keyed]) this.call(fn, message);
  }

  /** Subscribers of `key` alone (not counting everyone's). */
  keyedListeners(key: string): number {
    return this.byKey.get(key)?.size ?? 0;
  }

  /** Keys that have subscribers now. */
  keys(): string[] {
    return [...this.byKey.keys()];
  }

  /** Subscribers listening now: everyone's plus those of `key`. */
  listeners(key?: string): number {
    return this.all.size + (key === undefined ? 0 : (this.byKey.get(key)?.size ?? 0));
  }

  private call(fn: Handler<T>, message: T) {
    try {
      fn(message);
    } catch (err) {
      this.onError(err);
    }
  }
}
