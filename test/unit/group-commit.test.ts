/**
 * Group commit over a real SQLite database: writes of one tick share one transaction, nobody hears
 * "done" before the commit, one failing write fails alone, and a failed commit fails everyone.
 */
import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { createGroupCommit } from "../../src/lib/group-commit";

function fixture() {
  const db = new Database(":memory:");
  db.exec("CREATE TABLE t (v INTEGER PRIMARY KEY)");
  let transactions = 0;
  let failCommit = false;
  const errors: unknown[] = [];
  const tx = (fn: () => void) => {
    transactions++;
    db.exec("BEGIN");
    try {
      fn();
      if (failCommit) throw new Error("disk full");
      db.exec("COMMIT");
    } catch (err) {
      db.exec("ROLLBACK");
      throw err;
    }
  };
  const gc = createGroupCommit(tx, (err) => errors.push(err));
  const insert = (v: number) => () => db.prepare("INSERT INTO t (v) VALUES (?)").run(v);
  const rows = () => (db.prepare("SELECT v FROM t ORDER BY v").all() as { v: number }[]).map((r) => r.v);
  return { gc, insert, rows, errors, transactions: () => transactions, failNextCommits: (on: boolean) => (failCommit = on) };
}

describe("group commit", () => {
  test("writes queued in one tick share one transaction and resolve after it committed", async () => {
    const f = fixture();
    const done = Promise.all([1, 2, 3].map((v) => f.gc.run(f.insert(v)).then(() => f.rows())));
    expect(f.rows()).toEqual([]); // nothing written before the tick ends
    const seen = await done;
    expect(f.transactions()).toBe(1);
    // Each caller saw its row committed (all three, since they share the commit).
    for (const rows of seen) expect(rows).toEqual([1, 2, 3]);
  });

  test("one failing write fails alone; the others in its batch commit", async () => {
    const f = fixture();
    const results = await Promise.allSettled([f.gc.run(f.insert(1)), f.gc.run(f.insert(1)), f.gc.run(f.insert(2))]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(String((results[1] as PromiseRejectedResult).reason)).toContain("UNIQUE");
    expect(f.rows()).toEqual([1, 2]);
    expect(f.transactions()).toBe(1);
  });

  test("a failed commit rejects every write of the batch, and nothing of it is kept", async () => {
    const f = fixture();
    f.failNextCommits(true);
    const results = await Promise.allSettled([f.gc.run(f.insert(1)), f.gc.run(f.insert(2))]);
    expect(results.every((r) => r.status === "rejected")).toBe(true);
    expect(f.rows()).toEqual([]);
    f.failNextCommits(false);
    await f.gc.run(f.insert(3));
    expect(f.rows()).toEqual([3]);
  });

  test("queue(): `after` runs only once committed; a fire-and-forget write that fails goes to onError", async () => {
    const f = fixture();
    const after: string[] = [];
    f.gc.queue(f.insert(1), () => after.push("one"));
    f.gc.queue(f.insert(1), () => after.push("dup"));
    expect(after).toEqual([]);
    await f.gc.run(() => undefined);
    expect(after).toEqual(["one"]);
    expect(f.errors.length).toBe(1);
    expect(f.rows()).toEqual([1]);
  });

  test("flush() commits what is queued now, synchronously", () => {
    const f = fixture();
    f.gc.queue(f.insert(5));
    f.gc.flush();
    expect(f.rows()).toEqual([5]);
  });
});
