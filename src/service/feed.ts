/** Live session events for readers (SSE streams, waiting callers): subscribe by session key. */
import type { Session, SessionEvent } from "../domain/session";

export type FeedListener = (event: SessionEvent) => void;

export class SessionFeed {
  private listeners = new Map<string, Set<FeedListener>>();
  private closers = new Map<string, Set<(s: Session) => void>>();

  static key(namespace: string, name: string) {
    return `${namespace}/${name}`;
  }

  subscribe(namespace: string, name: string, fn: FeedListener): () => void {
    const k = SessionFeed.key(namespace, name);
    let set = this.listeners.get(k);
    if (!set) this.listeners.set(k, (set = new Set()));
    set.add(fn);
    return () => {
      set!.delete(fn);
      if (!set!.size) this.listeners.delete(k);
    };
  }

  /** Calls `fn` once when the session reaches a final phase (after the closing event is committed). */
  onClosed(namespace: string, name: string, fn: (s: Session) => void): () => void {
    const k = SessionFeed.key(namespace, name);
    let set = this.closers.get(k);
    if (!set) this.closers.set(k, (set = new Set()));
    set.add(fn);
    return () => {
      set!.delete(fn);
      if (!set!.size) this.closers.delete(k);
    };
  }

  publish(namespace: string, name: string, event: SessionEvent) {
    const set = this.listeners.get(SessionFeed.key(namespace, name));
    if (set) for (const fn of [...set]) fn(event);
  }

  closed(session: Session) {
    const k = SessionFeed.key(session.namespace, session.name);
    const set = this.closers.get(k);
    this.closers.delete(k);
    if (set) for (const fn of set) fn(session);
  }
}
