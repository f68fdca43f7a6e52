/**
 * The SSE stream of one session over the real session service (store in a temp folder, no HTTP,
 * no child): stored events first, then live ones, each once and in order; Last-Event-ID resumes;
 * an event published again after it was replayed is not sent twice; the stream ends after
 * session.status_closed and lets go of its subscription.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { sseResponse } from "../../src/api/sse";
import { createCore, type Core } from "../../src/core";
import { EventType, Phase, type Session } from "../../src/domain/session";
import { createLogger } from "../../src/lib/log";
import { sessionKey } from "../../src/service/topics";
import { removeDir, tempDir } from "../helpers";

let dir: string;
let core: Core;

beforeAll(() => {
  dir = tempDir("pai-sse-");
  core = createCore({ dataDir: dir, maxSessions: 1, trustedProxies: [], allowPrivateCallbacks: false }, createLogger("error"));
  core.agents.apply({ name: "a", namespace: "default", spec: { models: ["pai/echo"] } }, "api");
});
afterAll(async () => {
  await core.stop();
  removeDir(dir);
});

async function newSession(): Promise<Session> {
  return core.sessions.start(core.agents.get("default", "a").agent, { title: "t", origin: { kind: "api" } });
}

/** Reads frames until the stream ends; returns the ids and types seen. */
async function readAll(res: Response): Promise<{ id: number; type: string }[]> {
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((f) => f.startsWith("id: "))
    .map((f) => {
      const [idLine, dataLine] = f.split("\n");
      return { id: Number(idLine!.slice(4)), type: JSON.parse(dataLine!.slice(6)).type };
    });
}

const append = (s: Session, type: string, content: unknown = {}) => core.sessions.appendEvent(s.namespace, s.name, type, content);

test("stored events, then live ones, once each and in order; the stream ends after the closing event", async () => {
  const s = await newSession();
  append(s, EventType.StatusRunning);
  append(s, EventType.AgentMessage, { text: "one" });
  core.sessions.flush();
  const res = sseResponse(core.sessions, s.namespace, s.name, 0, 60_000);
  const frames = readAll(res);
  append(s, EventType.AgentMessage, { text: "two" });
  await core.sessions.finish(s, { phase: Phase.Complete, response: "two", error: null });
  expect(await frames).toEqual([
    { id: 1, type: EventType.StatusRunning },
    { id: 2, type: EventType.AgentMessage },
    { id: 3, type: EventType.AgentMessage },
    { id: 4, type: EventType.StatusClosed },
  ]);
  // Nothing is left subscribed to this session.
  expect(core.topics.sessionEvent.listeners(sessionKey(s.namespace, s.name))).toBe(0);
});

test("Last-Event-ID resumes after that id; a replayed event published again is not sent twice", async () => {
  const s = await newSession();
  const first = append(s, EventType.StatusRunning);
  const second = append(s, EventType.AgentMessage, { text: "one" });
  core.sessions.flush();
  const res = sseResponse(core.sessions, s.namespace, s.name, first.id, 60_000);
  const frames = readAll(res);
  // A late duplicate of an event the stream has already sent (as a retried publish would be).
  core.topics.sessionEvent.publish({ namespace: s.namespace, session: s.name, event: second }, sessionKey(s.namespace, s.name));
  await core.sessions.finish(s, { phase: Phase.Error, response: null, error: "x" });
  expect((await frames).map((f) => f.id)).toEqual([2, 3]);
});

test("a client that goes away unsubscribes", async () => {
  const s = await newSession();
  const res = sseResponse(core.sessions, s.namespace, s.name, 0, 60_000);
  const reader = res.body!.getReader();
  await reader.read(); // retry: line
  expect(core.topics.sessionEvent.listeners(sessionKey(s.namespace, s.name))).toBe(1);
  await reader.cancel();
  expect(core.topics.sessionEvent.listeners(sessionKey(s.namespace, s.name))).toBe(0);
  await core.sessions.finish(s, { phase: Phase.Cancelled, response: null, error: "cancelled" });
});
