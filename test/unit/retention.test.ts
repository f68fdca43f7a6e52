/**
 * Session retention over the real store and session service (SQLite in a temp folder, no HTTP, no
 * child): which sessions go (finished before the cutoff, callback settled) and which stay
 * (Pending, Running, recent, callback pending, an agent's newest); that everything of a removed session goes with
 * it (folder, events, deliveries, row) and nothing outside its folder; batches and the event
 * budget; the clock; and the `--session-retention` flag.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadServeConfig } from "../../src/config/serve";
import { createCore, type Core } from "../../src/core";
import { EventType, Phase, type Session } from "../../src/domain/session";
import { UsageError } from "../../src/lib/args";
import { formatDuration, parseDuration } from "../../src/lib/duration";
import { createLogger } from "../../src/lib/log";
import { createRetentionService } from "../../src/service/retention";
import { createRetentionRepo } from "../../src/store/retention";
import { removeDir, tempDir } from "../helpers";

const DAY = 86_400_000;
let dir: string;
let core: Core;
let logs: string[];
let clock: number;

beforeEach(() => {
  dir = tempDir("pai-retention-");
  logs = [];
  clock = Date.now();
  core = createCore(
    { dataDir: dir, maxSessions: 1, trustedProxies: [], allowPrivateCallbacks: false, sessionRetentionMs: 30 * DAY },
    createLogger("info", (l) => logs.push(l)),
    { now: () => clock },
  );
  core.agents.apply({ name: "a", namespace: "default", spec: { models: ["pai/echo"] } }, "api");
});
afterEach(async () => {
  await core.stop();
  removeDir(dir);
});

const sql = () => core.store.db.$client;
const count = (table: string, where = "1") => (sql().query(`SELECT count(*) AS n FROM ${table} WHERE ${where}`).get() as { n: number }).n;
const folderOf = (s: Session) => join(dir, "sessions", s.namespace, s.name);

async function session(opts: { phase?: Phase; events?: number; delivery?: string; signature?: string; files?: boolean; callback?: string } = {}): Promise<Session> {
  const agent = core.agents.get("default", "a").agent;
  const { session: s } = await core.sessions.startOnce(agent, {
    title: "t",
    origin: { kind: opts.delivery || opts.signature ? "webhook" : "api", ...(opts.delivery ? { delivery: opts.delivery } : {}) },
    ...(opts.signature ? { signature: opts.signature } : {}),
  });
  if (opts.files) {
    mkdirSync(join(folderOf(s), "out"), { recursive: true });
    writeFileSync(join(folderOf(s), "out", "report.txt"), "report");
  }
  const phase = opts.phase ?? Phase.Complete;
  if (phase === Phase.Pending) return s;
  core.sessions.markRunning(s);
  for (let i = 0; i < (opts.events ?? 1); i++) core.sessions.appendEvent(s.namespace, s.name, EventType.AgentMessage, { text: `m${i}` });
  core.sessions.flush();
  if (phase === Phase.Running) return s;
  const done = await core.sessions.finish(s, { phase, response: "r", error: null });
  if (opts.callback) sql().run(`UPDATE sessions SET callback_state = ?1 WHERE name = ?2`, [opts.callback, s.name]);
  return done;
}

/**
 * Makes a session look created and finished `days` ago, its deliveries too (also a Pending or
 * Running one: the phase must still protect it).
 */
function finishedDaysAgo(s: Session, days: number) {
  const at = new Date(Date.now() - days * DAY).toISOString();
  sql().run(`UPDATE sessions SET created_at = ?1, finished_at = ?1 WHERE namespace = ?2 AND name = ?3`, [at, s.namespace, s.name]);
  sql().run(`UPDATE webhook_deliveries SET created_at = ?1 WHERE namespace = ?2 AND session = ?3`, [at, s.namespace, s.name]);
}
const exists = (s: Session) => core.sessions.find(s.namespace, s.name) !== undefined;

describe("what retention removes", () => {
  test("a session finished before the cutoff goes whole: folder, events, deliveries (both keys) and row", async () => {
    const old = await session({ events: 5, delivery: "delivery-1", signature: "sig-1", files: true, phase: Phase.Error });
    await session(); // newer: the agent's newest is kept (see below)
    finishedDaysAgo(old, 31);
    expect(count("session_events", `session = '${old.name}'`)).toBeGreaterThan(5);
    expect(count("webhook_deliveries", `session = '${old.name}'`)).toBe(2);
    expect(await core.retention.runOnce()).toBe(1);
    expect(exists(old)).toBe(false);
    expect(count("session_events", `session = '${old.name}'`)).toBe(0);
    expect(count("webhook_deliveries", `session = '${old.name}'`)).toBe(0);
    expect(existsSync(folderOf(old))).toBe(false);
    expect(logs.join("")).toContain("retention: removed 1 session that finished more than 30d ago");
  });

  test("recent, Pending, Running and callback-pending sessions stay, even with a finished_at past the cutoff", async () => {
    const delivered = await session({ callback: "delivered", phase: Phase.Cancelled });
    const recent = await session({ files: true });
    finishedDaysAgo(recent, 29);
    const pending = await session({ phase: Phase.Pending, files: true });
    const running = await session({ phase: Phase.Running, files: true });
    const calling = await session({ callback: "pending" });
    for (const s of [pending, running, calling, delivered]) finishedDaysAgo(s, 400);
    expect(await core.retention.runOnce()).toBe(1);
    expect(exists(delivered)).toBe(false);
    for (const s of [recent, pending, running, calling]) expect(exists(s)).toBe(true);
    for (const s of [recent, pending, running]) expect(readFileSync(join(folderOf(s), "out", "report.txt"), "utf8")).toBe("report");
    expect(count("session_events", `session = '${running.name}'`)).toBeGreaterThan(0);
  });

  test("the clock decides: moved 31 days on, every finished session goes, the others stay", async () => {
    const done = [await session(), await session({ phase: Phase.Error }), await session({ phase: Phase.Cancelled })];
    const pending = await session({ phase: Phase.Pending });
    const running = await session({ phase: Phase.Running });
    expect(await core.retention.runOnce()).toBe(0);
    clock += 31 * DAY;
    expect(await core.retention.runOnce()).toBe(3);
    for (const s of done) expect(exists(s)).toBe(false);
    expect(exists(pending)).toBe(true);
    expect(exists(running)).toBe(true);
  });

  test("an agent's newest session stays (of any kind), so names never repeat after a restart", async () => {
    const agent = core.agents.get("default", "a").agent;
    const first = await session();
    const byWebhook = (await core.sessions.startOnce(agent, { title: "t", origin: { kind: "webhook" }, kind: "wh" })).session;
    await core.sessions.finish(byWebhook, { phase: Phase.Complete, response: null, error: null });
    expect(first.name).toBe("a-run-00000001");
    expect(byWebhook.name).toBe("a-wh-00000002");
    core.agents.apply({ name: "b", namespace: "default", spec: { models: ["pai/echo"] } }, "api");
    const onlyOfB = await core.sessions.start(core.agents.get("default", "b").agent, { title: "t", origin: { kind: "api" } });
    await core.sessions.finish(onlyOfB, { phase: Phase.Complete, response: null, error: null });
    clock += 365 * DAY;
    expect(await core.retention.runOnce()).toBe(1);
    expect(exists(first)).toBe(false);
    expect(exists(byWebhook)).toBe(true);
    expect(exists(onlyOfB)).toBe(true);
    // A restarted server counts on from what is left.
    await core.stop();
    core = createCore({ dataDir: dir, maxSessions: 1, trustedProxies: [], allowPrivateCallbacks: false }, createLogger("error"));
    expect((await core.sessions.start(agent, { title: "t", origin: { kind: "api" } })).name).toBe("a-run-00000003");
  });

  test("links in the folder are removed, never followed: what they point to stays", async () => {
    const outside = tempDir("pai-outside-");
    writeFileSync(join(outside, "precious.txt"), "keep me");
    const old = await session({ files: true });
    await session();
    symlinkSync(outside, join(folderOf(old), "dir-link"));
    symlinkSync(join(outside, "precious.txt"), join(folderOf(old), "out", "file-link"));
    finishedDaysAgo(old, 60);
    expect(await core.retention.runOnce()).toBe(1);
    expect(existsSync(folderOf(old))).toBe(false);
    expect(readFileSync(join(outside, "precious.txt"), "utf8")).toBe("keep me");
    removeDir(outside);
  });

  test("a namespace folder replaced by a link is not deleted through: the row goes, the link's target stays", async () => {
    const old = await session();
    await session();
    const outside = tempDir("pai-outside-");
    mkdirSync(join(outside, old.name));
    writeFileSync(join(outside, old.name, "precious.txt"), "keep me");
    removeDir(join(dir, "sessions", "default"));
    mkdirSync(join(dir, "sessions"), { recursive: true });
    symlinkSync(outside, join(dir, "sessions", "default"));
    finishedDaysAgo(old, 60);
    expect(await core.retention.runOnce()).toBe(1);
    expect(exists(old)).toBe(false);
    expect(readFileSync(join(outside, old.name, "precious.txt"), "utf8")).toBe("keep me");
    expect(logs.join("")).toContain("is not a folder");
    removeDir(outside);
  });
});

describe("batches", () => {
  test("many sessions and long histories go over several small transactions", async () => {
    const olds: Session[] = [];
    for (let i = 0; i < 11; i++) olds.push(await session({ events: i === 4 ? 25 : 2, delivery: `d-${i}` }));
    const keep = await session();
    for (const s of olds) finishedDaysAgo(s, 40);
    let transactions = 0;
    const retention = createRetentionService({
      tx: (fn) => {
        transactions++;
        return core.store.tx(fn);
      },
      repo: createRetentionRepo(core.store.db),
      workDir: join(dir, "sessions"),
      log: createLogger("error"),
      retentionMs: 30 * DAY,
      batchSize: 3,
      maxEventsPerBatch: 4,
    });
    expect(await retention.runOnce()).toBe(11);
    for (const s of olds) expect(exists(s)).toBe(false);
    expect(exists(keep)).toBe(true);
    expect(count("webhook_deliveries")).toBe(0);
    expect(count("session_events", `session <> '${keep.name}'`)).toBe(0);
    // 11 sessions with 4+ events each, at most 4 events per transaction: many transactions, each small.
    expect(transactions).toBeGreaterThan(11);
  });

  test("retention 0 keeps everything and never schedules a run", async () => {
    const old = await session();
    await session();
    finishedDaysAgo(old, 4000);
    const retention = createRetentionService({ tx: core.store.tx, repo: createRetentionRepo(core.store.db), workDir: join(dir, "sessions"), log: createLogger("error"), retentionMs: 0, intervalMs: 10 });
    retention.start();
    expect(await retention.runOnce()).toBe(0);
    await Bun.sleep(50);
    await retention.stop();
    expect(exists(old)).toBe(true);
  });

  test("started, it runs at once and then every interval, until stopped", async () => {
    const retention = createRetentionService({ tx: core.store.tx, repo: createRetentionRepo(core.store.db), workDir: join(dir, "sessions"), log: createLogger("error"), retentionMs: 30 * DAY, intervalMs: 20 });
    retention.start();
    const first = await session();
    await session();
    finishedDaysAgo(first, 31);
    const deadline = Date.now() + 3000;
    while (exists(first) && Date.now() < deadline) await Bun.sleep(10);
    expect(exists(first)).toBe(false);
    const second = await session();
    await session();
    finishedDaysAgo(second, 31);
    while (exists(second) && Date.now() < deadline) await Bun.sleep(10);
    expect(exists(second)).toBe(false);
    await retention.stop();
    const third = await session();
    await session();
    finishedDaysAgo(third, 31);
    await Bun.sleep(80);
    expect(exists(third)).toBe(true);
  });
});

describe("--session-retention", () => {
  const load = (argv: string[], env: Record<string, string> = {}) => loadServeConfig(argv, env) as Exclude<ReturnType<typeof loadServeConfig>, "help">;

  test("30d by default; d, h, m and s; 0 keeps everything; the flag beats PAI_SESSION_RETENTION", () => {
    expect(load([]).sessionRetentionMs).toBe(30 * DAY);
    expect(load(["--session-retention", "12h"]).sessionRetentionMs).toBe(12 * 3_600_000);
    expect(load(["--session-retention", "90m"]).sessionRetentionMs).toBe(90 * 60_000);
    expect(load(["--session-retention", "7d"]).sessionRetentionMs).toBe(7 * DAY);
    expect(load(["--session-retention", "0"]).sessionRetentionMs).toBe(0);
    expect(load([], { PAI_SESSION_RETENTION: "45s" }).sessionRetentionMs).toBe(45_000);
    expect(load(["--session-retention", "1d"], { PAI_SESSION_RETENTION: "45s" }).sessionRetentionMs).toBe(DAY);
    expect(load([]).retentionIntervalMs).toBe(3_600_000);
    expect(load([], { PAI_RETENTION_INTERVAL_MS: "250" }).retentionIntervalMs).toBe(250);
  });

  test("bad values are a usage error naming the flag", () => {
    for (const bad of ["30", "30x", "-1d", "1.5d", "d", "30 days", "1w", ""]) {
      if (bad === "") continue; // an empty flag value is the parser's business
      expect(() => load(["--session-retention", bad])).toThrow(UsageError);
      expect(() => load(["--session-retention", bad])).toThrow(/--session-retention/);
    }
    expect(() => load([], { PAI_SESSION_RETENTION: "forever" })).toThrow(/--session-retention.*"forever"/);
    expect(() => load([], { PAI_RETENTION_INTERVAL_MS: "soon" })).toThrow(/PAI_RETENTION_INTERVAL_MS/);
  });

  test("durations parse and print back", () => {
    expect(parseDuration("0")).toBe(0);
    expect(parseDuration("000")).toBe(0);
    expect(parseDuration("2h")).toBe(7_200_000);
    expect(parseDuration("2")).toBeUndefined();
    expect(formatDuration(30 * DAY)).toBe("30d");
    expect(formatDuration(90 * 60_000)).toBe("90m");
    expect(formatDuration(1500)).toBe("1500ms");
  });
});
