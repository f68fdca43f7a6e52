/**
 * Where the supervisor gets the next session to run. Two sources:
 *
 * - `local` (here): this process's own store. Sessions are announced in memory as they commit; the
 *   Pending queue (./queue.ts) holds a window of the backlog, agents take turns, and each agent's
 *   `maxConcurrentSessions` is counted by this process (it runs every session there is).
 * - `postgres` (../service/sessions-pg.ts): replicas share the backlog; a session is claimed in the
 *   database (FOR UPDATE SKIP LOCKED), and the agent's limit holds across replicas there.
 *
 * A session a source gives is this process's to run: the supervisor spawns it.
 */
import type { Session } from "../domain/session";
import { Phase } from "../domain/session";
import type { Topics } from "../service/topics";
import { PendingQueue, type PendingSource, type QueueEntry, type QueueLimits } from "./queue";

/** How many sessions of an agent (`namespace/agent`) this process runs now (the local source's per-agent limit). */
export type RunningOf = (agentKey: string) => number;

export interface WorkSource {
  /** At start-up, after the sessions a previous run left were ended: learn what waits. */
  load(): Promise<void> | void;
  /**
   * The next session to run now, if any. `runningHere` counts this process's runs of an agent; a
   * source that knows better (the database) may ignore it. `skip` says a session must not start
   * (it is being cancelled here).
   */
  next(runningHere: RunningOf, skip: (s: Session) => boolean): Promise<Session | undefined> | Session | undefined;
  /** A Pending session is being cancelled: it must not be given out. */
  remove(namespace: string, agent: string, name: string): void;
  /** Calls `fn` whenever new work may be there (a start committed, a slot freed elsewhere). */
  onWork(fn: () => void): () => void;
  /** Pending sessions (all agents, the whole backlog) and how many are held in memory. */
  stats(): { pending: number; held: number };
  stop?(): void;
}

export interface LocalWorkDeps {
  /** The backlog in the store, page by page, and the sessions themselves. */
  sessions: PendingSource & { find(namespace: string, name: string): Session | undefined; pendingTotal(): number };
  topics: Pick<Topics, "sessionStarted">;
  queue?: Partial<QueueLimits>;
}

export function createLocalWorkSource(deps: LocalWorkDeps): WorkSource {
  const { sessions } = deps;
  const queue = new PendingQueue(sessions, deps.queue);
  let loaded = false;
  const listeners = new Set<() => void>();
  deps.topics.sessionStarted.subscribe(({ session: s, seq }) => {
    // Before start-up the store is read instead (load), which finds this one too.
    if (!loaded) return;
    queue.add(s.namespace, s.agentDefinition, { name: s.name, seq, maxConcurrentSessions: s.spec.maxConcurrentSessions });
    for (const fn of listeners) fn();
  });
  return {
    load() {
      queue.load();
      loaded = true;
    },
    next(runningHere, skip) {
      const canRun = (k: string, e: QueueEntry) => runningHere(k) < (e.maxConcurrentSessions ?? Infinity);
      for (;;) {
        const taken = queue.take(canRun);
        if (!taken) return undefined;
        const session = sessions.find(taken.namespace, taken.entry.name);
        // Cancelled (or run) since it was queued: the store says so.
        if (!session || session.phase !== Phase.Pending || skip(session)) continue;
        return session;
      }
    },
    remove: (namespace, agent, name) => void queue.remove(namespace, agent, name),
    onWork(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    stats: () => ({ pending: sessions.pendingTotal(), held: queue.size }),
  };
}
