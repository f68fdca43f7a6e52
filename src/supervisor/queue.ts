/**
 * The Pending queue: one FIFO per agent, so an agent at its `maxConcurrentSessions` costs the
 * scheduler one check, not one per waiting session (a burst of 100k webhooks to one limited agent
 * must not make every later accept scan them all). Across agents, the oldest head goes first.
 */
import type { Session } from "../domain/session";

interface Fifo {
  items: { session: Session; order: number }[];
  head: number;
}

export class PendingQueue {
  private fifos = new Map<string, Fifo>();
  private counter = 0;
  private total = 0;

  static agentKey(s: Session) {
    return `${s.namespace}/${s.agentDefinition}`;
  }

  get size() {
    return this.total;
  }

  push(session: Session) {
    const k = PendingQueue.agentKey(session);
    let f = this.fifos.get(k);
    if (!f) this.fifos.set(k, (f = { items: [], head: 0 }));
    f.items.push({ session, order: this.counter++ });
    this.total++;
  }

  /** Takes the oldest session among agents for which `canRun(agentKey, session)` holds. */
  take(canRun: (agentKey: string, session: Session) => boolean): Session | undefined {
    let best: [string, Fifo] | undefined;
    for (const [k, f] of this.fifos) {
      const head = f.items[f.head]!;
      if (!canRun(k, head.session)) continue;
      if (!best || head.order < best[1].items[best[1].head]!.order) best = [k, f];
    }
    if (!best) return undefined;
    const [k, f] = best;
    const { session } = f.items[f.head++]!;
    this.total--;
    if (f.head === f.items.length) this.fifos.delete(k);
    else if (f.head > 1024 && f.head * 2 > f.items.length) {
      // Drop the consumed front now and then, so a long queue does not keep it all.
      f.items = f.items.slice(f.head);
      f.head = 0;
    }
    return session;
  }

  /** Removes a queued session; returns whether it was there. */
  remove(namespace: string, name: string, agent: string): boolean {
    const k = `${namespace}/${agent}`;
    const f = this.fifos.get(k);
    if (!f) return false;
    const i = f.items.findIndex((it, j) => j >= f.head && it.session.name === name);
    if (i < 0) return false;
    f.items.splice(i, 1);
    this.total--;
    if (f.head === f.items.length) this.fifos.delete(k);
    return true;
  }
}
