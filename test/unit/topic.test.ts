/** The Topic primitive: keyed and global subscribers, unsubscribe during publish, isolation of a throwing subscriber. */
import { describe, expect, test } from "bun:test";
import { Topic } from "../../src/lib/topic";

describe("Topic", () => {
  test("global subscribers get every message; keyed ones only their key's, first", () => {
    const t = new Topic<number>();
    const seen: string[] = [];
    t.subscribe((n) => seen.push(`all:${n}`));
    t.subscribeKey("a", (n) => seen.push(`a:${n}`));
    t.subscribeKey("b", (n) => seen.push(`b:${n}`));
    t.publish(1, "a");
    t.publish(2);
    t.publish(3, "c");
    expect(seen).toEqual(["a:1", "all:1", "all:2", "all:3"]);
  });

  test("unsubscribe stops delivery and forgets an empty key", () => {
    const t = new Topic<string>();
    const seen: string[] = [];
    const off = t.subscribeKey("k", (m) => seen.push(m));
    expect(t.listeners("k")).toBe(1);
    t.publish("one", "k");
    off();
    off();
    t.publish("two", "k");
    expect(seen).toEqual(["one"]);
    expect(t.listeners("k")).toBe(0);
  });

  test("a subscriber may unsubscribe itself while being called; the others still get the message", () => {
    const t = new Topic<number>();
    const seen: string[] = [];
    const off = t.subscribeKey("k", () => {
      seen.push("once");
      off();
    });
    t.subscribeKey("k", (n) => seen.push(`stay:${n}`));
    t.publish(1, "k");
    t.publish(2, "k");
    expect(seen).toEqual(["once", "stay:1", "stay:2"]);
  });

  test("a throwing subscriber does not stop the others; its error goes to onError", () => {
    const errors: unknown[] = [];
    const t = new Topic<number>((err) => errors.push(err));
    const seen: number[] = [];
    t.subscribe(() => {
      throw new Error("boom");
    });
    t.subscribe((n) => seen.push(n));
    t.publish(7);
    expect(seen).toEqual([7]);
    expect((errors[0] as Error).message).toBe("boom");
  });

  test("the same function subscribed to two keys is called for each", () => {
    const t = new Topic<string>();
    const seen: string[] = [];
    const fn = (m: string) => seen.push(m);
    t.subscribeKey("x", fn);
    t.subscribeKey("y", fn);
    t.publish("to-x", "x");
    t.publish("to-y", "y");
    expect(seen).toEqual(["to-x", "to-y"]);
  });
});
