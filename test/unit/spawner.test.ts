/**
 * The spawner (src/supervisor/spawner.ts) on its own, on a Worker thread and inline: warm children
 * run sessions with the folder and environment of the start message, a reusable child is handed
 * the agent's next run and only that agent's, a kill meant for a finished run never reaches the
 * child's next one, warm children that keep dying are paused with one warning, and close() leaves
 * no waiting child. The children are the real `pai harness` on pai/echo.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { StartMessage } from "../../src/harness/protocol";
import { createSpawner, type SpawnEvent, type SpawnRequest, type Spawner } from "../../src/supervisor/spawner";
import { MAIN, childrenIn, eventually, processAlive, removeDir, tempDir } from "../helpers";

const HARNESS = [process.execPath, MAIN, "harness"];
const env = { PATH: process.env.PATH!, HOME: process.env.HOME ?? "/tmp" };

function startMessage(title: string): StartMessage {
  return {
    type: "start",
    session: { name: title, namespace: "default", title, origin: {}, hasPayload: false },
    spec: { models: ["pai/echo"] },
    credentials: {},
    tools: { allowUnsandboxed: false, allowPrivateFetch: false, hidden: [] },
  };
}

interface Rig {
  spawner: Spawner;
  events: SpawnEvent[];
  dir: string;
  /** Events of one run, in order. */
  of(id: number): SpawnEvent[];
  /** Waits for the run's end ("exit" or "done"). */
  ended(id: number): Promise<SpawnEvent>;
  request(id: number, opts?: Partial<Extract<SpawnRequest, { t: "spawn" }>>): void;
  waitingPids(): number[];
}

const rigs: Rig[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) await r.spawner.close();
  for (const d of dirs.splice(0)) removeDir(d);
});

function rig(inline: boolean, opts: { warmChildren?: number; earlyCmd?: string[]; maxIdle?: number; calmBelow?: number } = {}): Rig {
  const dir = tempDir("pai-spawner-");
  dirs.push(dir);
  const events: SpawnEvent[] = [];
  const spawner = createSpawner(
    { childNice: -1, stderrTail: 2000, warmChildren: opts.warmChildren ?? 2, early: { cmd: opts.earlyCmd ?? [...HARNESS, "--warm"], cwd: dir, env }, maxIdle: opts.maxIdle ?? 4, ...(opts.calmBelow ? { calmBelow: opts.calmBelow } : {}) },
    (e) => events.push(e),
    (err) => events.push({ t: "warning", message: `thread failed: ${String(err)}` }),
    inline,
  );
  const r: Rig = {
    spawner,
    events,
    dir,
    of: (id) => events.filter((e) => "id" in e && e.id === id),
    ended: (id) => eventually(() => events.find((e) => "id" in e && e.id === id && (e.t === "exit" || e.t === "done")), 15_000, `run ${id} ended`),
    request(id, extra = {}) {
      const cwd = join(dir, `run-${id}`);
      spawner.send({ t: "spawn", id, cmd: HARNESS, cwd, env: { ...env, RUN: String(id) }, hasPayload: false, start: startMessage(`run ${id}`), early: true, ...extra });
    },
    // Children of this test process in the rig's folder: warm or idle.
    waitingPids: () => childrenIn(process.pid, dir),
  };
  rigs.push(r);
  return r;
}

const result = (r: Rig, id: number) => r.of(id).find((e) => e.t === "message" && e.msg.type === "result") as Extract<SpawnEvent, { t: "message" }> | undefined;
const spawned = (r: Rig, id: number) => r.of(id).find((e) => e.t === "spawned") as Extract<SpawnEvent, { t: "spawned" }>;

for (const inline of [false, true]) {
  describe(inline ? "inline spawner" : "spawner on a Worker thread", () => {
    test("the first run gets a new child; warm ones follow and run the next sessions in their own folders", async () => {
      const r = rig(inline);
      r.request(1);
      await r.ended(1);
      expect(spawned(r, 1).how).toBe("cold");
      expect(result(r, 1)?.msg).toMatchObject({ type: "result", phase: "Complete", response: "run 1" });
      await eventually(() => r.waitingPids().length === 2, 10_000, "two warm children");
      r.request(2);
      r.request(3);
      await r.ended(2);
      await r.ended(3);
      expect([spawned(r, 2).how, spawned(r, 3).how]).toEqual(["warm", "warm"]);
      expect(spawned(r, 2).pid).not.toBe(spawned(r, 3).pid);
      expect(result(r, 2)?.msg).toMatchObject({ phase: "Complete", response: "run 2" });
      // Each run's folder was made for it and removed once empty.
      expect(existsSync(join(r.dir, "run-2"))).toBe(false);
    });

    test("a reusable child is handed the same agent's next run, never another key's; a late kill for its last run does not reach it", async () => {
      const r = rig(inline, { warmChildren: 0 });
      const reuse = (key: string) => ({ reuse: { key, maxRuns: 10, idleMs: 10_000 } });
      r.request(1, reuse("a"));
      expect((await r.ended(1)).t).toBe("done");
      const pid = spawned(r, 1).pid;
      // The deadline of run 1 fires after it ended: the kept child is not touched.
      r.spawner.send({ t: "kill", id: 1, signal: "SIGKILL" });
      r.request(2, reuse("a"));
      expect((await r.ended(2)).t).toBe("done");
      expect(spawned(r, 2)).toMatchObject({ how: "reused", pid });
      r.request(3, reuse("b"));
      await r.ended(3);
      expect(spawned(r, 3).how).toBe("cold");
      expect(spawned(r, 3).pid).not.toBe(pid);
      expect(result(r, 2)?.msg).toMatchObject({ phase: "Complete", response: "run 2" });
    });

    test("at most maxIdle children wait for their agents' next sessions: the longest idle goes first", async () => {
      const r = rig(inline, { warmChildren: 0, maxIdle: 1 });
      const reuse = (key: string) => ({ reuse: { key, maxRuns: 10, idleMs: 10_000 } });
      r.request(1, reuse("a"));
      await r.ended(1);
      const first = spawned(r, 1).pid;
      r.request(2, reuse("b"));
      await r.ended(2);
      // Parking b's child evicted a's.
      await eventually(() => r.waitingPids().length === 1 && r.waitingPids()[0] === spawned(r, 2).pid, 5000, "only b's child waits");
      expect(processAlive(first)).toBe(false);
      r.request(3, reuse("a"));
      await r.ended(3);
      expect(spawned(r, 3).how).toBe("cold");
    });

    test("warm children are not refilled while as many runs as CPUs are in flight; they are once fewer run", async () => {
      // A model endpoint that never answers keeps a run in flight until it is killed.
      const silent = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Promise<Response>(() => {}) });
      try {
        const r = rig(inline, { calmBelow: 1 });
        const hanging = { ...startMessage("hang"), spec: { models: ["anthropic/claude-hang"] }, credentials: { ANTHROPIC_API_KEY: "k", ANTHROPIC_BASE_URL: `http://127.0.0.1:${silent.port}` } };
        r.request(1);
        await r.ended(1);
        await eventually(() => r.waitingPids().length === 2, 10_000, "two warm children");
        r.request(2, { start: hanging });
        await eventually(() => r.of(2).some((e) => e.t === "spawned"), 5000, "run 2 handed out");
        expect(spawned(r, 2).how).toBe("warm");
        // One run in flight (calmBelow 1): the taken warm child is not replaced.
        await Bun.sleep(300);
        expect(r.waitingPids()).toHaveLength(1);
        r.spawner.send({ t: "kill", id: 2, signal: "SIGKILL" });
        await r.ended(2);
        await eventually(() => r.waitingPids().length === 2, 10_000, "refilled once the run ended");
      } finally {
        silent.stop(true);
      }
    });

    test("a session that needs its environment at spawn (early: false) never gets a waiting child", async () => {
      const r = rig(inline);
      r.request(1);
      await r.ended(1);
      await eventually(() => r.waitingPids().length === 2, 10_000, "two warm children");
      r.request(2, { early: false });
      await r.ended(2);
      expect(spawned(r, 2).how).toBe("cold");
      expect(r.waitingPids()).toHaveLength(2);
    });

    test("warm children that keep dying are paused with one warning; sessions still run", async () => {
      const r = rig(inline, { earlyCmd: ["false"] });
      r.request(1);
      await r.ended(1);
      const warning = await eventually(() => r.events.find((e) => e.t === "warning"), 5000, "warning") as Extract<SpawnEvent, { t: "warning" }>;
      expect(warning.message).toContain("warm session processes keep exiting before their session (last: exit code 1); none is started for 30 s");
      r.request(2);
      await r.ended(2);
      expect(spawned(r, 2).how).toBe("cold");
      await Bun.sleep(200);
      expect(r.events.filter((e) => e.t === "warning")).toHaveLength(1);
    });

    test("close() kills the waiting children", async () => {
      const r = rig(inline, { warmChildren: 2 });
      r.request(1, { reuse: { key: "a", maxRuns: 5, idleMs: 10_000 } });
      await r.ended(1);
      const waiting = await eventually(() => (r.waitingPids().length === 3 ? r.waitingPids() : undefined), 10_000, "two warm and one kept");
      await r.spawner.close();
      rigs.splice(rigs.indexOf(r), 1);
      await eventually(() => r.waitingPids().length === 0, 5000, "no waiting child left");
      for (const pid of waiting) expect(processAlive(pid)).toBe(false);
    });
  });
}
