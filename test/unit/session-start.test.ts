/**
 * Starting sessions against a real store in a temp dir: back-pressure (an agent's `maxPending`,
 * the server-wide cap) is decided in the same write as the insert, so concurrent starts cannot
 * all pass; names count per agent, so they say nothing of other agents or of the server's total.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Agent } from "../../src/domain/agent";
import { TooManyRequestsError } from "../../src/domain/errors";
import { Phase } from "../../src/domain/session";
import { createLogger } from "../../src/lib/log";
import { createSessionService, type SessionServiceDeps } from "../../src/service/sessions";
import { createStore, type Store } from "../../src/store";
import { removeDir, tempDir } from "../helpers";

const opened: { store: Store; dir: string }[] = [];
afterEach(() => {
  for (const { store, dir } of opened.splice(0)) {
    store.close();
    removeDir(dir);
  }
});

function open(dir = tempDir("pai-start-")) {
  const store = createStore(dir);
  opened.push({ store, dir });
  return store;
}

const service = (store: Store, extra: Partial<SessionServiceDeps> = {}) => createSessionService({ store, log: createLogger("error"), ...extra });

const agent = (name: string, namespace = "default"): Agent =>
  ({ apiVersion: "pai.io/v1", kind: "Agent", metadata: { name, namespace, uid: `uid-${name}`, generation: 1, resourceVersion: 1 }, spec: { models: ["pai/echo"] } }) as unknown as Agent;

/** Starts `n` sessions at once (all in the same tick, so they share one commit); counts what happened. */
async function burst(start: () => Promise<unknown>, n: number) {
  const results = await Promise.allSettled(Array.from({ length: n }, start));
  const refused = results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason);
  return { accepted: results.length - refused.length, refused };
}

describe("maxPending, decided in the write", () => {
  test("100 concurrent starts with maxPending 2: two sessions, 98 refused 429 with Retry-After 10", async () => {
    const store = open();
    const sessions = service(store);
    const a = agent("limited");
    const { accepted, refused } = await burst(() => sessions.start(a, { title: "x", origin: { kind: "webhook" }, kind: "wh", maxPending: 2 }), 100);
    expect(accepted).toBe(2);
    expect(refused).toHaveLength(98);
    for (const err of refused) {
      expect(err).toBeInstanceOf(TooManyRequestsError);
      expect((err as TooManyRequestsError).headers).toEqual({ "retry-after": "10" });
      expect((err as Error).message).toBe('agent "limited" already has 2 sessions waiting to run (maxPending); retry later');
    }
    expect(store.sessions.pendingCount("default", "limited")).toBe(2);
    // Another agent is not affected by this one's limit.
    expect(await sessions.start(agent("other"), { title: "y", origin: { kind: "api" } })).toMatchObject({ agentDefinition: "other" });
  });

  test("the limit counts only Pending sessions: one that starts running or is cancelled makes room", async () => {
    const store = open();
    const sessions = service(store);
    const a = agent("limited");
    const opts = { title: "x", origin: { kind: "webhook" as const }, maxPending: 1 };
    const first = await sessions.start(a, opts);
    await expect(sessions.start(a, opts)).rejects.toBeInstanceOf(TooManyRequestsError);
    sessions.markRunning(first);
    const second = await sessions.start(a, opts);
    await expect(sessions.start(a, opts)).rejects.toBeInstanceOf(TooManyRequestsError);
    await sessions.finish(second, { phase: Phase.Cancelled, response: null, error: "cancelled" });
    await sessions.start(a, opts);
    expect(store.sessions.pendingCount("default", "limited")).toBe(1);
  });

  test("Pending sessions left by a previous server count", async () => {
    const dir = tempDir("pai-start-");
    const before = createStore(dir);
    const old = service(before);
    for (let i = 0; i < 3; i++) await old.start(agent("limited"), { title: "x", origin: { kind: "api" } });
    before.close();
    const sessions = service(open(dir));
    await expect(sessions.start(agent("limited"), { title: "x", origin: { kind: "api" }, maxPending: 3 })).rejects.toBeInstanceOf(TooManyRequestsError);
    expect(sessions.pendingTotal()).toBe(3);
  });

  test("a refused delivery records nothing: the same delivery retried later starts a session", async () => {
    const store = open();
    const sessions = service(store);
    const a = agent("limited");
    const first = await sessions.start(a, { title: "x", origin: { kind: "webhook" }, maxPending: 1 });
    const retry = { title: "x", origin: { kind: "webhook" as const, delivery: "d-1" }, maxPending: 1 };
    await expect(sessions.startOnce(a, retry)).rejects.toBeInstanceOf(TooManyRequestsError);
    expect(store.sessions.findDelivery("default", "limited", "d-1")).toBeUndefined();
    sessions.markRunning(first);
    const again = await sessions.startOnce(a, retry);
    expect(again.created).toBe(true);
    // Once accepted, a retried delivery gets its session even when the agent is full again.
    expect(await sessions.startOnce(a, retry)).toMatchObject({ created: false, session: { name: again.session.name } });
  });
});

describe("the server-wide cap", () => {
  test("applies to every agent and start, concurrent ones included", async () => {
    const store = open();
    const sessions = service(store, { maxPending: 5 });
    const { accepted, refused } = await burst(() => sessions.start(agent(Math.random() < 0.5 ? "a" : "b"), { title: "x", origin: { kind: "api" } }), 40);
    expect(accepted).toBe(5);
    expect(refused).toHaveLength(35);
    expect((refused[0] as TooManyRequestsError).headers).toEqual({ "retry-after": "10" });
    expect((refused[0] as Error).message).toBe("the server has too many sessions waiting to run; retry later");
    expect(sessions.pendingTotal()).toBe(5);
    expect(store.sessions.countPending()).toBe(5);
  });
});

describe("session names", () => {
  const suffix = (name: string) => parseInt(name.slice(-8), 16);

  test("count per agent: another agent's sessions do not show in an agent's names", async () => {
    const store = open();
    const sessions = service(store);
    const a1 = await sessions.start(agent("a"), { title: "x", origin: { kind: "webhook" }, kind: "wh" });
    for (let i = 0; i < 5; i++) await sessions.start(agent("b"), { title: "x", origin: { kind: "api" } });
    const b = await sessions.start(agent("b"), { title: "x", origin: { kind: "api" } });
    const a2 = await sessions.start(agent("a"), { title: "x", origin: { kind: "api" }, kind: "run" });
    expect(a1.name).toMatch(/^a-wh-[0-9a-f]{8}$/);
    expect(a2.name).toMatch(/^a-run-[0-9a-f]{8}$/);
    expect(suffix(a2.name)).toBe(suffix(a1.name) + 1);
    expect(suffix(b.name)).toBe(6);
    // The same agent name in another namespace counts on its own.
    expect((await sessions.start(agent("a", "team"), { title: "x", origin: { kind: "api" } })).name).toBe("a-run-00000001");
  });

  test("stay unique and ordered under concurrency and across a restart", async () => {
    const dir = tempDir("pai-start-");
    const first = createStore(dir);
    const one = service(first);
    const names = (await Promise.all(Array.from({ length: 200 }, () => one.start(agent("a"), { title: "x", origin: { kind: "api" } })))).map((s) => s.name);
    expect(new Set(names).size).toBe(200);
    first.close();
    const two = service(open(dir));
    const next = await two.start(agent("a"), { title: "x", origin: { kind: "webhook" }, kind: "wh" });
    expect(suffix(next.name)).toBe(Math.max(...names.map(suffix)) + 1);
    // An agent whose name extends another's ("a-run") is not mistaken for it.
    const other = await two.start(agent("a-run"), { title: "x", origin: { kind: "api" } });
    expect(other.name).toBe("a-run-run-00000001");
    expect(suffix((await two.start(agent("a"), { title: "x", origin: { kind: "api" } })).name)).toBe(suffix(next.name) + 1);
  });
});
