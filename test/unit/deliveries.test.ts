/**
 * The delivery log over the real SQLite store (a temp folder, no HTTP): the repository's pages and
 * caps (newest kept, refused ones at most half), the service's queue (nothing written until a
 * flush or a read, bounded however fast entries come), the refused-rate bound (20 a second per
 * agent, then one entry that counts the rest), and retention removing entries older than
 * --session-retention with the old sessions.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createCore, type Core } from "../../src/core";
import { createLogger } from "../../src/lib/log";
import { createDeliveryLog, type DeliveryInput } from "../../src/service/deliveries";
import { createDeliveryRepo, type DeliveryEntry, type DeliveryRepo } from "../../src/store/deliveries";
import { removeDir, tempDir } from "../helpers";

const DAY = 86_400_000;
let dir: string;
let core: Core;
let repo: DeliveryRepo;
let logs: string[];
let clock: number;

beforeEach(() => {
  dir = tempDir("pai-deliveries-");
  logs = [];
  clock = Date.parse("2026-03-01T12:00:00.000Z");
  core = createCore(
    { dataDir: dir, maxSessions: 1, trustedProxies: [], allowPrivateCallbacks: false, sessionRetentionMs: 30 * DAY },
    createLogger("info", (l) => logs.push(l)),
    { now: () => clock },
  );
  repo = createDeliveryRepo(core.store.db, core.store.tx);
});
afterEach(async () => {
  await core.stop();
  removeDir(dir);
});

const rows = (where = "1") => (core.store.db.$client.query(`SELECT count(*) AS n FROM delivery_log WHERE ${where}`).get() as { n: number }).n;
const entry = (i: number, over: Partial<DeliveryEntry> = {}): DeliveryEntry => ({
  time: new Date(clock + i).toISOString(),
  namespace: "default",
  agent: "a",
  sender: "generic",
  code: 200,
  session: `a-wh-${String(i).padStart(8, "0")}`,
  ...over,
});
const refused = (i: number, over: Partial<DeliveryEntry> = {}) => entry(i, { code: 401, session: undefined, reason: `invalid webhook token #${i}`, ...over });
/** A service on the test's store, with the test's clock and a write interval no test waits for. */
const service = (opts: { perAgent?: number; refusedPerSecond?: number } = {}) => createDeliveryLog({ repo, log: createLogger("info", (l) => logs.push(l)), now: () => clock, flushMs: 60_000, ...opts });

describe("the SQLite repository", () => {
  test("pages newest first by position, each agent apart; absent fields stay absent", async () => {
    await repo.append([entry(1), refused(2, { delivery: "d-2", event: "push", sender: "github" }), entry(3, { agent: "b" }), entry(4)], { perAgent: 100, refusedPerAgent: 50 });
    const all = await repo.list("default", "a", 10);
    expect(all.map((d) => d.code)).toEqual([200, 401, 200]);
    expect(all[1]).toEqual({ id: all[1]!.id, time: entry(2).time, namespace: "default", agent: "a", sender: "github", event: "push", delivery: "d-2", code: 401, reason: "invalid webhook token #2" });
    expect(Object.keys(all[0]!).sort()).toEqual(["agent", "code", "id", "namespace", "sender", "session", "time"]);
    const first = await repo.list("default", "a", 2);
    const second = await repo.list("default", "a", 2, first[1]!.id);
    expect([...first, ...second].map((d) => d.time)).toEqual([entry(4).time, entry(2).time, entry(1).time]);
    expect((await repo.list("default", "b", 10)).map((d) => d.agent)).toEqual(["b"]);
    expect(await repo.list("other", "a", 10)).toEqual([]);
  });

  test("each agent keeps its newest entries, refused ones at most their own share, whatever was stored before", async () => {
    const caps = { perAgent: 10, refusedPerAgent: 4 };
    await repo.append([...Array.from({ length: 6 }, (_, i) => refused(i)), ...Array.from({ length: 6 }, (_, i) => entry(10 + i))], caps);
    await repo.append([entry(100, { agent: "b" })], caps);
    // 6 refused → their newest 4; then 4 + 6 = 10, within the cap.
    expect((await repo.list("default", "a", 100)).map((d) => d.reason ?? "ok")).toEqual(["ok", "ok", "ok", "ok", "ok", "ok", ...[5, 4, 3, 2].map((i) => `invalid webhook token #${i}`)]);
    // More accepted ones push the oldest out, refused or not.
    await repo.append(Array.from({ length: 7 }, (_, i) => entry(20 + i)), caps);
    const left = await repo.list("default", "a", 100);
    expect(left).toHaveLength(10);
    expect(left.every((d) => d.code === 200)).toBe(true);
    expect(left.at(-1)!.time).toBe(entry(13).time);
    // A flood of refused ones cannot push accepted ones out: they stop at their share.
    await repo.append(Array.from({ length: 50 }, (_, i) => refused(200 + i)), caps);
    const after = await repo.list("default", "a", 100);
    expect(after.filter((d) => d.code === 401)).toHaveLength(4);
    expect(after.filter((d) => d.code === 200)).toHaveLength(6);
    expect(after.filter((d) => d.code === 200).at(-1)!.time).toBe(entry(21).time);
    // Another agent's entries are not touched.
    expect(rows("agent = 'b'")).toBe(1);
  });

  test("removeBefore deletes the old entries among the oldest, a batch at a time", async () => {
    await repo.append([entry(0, { time: "2026-01-01T00:00:00.000Z" }), entry(1, { time: "2026-01-02T00:00:00.000Z" }), entry(2, { time: "2026-02-20T00:00:00.000Z" })], { perAgent: 100, refusedPerAgent: 50 });
    expect(await repo.removeBefore("2026-02-01T00:00:00.000Z", 1)).toBe(1);
    expect(await repo.removeBefore("2026-02-01T00:00:00.000Z", 10)).toBe(1);
    expect(await repo.removeBefore("2026-02-01T00:00:00.000Z", 10)).toBe(0);
    expect((await repo.list("default", "a", 10)).map((d) => d.time)).toEqual(["2026-02-20T00:00:00.000Z"]);
  });
});

describe("the service", () => {
  test("record writes nothing by itself; a read writes the queue first; stop writes the rest", async () => {
    const log = service();
    log.record({ namespace: "default", agent: "a", sender: "generic", code: 200, session: "s1" });
    log.record({ namespace: "default", agent: "a", sender: "linear", event: "Issue", delivery: "x".repeat(500), code: 200, session: "s2" });
    expect(rows()).toBe(0);
    const page = await log.list("default", "a");
    expect(rows()).toBe(2);
    expect(page.next).toBeUndefined();
    expect(page.items.map((d) => [d.session, d.sender, d.time])).toEqual([
      ["s2", "linear", new Date(clock).toISOString()],
      ["s1", "generic", new Date(clock).toISOString()],
    ]);
    // What a caller sent is cut to length.
    expect(page.items[0]!.delivery).toHaveLength(200);
    log.record({ namespace: "default", agent: "a", sender: "generic", code: 413, reason: "r".repeat(1000) });
    await log.stop();
    expect(rows()).toBe(3);
    expect((await repo.list("default", "a", 1))[0]!.reason).toHaveLength(300);
    // Stopped: nothing more is recorded.
    log.record({ namespace: "default", agent: "a", sender: "generic", code: 200 });
    await log.flush();
    expect(rows()).toBe(3);
  });

  test("pages carry the position of the next one", async () => {
    const log = service();
    for (let i = 0; i < 5; i++) log.record({ namespace: "default", agent: "a", sender: "generic", code: 200, session: `s${i}` });
    const one = await log.list("default", "a", { limit: 2 });
    const two = await log.list("default", "a", { limit: 2, before: one.next });
    const three = await log.list("default", "a", { limit: 2, before: two.next });
    expect([...one.items, ...two.items, ...three.items].map((d) => d.session)).toEqual(["s4", "s3", "s2", "s1", "s0"]);
    expect(three.next).toBeUndefined();
    await log.stop();
  });

  test("refused deliveries: at most 20 a second per agent; the rest are counted in one entry when the second ends", async () => {
    const log = service();
    const bad = (i: number, agent = "a"): DeliveryInput => ({ namespace: "default", agent, sender: "generic", code: i % 10 === 0 ? 413 : 401, delivery: `d${i}`, reason: i % 10 === 0 ? "too large" : "invalid webhook token" });
    for (let i = 1; i <= 500; i++) log.record(bad(i));
    // Another agent has a second of its own; accepted deliveries are never held back.
    for (let i = 1; i <= 5; i++) log.record(bad(i, "b"));
    for (let i = 0; i < 30; i++) log.record({ namespace: "default", agent: "a", sender: "generic", code: 200, session: `ok${i}` });
    await log.flush();
    expect(rows("agent = 'a' AND code >= 400")).toBe(20);
    expect(rows("agent = 'a' AND code = 200")).toBe(30);
    expect(rows("agent = 'b'")).toBe(5);
    // The next second: its first refusal closes the last one, whose count comes first.
    clock += 1000;
    log.record(bad(501));
    const items = (await log.list("default", "a", { limit: 3 })).items;
    expect(items[0]).toMatchObject({ code: 401, delivery: "d501", reason: "invalid webhook token" });
    // It carries the last one not recorded.
    expect(items[1]).toMatchObject({ code: 413, delivery: "d500" });
    expect(items[1]!.reason).toBe("480 more refused deliveries like this one (401 ×432, 413 ×48) were not recorded (at most 20 a second per agent are); the last: too large");
    expect(rows("agent = 'a' AND code >= 400")).toBe(22);
    await log.stop();
  });

  test("the count is recorded when the second ends even if nothing else comes, and on stop", async () => {
    const log = createDeliveryLog({ repo, log: createLogger("error"), refusedPerSecond: 2, flushMs: 60_000 });
    for (let i = 0; i < 5; i++) log.record({ namespace: "default", agent: "a", sender: "generic", code: 401, reason: "invalid webhook token" });
    const summary = async () => (await log.list("default", "a")).items.find((d) => d.reason?.startsWith("3 more refused deliveries like this one were not recorded"));
    const deadline = Date.now() + 5000;
    while (!(await summary())) {
      if (Date.now() > deadline) throw new Error("no count entry 5 s after the second ended");
      await Bun.sleep(50);
    }
    expect(rows()).toBe(3);
    for (let i = 0; i < 4; i++) log.record({ namespace: "default", agent: "b", sender: "generic", code: 403, reason: "requests from 10.0.0.1 are not allowed by this agent's allowCIDRs" });
    await log.stop();
    expect((await repo.list("default", "b", 10))[0]!.reason).toStartWith("2 more refused deliveries like this one were not recorded (at most 2 a second per agent are); the last: requests from 10.0.0.1");
  });

  test("the queue stays bounded between writes, and keeps what the store would", async () => {
    const log = service({ perAgent: 10 });
    let most = 0;
    for (let i = 0; i < 10_000; i++) {
      log.record({ namespace: "default", agent: "a", sender: "generic", code: 200, session: `s${i}` });
      most = Math.max(most, log.queued());
    }
    expect(most).toBeLessThanOrEqual(20);
    expect(rows()).toBe(0);
    for (let i = 0; i < 15; i++) log.record({ namespace: "default", agent: "a", sender: "generic", code: 401, reason: `bad ${i}` });
    await log.flush();
    // Written: the newest 10, of which refused at most 5 (those the rate bound let in).
    expect(rows()).toBe(10);
    const items = (await log.list("default", "a")).items;
    expect(items.filter((d) => d.code === 401).map((d) => d.reason)).toEqual(["bad 14", "bad 13", "bad 12", "bad 11", "bad 10"]);
    expect(items.filter((d) => d.code === 200).map((d) => d.session)).toEqual(["s9999", "s9998", "s9997", "s9996", "s9995"]);
    await log.stop();
  });

  test("a write that fails is logged and dropped; the next one goes through", async () => {
    let fail = true;
    const flaky: DeliveryRepo = { ...repo, append: (e, c) => (fail ? Promise.reject(new Error("disk full")) : repo.append(e, c)) };
    const log = createDeliveryLog({ repo: flaky, log: createLogger("info", (l) => logs.push(l)), flushMs: 60_000 });
    log.record({ namespace: "default", agent: "a", sender: "generic", code: 200, session: "lost" });
    await log.flush();
    expect(logs.join("")).toContain("failed to write the delivery log; these entries are lost");
    fail = false;
    log.record({ namespace: "default", agent: "a", sender: "generic", code: 200, session: "kept" });
    expect((await log.list("default", "a")).items.map((d) => d.session)).toEqual(["kept"]);
    await log.stop();
  });
});

describe("retention", () => {
  test("entries older than --session-retention go with the old sessions; newer ones stay", async () => {
    const old = new Date(clock - 31 * DAY).toISOString();
    const recent = new Date(clock - 29 * DAY).toISOString();
    for (let i = 0; i < 1200; i++) core.deliveries.record({ namespace: "default", agent: `a${i % 3}`, sender: "generic", code: 200, time: old });
    core.deliveries.record({ namespace: "default", agent: "a0", sender: "generic", code: 200, time: recent, session: "recent" });
    await core.deliveries.flush();
    expect(rows()).toBe(1201);
    // Batches of the 500 oldest: three of them, then the recent one is left.
    expect(await core.retention.runOnce()).toBe(0);
    expect(rows()).toBe(1);
    expect((await core.deliveries.list("default", "a0")).items.map((d) => d.session)).toEqual(["recent"]);
  });
});
