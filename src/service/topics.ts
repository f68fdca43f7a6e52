/**
 * Everything that announces "something happened" in the server, as typed topics (src/lib/topic.ts):
 * writers publish after their write committed, listeners subscribe to all messages or to one key.
 * One primitive replaces the former bus, session feed, listener sets and end notifications, and a
 * session's end is announced once.
 */
import type { Session, SessionEvent } from "../domain/session";
import type { Logger } from "../lib/log";
import { Topic } from "../lib/topic";

/** An agent or secret written, or an agent's status; published under its `kind`. */
export interface Change {
  kind: "agent" | "agentStatus" | "secret";
  namespace: string;
  name: string;
}

/** A session committed Pending, with its place in the store's order. */
export interface SessionStarted {
  session: Session;
  seq: number;
}

/** One committed event of a session; published under the session's key. */
export interface SessionEventPublished {
  namespace: string;
  session: string;
  event: SessionEvent;
}

/** The key of a session's messages. */
export const sessionKey = (namespace: string, name: string) => `${namespace}/${name}`;

export function createTopics(log?: Logger) {
  const onError = (err: unknown) => log?.error("a listener failed", { error: (err as Error)?.stack ?? String(err) });
  return {
    /** Agents and secrets created, changed or deleted, and agents' status written: key = `kind`. */
    changes: new Topic<Change>(onError),
    /** Sessions committed Pending: the supervisor queues them, metrics count them. */
    sessionStarted: new Topic<SessionStarted>(onError),
    /** Session events after commit, key = `namespace/name`: SSE streams follow them. */
    sessionEvent: new Topic<SessionEventPublished>(onError),
    /** Sessions ended (closing event and final phase committed), key = `namespace/name`: waiters, callbacks, metrics. */
    sessionEnded: new Topic<Session>(onError),
  };
}

export type Topics = ReturnType<typeof createTopics>;

/** Publishes a change under its kind, so a listener of one kind is not called for the others. */
export function publishChange(topics: Pick<Topics, "changes">, kind: Change["kind"], namespace: string, name: string) {
  topics.changes.publish({ kind, namespace, name }, kind);
}
