/**
 * The supervisor's Pending queue: agents take turns, FIFO within an agent, limited agents skipped
 * cheaply, and only a bounded window of the backlog in memory, the rest read back from the source
 * (the store, here a sorted list standing in for its pending index) in order.
 */
import { describe, expect, test } from "bun:test";
import { PendingQueue, type PendingSource, type QueueEntry } from "../../src/supervisor/queue";

/** The backlog as the store holds it: every session committed and not yet taken. */
class Backlog implements PendingSource {
  rows: { namespace: string; agent: string; entry: QueueEntry }[] = [];
  pages = 0;
  private seq = 0;
  commit(agent: string, name: string, ns = "default", limit?: number) {
    const entry: QueueEntry = { name, seq: ++this.seq, ...(limit ? { maxConcurrentSessions: limit } : {}) };
    this.rows.push({ namespace: ns, agent, entry });
    return entry;
  }
  pendingAgents() {
    const seen = new Map<string, { namespace: string; agent: string }>();
    for (const r of this.rows) seen.set(`${r.namespace}/${r.agent}`, { namespace: r.namespace, agent: r.agent });
    return [...seen.values()].sort((a, b) => (a.namespace + "/" + a.agent < b.namespace + "/" + b.agent ? -1 : 1));
  }
  pendingPage(namespace: string, agent: string, after: number, limit: number) {
    this.pages++;
    return this.rows.filter((r) => r.namespace === namespace && r.agent === agent && r.entry.seq > after).slice(0, limit).map((r) => r.entry);
  }
  ran(name: string) {
    this.rows = this.rows.filter((r) => r.entry.name !== name);
  }
}

/** Commits a session and tells the queue, as the session service and supervisor do. */
function commit(q: PendingQueue, b: Backlog, agent: string, name: string, ns = "default", limit?: number) {
  q.add(ns, agent, b.commit(agent, name, ns, limit));
}

const drain = (q: PendingQueue, b: Backlog, canRun: (k: string, e: QueueEntry) => boolean = () => true) => {
  const out: string[] = [];
  for (let x = q.take(canRun); x; x = q.take(canRun)) {
    out.push(x.entry.name);
    b.ran(x.entry.name);
  }
  return out;
};

describe("PendingQueue", () => {
  test("agents take turns; each agent's sessions keep their order", () => {
    const b = new Backlog();
    const q = new PendingQueue(b);
    for (const [a, n] of [["a", "a1"], ["a", "a2"], ["a", "a3"], ["b", "b1"], ["c", "c1"], ["b", "b2"]]) commit(q, b, a!, n!);
    expect(q.size).toBe(6);
    expect(drain(q, b)).toEqual(["a1", "b1", "c1", "a2", "b2", "a3"]);
    expect(q.size).toBe(0);
    expect(q.agents).toBe(0);
  });

  test("a flood of one agent does not delay another agent's first session", () => {
    const b = new Backlog();
    const q = new PendingQueue(b);
    for (let i = 0; i < 500; i++) commit(q, b, "noisy", `n${i}`);
    expect(q.take(() => true)!.entry.name).toBe("n0");
    commit(q, b, "quiet", "q1");
    expect(q.take(() => true)!.entry.name).toBe("q1");
    expect(q.take(() => true)!.entry.name).toBe("n1");
  });

  test("an agent served last waits its turn, also when its queue ran empty and filled again before the other agent came", () => {
    const b = new Backlog();
    const q = new PendingQueue(b);
    commit(q, b, "noisy", "n0");
    expect(q.take(() => true)!.entry.name).toBe("n0");
    for (let i = 1; i <= 5; i++) commit(q, b, "noisy", `n${i}`);
    commit(q, b, "quiet", "q1");
    expect(drain(q, b)).toEqual(["q1", "n1", "n2", "n3", "n4", "n5"]);
  });

  test("skips agents that may not run more, keeping their order for later", () => {
    const b = new Backlog();
    const q = new PendingQueue(b);
    for (const [a, n] of [["a", "a1"], ["a", "a2"], ["b", "b1"], ["a", "a3"]]) commit(q, b, a!, n!);
    expect(drain(q, b, (k) => k !== "default/a")).toEqual(["b1"]);
    expect(drain(q, b)).toEqual(["a1", "a2", "a3"]);
  });

  test("canRun sees the head's maxConcurrentSessions", () => {
    const b = new Backlog();
    const q = new PendingQueue(b);
    commit(q, b, "a", "a1", "default", 1);
    const seen: (number | undefined)[] = [];
    q.take((_, e) => (seen.push(e.maxConcurrentSessions), false));
    expect(seen).toEqual([1]);
  });

  test("the same agent name in two namespaces is two agents", () => {
    const b = new Backlog();
    const q = new PendingQueue(b);
    commit(q, b, "a", "x", "one");
    commit(q, b, "a", "y", "two");
    expect(drain(q, b, (k) => k === "two/a")).toEqual(["y"]);
    expect(drain(q, b)).toEqual(["x"]);
  });

  test("remove takes a session held in memory out, and only such a one", () => {
    const b = new Backlog();
    const q = new PendingQueue(b);
    for (const n of ["a1", "a2", "a3"]) commit(q, b, "a", n);
    expect(q.take(() => true)!.entry.name).toBe("a1");
    b.ran("a1");
    expect(q.remove("default", "a", "a1")).toBe(false);
    expect(q.remove("default", "a", "a2")).toBe(true);
    b.ran("a2");
    expect(q.remove("default", "a", "a2")).toBe(false);
    expect(q.size).toBe(1);
    expect(drain(q, b)).toEqual(["a3"]);
  });

  test("holds at most the window in memory; the rest is read back from the store in order, a page at a time", () => {
    const b = new Backlog();
    const q = new PendingQueue(b, { window: 10, page: 4 });
    for (let i = 0; i < 1000; i++) commit(q, b, i % 2 ? "odd" : "even", `s${i}`);
    expect(q.size).toBeLessThanOrEqual(10);
    const order: string[] = [];
    let maxHeld = 0;
    for (let x = q.take(() => true); x; x = q.take(() => true)) {
      order.push(x.entry.name);
      b.ran(x.entry.name);
      maxHeld = Math.max(maxHeld, q.size);
    }
    expect(maxHeld).toBeLessThanOrEqual(10);
    expect(order).toHaveLength(1000);
    const of = (parity: number) => order.filter((n) => Number(n.slice(1)) % 2 === parity);
    expect(of(0)).toEqual(Array.from({ length: 500 }, (_, i) => `s${2 * i}`));
    expect(of(1)).toEqual(Array.from({ length: 500 }, (_, i) => `s${2 * i + 1}`));
    expect(b.pages).toBeLessThan(400);
  });

  test("sessions committed while an agent's backlog is in the store wait behind it", () => {
    const b = new Backlog();
    const q = new PendingQueue(b, { window: 3, page: 3 });
    for (let i = 0; i < 6; i++) commit(q, b, "a", `a${i}`);
    expect(q.take(() => true)!.entry.name).toBe("a0");
    b.ran("a0");
    commit(q, b, "a", "a6"); // memory has room again, yet a3..a5 come first
    expect(drain(q, b)).toEqual(["a1", "a2", "a3", "a4", "a5", "a6"]);
  });

  test("at start-up only the agents are learnt; their sessions are read when their turn comes", () => {
    const b = new Backlog();
    for (let i = 0; i < 100; i++) b.commit("a", `a${i}`);
    b.commit("b", "b0");
    const q = new PendingQueue(b, { window: 8, page: 8 });
    q.load();
    expect(q.size).toBe(0);
    expect(q.agents).toBe(2);
    const first = [q.take(() => true)!, q.take(() => true)!].map((x) => x.entry.name);
    expect(first).toEqual(["a0", "b0"]);
    for (const n of first) b.ran(n);
    // A notice of a session already read from the store (seq not after the agent's cursor) is ignored.
    q.add("default", "a", { name: "a1", seq: 2 });
    const rest = drain(q, b);
    expect(rest).toEqual(Array.from({ length: 99 }, (_, i) => `a${i + 1}`));
  });
});
