/** The supervisor's Pending queue: oldest first across agents, limited agents skipped cheaply. */
import { describe, expect, test } from "bun:test";
import type { Session } from "../../src/domain/session";
import { PendingQueue } from "../../src/supervisor/queue";

const s = (agent: string, name: string, ns = "default") => ({ namespace: ns, agentDefinition: agent, name, spec: { models: ["pai/echo"] } }) as unknown as Session;
const names = (q: PendingQueue, canRun: (k: string) => boolean = () => true) => {
  const out: string[] = [];
  for (let x = q.take(canRun); x; x = q.take(canRun)) out.push(x.name);
  return out;
};

describe("PendingQueue", () => {
  test("takes sessions oldest first across agents", () => {
    const q = new PendingQueue();
    for (const [a, n] of [["a", "a1"], ["b", "b1"], ["a", "a2"], ["c", "c1"], ["b", "b2"]]) q.push(s(a!, n!));
    expect(q.size).toBe(5);
    expect(names(q)).toEqual(["a1", "b1", "a2", "c1", "b2"]);
    expect(q.size).toBe(0);
  });

  test("skips agents that may not run more, keeping their order for later", () => {
    const q = new PendingQueue();
    for (const [a, n] of [["a", "a1"], ["a", "a2"], ["b", "b1"], ["a", "a3"]]) q.push(s(a!, n!));
    expect(names(q, (k) => k !== "default/a")).toEqual(["b1"]);
    expect(names(q)).toEqual(["a1", "a2", "a3"]);
  });

  test("the same agent name in two namespaces is two queues", () => {
    const q = new PendingQueue();
    q.push(s("a", "x", "one"));
    q.push(s("a", "y", "two"));
    expect(names(q, (k) => k === "two/a")).toEqual(["y"]);
    expect(names(q)).toEqual(["x"]);
  });

  test("remove takes a queued session out, and only a queued one", () => {
    const q = new PendingQueue();
    for (const n of ["a1", "a2", "a3"]) q.push(s("a", n));
    expect(q.take(() => true)!.name).toBe("a1");
    expect(q.remove("default", "a1", "a")).toBe(false);
    expect(q.remove("default", "a2", "a")).toBe(true);
    expect(q.remove("default", "a2", "a")).toBe(false);
    expect(q.size).toBe(1);
    expect(names(q)).toEqual(["a3"]);
  });

  test("a long queue stays in order through compaction", () => {
    const q = new PendingQueue();
    for (let i = 0; i < 5000; i++) q.push(s("a", `n${i}`));
    const got = names(q);
    expect(got).toHaveLength(5000);
    expect(got.every((n, i) => n === `n${i}`)).toBe(true);
  });
});
