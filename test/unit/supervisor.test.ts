/**
 * The supervisor composed as src/server.ts does (real store in a temp dir, session service, real
 * child processes), with the child's command injected: `true` (exits at once, so a session ends
 * Error "harness exited unexpectedly" without a model), `sh -c "sleep …"` (stays), or a path that
 * does not exist (cannot be spawned). What is checked: order and fairness of the queue, the bounded
 * window over a store-held backlog, spawn failures, spawning in bursts, and child priority.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { getPriority } from "node:os";
import { join } from "node:path";
import type { Agent } from "../../src/domain/agent";
import { Phase, type Session } from "../../src/domain/session";
import { createLogger } from "../../src/lib/log";
import { createSessionService, type LocalSessionService as SessionService } from "../../src/service/sessions";
import { createStore, type Store } from "../../src/store";
import { createSupervisor, type SupervisorDeps } from "../../src/supervisor/supervisor";
import { eventually, removeDir, tempDir } from "../helpers";

interface Rig {
  dir: string;
  store: Store;
  sessions: SessionService;
  supervisor: ReturnType<typeof createSupervisor>;
  /** Names in the order their sessions ended. */
  ended: string[];
  /** The largest number of queue entries held in memory, sampled at every start and end. */
  maxHeld(): number;
  /** What the supervisor logged. */
  logs: string[];
}

const rigs: Rig[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) {
    await r.supervisor.stop();
    r.store.close();
    removeDir(r.dir);
  }
});

const agent = (name: string, spec: Record<string, unknown> = {}): Agent =>
  ({ apiVersion: "pai.io/v1", kind: "Agent", metadata: { name, namespace: "default", uid: `uid-${name}`, generation: 1, resourceVersion: 1 }, spec: { models: ["pai/echo"], ...spec } }) as unknown as Agent;

/** Store, session service and supervisor on `dir`; the supervisor is started. */
async function rig(deps: Partial<SupervisorDeps> & { command: string[] }, dir = tempDir("pai-sup-")): Promise<Rig> {
  const store = createStore(dir);
  const logs: string[] = [];
  const log = createLogger("warn", (line) => logs.push(line));
  const sessions = createSessionService({ store, log });
  const supervisor = createSupervisor({ sessions, log, maxSessions: 1, baseEnv: { PATH: process.env.PATH }, credentials: {}, workDir: join(dir, "sessions"), ...deps });
  const ended: string[] = [];
  let maxHeld = 0;
  const sample = () => (maxHeld = Math.max(maxHeld, supervisor.stats().held));
  sessions.topics.sessionStarted.subscribe(sample);
  sessions.topics.sessionEnded.subscribe((s) => {
    ended.push(s.name);
    sample();
  });
  await supervisor.start();
  const r = { dir, store, sessions, supervisor, ended, maxHeld: () => maxHeld, logs };
  rigs.push(r);
  return r;
}

const start = (r: Rig, a: Agent, title = "x") => r.sessions.start(a, { title, origin: { kind: "api" } });
const ended = (r: Rig, s: Session) => eventually(() => {
  const now = r.sessions.find(s.namespace, s.name)!;
  return now.phase !== Phase.Pending && now.phase !== Phase.Running ? now : undefined;
}, 10_000, `${s.name} ended`);
const niceOf = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
};
const STAYS = ["sh", "-c", "exec sleep 30", "sh"];

describe("a child that cannot be started", () => {
  test("ends its session Error with the reason, frees the slot, and scheduling goes on", async () => {
    const r = await rig({ command: ["/nonexistent/pai"] });
    const a = agent("a", { maxConcurrentSessions: 1 });
    // start() resolves: the session is committed, whatever the spawn does later.
    const [first, second] = await Promise.all([start(r, a), start(r, a)]);
    for (const s of [first!, second!]) {
      const done = await ended(r, s);
      expect(done).toMatchObject({ phase: "Error", error: "failed to start the harness: ENOENT: no such file or directory, posix_spawn", startedAt: null });
      const events = r.sessions.events(s.namespace, s.name);
      expect(events.map((e) => e.type)).toEqual(["session.error", "session.status_closed"]);
      expect(events[1]!.content).toEqual({ phase: "Error", reason: "failed to start the harness: ENOENT: no such file or directory, posix_spawn" });
    }
    expect(r.supervisor.stats()).toMatchObject({ running: 0, queued: 0 });
    // The log keeps the whole cause, path included; the session's reason does not show server paths.
    expect(r.logs.join("")).toContain(`failed to start a session session=default/${first!.name} error="ENOENT: no such file or directory, posix_spawn '/nonexistent/pai'"`);
  });

  test("a work dir that cannot be made (a file where the folder should be) ends the session Error; other sessions run", async () => {
    const dir = tempDir("pai-sup-");
    mkdirSync(join(dir, "sessions"), { recursive: true });
    writeFileSync(join(dir, "sessions", "blocked"), "not a folder");
    const r = await rig({ command: ["true"] }, dir);
    const blocked = await r.sessions.start({ ...agent("a"), metadata: { ...agent("a").metadata, namespace: "blocked" } }, { title: "x", origin: { kind: "api" } });
    expect(await ended(r, blocked)).toMatchObject({ phase: "Error", error: "failed to start the harness: ENOTDIR: not a directory, mkdir" });
    const fine = await start(r, agent("a"));
    expect(await ended(r, fine)).toMatchObject({ phase: "Error", error: "harness exited unexpectedly (exit code 0)" });
  });
});

describe("order and fairness", () => {
  test("agents take turns; each agent's sessions run in the order they came; memory holds only the window", async () => {
    const r = await rig({ command: ["true"], queue: { window: 8, page: 4 } });
    const [a, b] = [agent("a"), agent("b")];
    const as = await Promise.all(Array.from({ length: 40 }, (_, i) => start(r, a, `a${i}`)));
    const bs = await Promise.all(Array.from({ length: 40 }, (_, i) => start(r, b, `b${i}`)));
    await eventually(() => r.ended.length === 80, 30_000, "all ended");
    expect(r.ended.filter((n) => n.startsWith("a-"))).toEqual(as.map((s) => s.name));
    expect(r.ended.filter((n) => n.startsWith("b-"))).toEqual(bs.map((s) => s.name));
    // b's first session waited for one of a's at most, not for all forty.
    expect(r.ended.indexOf(bs[0]!.name)).toBeLessThanOrEqual(2);
    expect(r.ended.slice(2, 78).every((n, i, all) => i === 0 || n[0] !== all[i - 1]![0])).toBe(true);
    expect(r.maxHeld()).toBeLessThanOrEqual(8);
    expect(r.supervisor.stats()).toEqual({ running: 0, queued: 0, held: 0 });
  });

  test("after a restart only the agents are read; a late agent's session does not wait behind an earlier backlog", async () => {
    const dir = tempDir("pai-sup-");
    const before = createStore(dir);
    const old = createSessionService({ store: before, log: createLogger("error") });
    const as: Session[] = [];
    for (let i = 0; i < 30; i++) as.push(await old.start(agent("a"), { title: `a${i}`, origin: { kind: "api" } }));
    const late = await old.start(agent("z"), { title: "late", origin: { kind: "api" } });
    before.close();

    const r = await rig({ command: ["true"], queue: { window: 4, page: 2 } }, dir);
    expect(r.supervisor.stats()).toMatchObject({ queued: 31 });
    await eventually(() => r.ended.length === 31, 30_000, "all ended");
    expect(r.ended.indexOf(late.name)).toBeLessThanOrEqual(1);
    expect(r.ended.filter((n) => n !== late.name)).toEqual(as.map((s) => s.name));
    expect(r.maxHeld()).toBeLessThanOrEqual(4);
  });
});

describe("spawning", () => {
  test("happens on a later turn of the event loop, a few children per turn", async () => {
    const r = await rig({ command: STAYS, maxSessions: 12, spawnsPerTurn: 4 });
    await Promise.all(Array.from({ length: 12 }, (_, i) => start(r, agent(`a${i}`))));
    // The starts resolved before any spawn: scheduling does not run on the caller's stack.
    expect(r.supervisor.stats().running).toBe(0);
    // setImmediate callbacks run in order: the scheduler's first turn was queued before this one.
    await new Promise((resolve) => setImmediate(resolve));
    expect(r.supervisor.stats().running).toBe(4);
    await eventually(() => r.supervisor.stats().running === 12, 10_000, "all running");
  });

  test("children run at a lower priority: the server's nice + sessionNice (default 10); 0 keeps the server's", async () => {
    const own = getPriority();
    const low = await rig({ command: STAYS });
    await start(low, agent("a"));
    const pid = await eventually(() => low.supervisor.pids()[0], 5000, "child");
    expect(niceOf(pid)).toBe(Math.min(19, own + 10));

    const same = await rig({ command: STAYS, sessionNice: 0 });
    await start(same, agent("a"));
    const other = await eventually(() => same.supervisor.pids()[0], 5000, "child");
    expect(niceOf(other)).toBe(own);
  });
});

describe("webhook.json", () => {
  test("is the payload as compact JSON, never indented", async () => {
    const r = await rig({ command: ["true"] });
    const payload = { action: "opened", issue: { number: 7, labels: [{ name: "bug" }, { name: "p1" }], nested: { a: { b: { c: [1, 2, 3] } } } } };
    const s = await r.sessions.start(agent("a"), { title: "x", origin: { kind: "webhook" }, kind: "wh", payload });
    await ended(r, s);
    expect(readFileSync(join(r.dir, "sessions", "default", s.name, "webhook.json"), "utf8")).toBe(JSON.stringify(payload));
  });
});
