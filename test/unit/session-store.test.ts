/**
 * The session store's backlog queries, on a real SQLite store in a temp dir: the agents that have
 * Pending sessions (across namespaces), one agent's backlog page by page in order, counts, the
 * largest seq, and the newest sessions of all namespaces merged in order.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Session } from "../../src/domain/session";
import { createStore, type Store } from "../../src/store";
import { removeDir, tempDir } from "../helpers";

let dir: string;
let store: Store;
let seq = 0;

function insert(namespace: string, agent: string, name: string, phase = "Pending") {
  const s = {
    name, namespace, uid: `u-${name}`, agentDefinition: agent, generation: 1, spec: { models: ["pai/echo"], ...(agent === "limited" ? { maxConcurrentSessions: 2 } : {}) },
    title: "x", env: [], origin: { kind: "api" }, phase, response: null, error: null, createdAt: "2026-01-01T00:00:00.000Z", startedAt: null, finishedAt: null,
  } as unknown as Session;
  store.sessions.insert({ ...s, seq: ++seq });
}

beforeAll(() => {
  dir = tempDir("pai-store-");
  store = createStore(dir);
  store.tx(() => {
    insert("team", "b", "b-run-00000001");
    insert("default", "limited", "limited-run-00000001");
    insert("default", "a", "a-run-00000001");
    insert("default", "a", "a-run-00000002", "Running");
    insert("default", "a", "a-run-00000003");
    insert("default", "limited", "limited-run-00000002");
    insert("default", "done", "done-run-00000001", "Complete");
    for (let i = 4; i <= 20; i++) insert("default", "a", `a-run-${i.toString(16).padStart(8, "0")}`);
    insert("zeta", "a", "a-wh-00000001");
  });
});
afterAll(() => {
  store.close();
  removeDir(dir);
});

describe("the backlog in the store", () => {
  test("pendingAgents lists each agent with Pending sessions once, in every namespace", () => {
    expect(store.sessions.pendingAgents()).toEqual([
      { namespace: "default", agent: "a" },
      { namespace: "default", agent: "limited" },
      { namespace: "team", agent: "b" },
      { namespace: "zeta", agent: "a" },
    ]);
  });

  test("pendingPage reads one agent's Pending sessions after a seq, oldest first, with their concurrency limit", () => {
    const first = store.sessions.pendingPage("default", "a", 0, 5);
    expect(first.map((e) => e.name)).toEqual(["a-run-00000001", "a-run-00000003", "a-run-00000004", "a-run-00000005", "a-run-00000006"]);
    const rest = store.sessions.pendingPage("default", "a", first.at(-1)!.seq, 100);
    expect(rest).toHaveLength(14);
    expect(rest[0]!.name).toBe("a-run-00000007");
    expect(store.sessions.pendingPage("default", "limited", 0, 10)).toEqual([
      { name: "limited-run-00000001", seq: 2, maxConcurrentSessions: 2 },
      { name: "limited-run-00000002", seq: 6, maxConcurrentSessions: 2 },
    ]);
  });

  test("counts, the largest seq and the last name suffix of an agent", () => {
    expect(store.sessions.countPending()).toBe(23);
    expect(store.sessions.pendingCount("default", "a")).toBe(19);
    expect(store.sessions.maxSeq()).toBe(seq);
    expect(store.sessions.lastSuffix("default", "a", ["wh", "run"])).toBe(20);
    expect(store.sessions.lastSuffix("zeta", "a", ["wh", "run"])).toBe(1);
    expect(store.sessions.lastSuffix("default", "nobody", ["wh", "run"])).toBe(0);
  });

  test("markRunning moves only a Pending session; running() finds it", () => {
    expect(store.sessions.markRunning("default", "done-run-00000001", "t")).toBe(false);
    expect(store.sessions.markRunning("default", "a-run-00000001", "t")).toBe(true);
    expect(store.sessions.running().map((s) => s.name)).toEqual(["a-run-00000001", "a-run-00000002"]);
  });

  test("list without a namespace merges the newest of every namespace", () => {
    expect(store.sessions.list(undefined, 3).map((s) => `${s.namespace}/${s.name}`)).toEqual(["zeta/a-wh-00000001", "default/a-run-00000014", "default/a-run-00000013"]);
    expect(store.sessions.list("team", 3).map((s) => s.name)).toEqual(["b-run-00000001"]);
  });
});
