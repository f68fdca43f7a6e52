/**
 * The Pending queue. The backlog lives in the store; this holds a bounded window of it: per agent
 * a FIFO of keys (name, seq, the spec's concurrency limit, never the body), refilled page by page
 * from the store in seq order when it runs dry. Memory and start-up time do not grow with the
 * backlog: a restart learns which agents wait, not what they wait with.
 *
 * Agents take turns (round-robin over the agents with waiting sessions, FIFO within one): the
 * runnable agent served least recently goes next, so one agent's flood cannot starve the others,
 * also when that agent's queue ran empty and filled again first. An agent at its
 * `maxConcurrentSessions` costs one check per turn, however long its backlog: its sessions are
 * never rescanned.
 */

/** A waiting session as the queue holds it. */
export interface QueueEntry {
  name: string;
  /** The store's global order; FIFO within an agent follows it. */
  seq: number;
  /** `spec.maxConcurrentSessions` of the session's snapshot of its agent. */
  maxConcurrentSessions?: number;
}

/** Where the backlog lives (the store, through the session service). */
export interface PendingSource {
  /** The agents that have Pending sessions. */
  pendingAgents(): { namespace: string; agent: string }[];
  /** Up to `limit` Pending sessions of one agent with seq > `after`, oldest first. */
  pendingPage(namespace: string, agent: string, after: number, limit: number): QueueEntry[];
}

export interface QueueLimits {
  /** Entries held in memory across agents; beyond it, new sessions stay in the store only. */
  window: number;
  /** Entries held per agent, and read from the store at a time. */
  page: number;
}

export const DEFAULT_QUEUE_LIMITS: QueueLimits = { window: 4096, page: 256 };

/** One agent's waiting sessions: `items[head..]` in memory, then (if `spilled`) more in the store after `cursor`. */
interface Line {
  key: string;
  namespace: string;
  agent: string;
  items: QueueEntry[];
  head: number;
  /** The largest seq this line has held or read; the store is read after it. */
  cursor: number;
  /** Sessions with seq > cursor may wait in the store only. */
  spilled: boolean;
  /** In `ring`. */
  queued: boolean;
  /** When this agent was last served (0: never); kept while the agent has nothing waiting. */
  served: number;
}

export interface Taken {
  namespace: string;
  agent: string;
  entry: QueueEntry;
}

export class PendingQueue {
  private lines = new Map<string, Line>();
  /** Agents with waiting sessions, in the order they started waiting (which breaks ties between never-served ones). */
  private ring: Line[] = [];
  private turns = 0;
  private held = 0;
  private readonly limits: QueueLimits;

  constructor(private source: PendingSource, limits: Partial<QueueLimits> = {}) {
    this.limits = { ...DEFAULT_QUEUE_LIMITS, ...limits };
  }

  static agentKey(namespace: string, agent: string) {
    return `${namespace}/${agent}`;
  }

  /** Entries in memory (not the backlog: that is the store's count). */
  get size() {
    return this.held;
  }

  /** Agents with waiting sessions, in memory or in the store. */
  get agents() {
    return this.ring.length;
  }

  private line(namespace: string, agent: string): Line {
    const key = PendingQueue.agentKey(namespace, agent);
    let l = this.lines.get(key);
    if (!l) this.lines.set(key, (l = { key, namespace, agent, items: [], head: 0, cursor: 0, spilled: false, queued: false, served: 0 }));
    if (!l.queued) {
      l.queued = true;
      this.ring.push(l);
    }
    return l;
  }

  /** At start-up: every agent with Pending sessions in the store; they are read when their turn comes. */
  load() {
    for (const { namespace, agent } of this.source.pendingAgents()) this.line(namespace, agent).spilled = true;
  }

  /** A session just committed. Held in memory while its agent's backlog is (and the window has room); otherwise it stays in the store, to be read in order. */
  add(namespace: string, agent: string, entry: QueueEntry) {
    const l = this.line(namespace, agent);
    // Already read from the store (a refill can see a commit before its listeners run).
    if (entry.seq <= l.cursor) return;
    if (l.spilled || this.held >= this.limits.window || l.items.length - l.head >= this.limits.page) {
      l.spilled = true;
      return;
    }
    l.items.push(entry);
    l.cursor = entry.seq;
    this.held++;
  }

  /** The head of a line, reading the next page from the store when memory has none. */
  private peek(l: Line): QueueEntry | undefined {
    if (l.head < l.items.length) return l.items[l.head];
    l.items = [];
    l.head = 0;
    if (!l.spilled) return undefined;
    // At least one, even with the window full of other agents' sessions: every agent gets its turn.
    const want = Math.max(1, Math.min(this.limits.page, this.limits.window - this.held));
    const page = this.source.pendingPage(l.namespace, l.agent, l.cursor, want);
    if (page.length < want) l.spilled = false;
    if (!page.length) return undefined;
    l.items = page;
    l.cursor = page[page.length - 1]!.seq;
    this.held += page.length;
    return l.items[0];
  }

  /** Takes the head of the agent served least recently among those for which `canRun(agentKey, entry)` holds. */
  take(canRun: (agentKey: string, entry: QueueEntry) => boolean): Taken | undefined {
    let best: Line | undefined;
    let bestHead: QueueEntry | undefined;
    for (const l of this.ring) {
      if (best && l.served >= best.served) continue;
      const head = this.peek(l);
      if (!head || !canRun(l.key, head)) continue;
      best = l;
      bestHead = head;
    }
    if (best) {
      best.head++;
      best.served = ++this.turns;
      this.held--;
    }
    this.prune();
    return best && { namespace: best.namespace, agent: best.agent, entry: bestHead! };
  }

  /** Drops agents with nothing left waiting from the ring. */
  private prune() {
    if (this.ring.every((l) => l.head < l.items.length || l.spilled)) return;
    this.ring = this.ring.filter((l) => {
      // The line itself stays (one per agent): its cursor keeps a late notice of a session already
      // read from the store from queueing it twice, and `served` its place in the turns.
      l.queued = l.head < l.items.length || l.spilled;
      return l.queued;
    });
  }

  /** Removes a session held in memory; returns whether it was there (one in the store only is not). */
  remove(namespace: string, agent: string, name: string): boolean {
    const l = this.lines.get(PendingQueue.agentKey(namespace, agent));
    if (!l) return false;
    const i = l.items.findIndex((it, j) => j >= l.head && it.name === name);
    if (i < 0) return false;
    l.items.splice(i, 1);
    this.held--;
    this.prune();
    return true;
  }
}
