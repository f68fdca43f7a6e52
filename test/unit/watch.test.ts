/**
 * The store-wide revision counter and watches, over a real SQLite store (createCore, no HTTP for
 * the service; a real Request and stream for the route helper): one counter for agents and
 * secrets, replay from a version, live changes after commit (never a rolled-back one), the
 * status write-back as MODIFIED, DELETED with the object, 410 for a compacted version, bookmarks,
 * timeouts and a client that goes away.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createCore, type Core } from "../../src/core";
import type { Agent, AgentInput } from "../../src/domain/agent";
import { ExpiredError } from "../../src/domain/errors";
import { createLogger } from "../../src/lib/log";
import { watchResponse, type WatchRoute } from "../../src/api/watch";
import type { WatchEvent } from "../../src/service/watch";
import { removeDir, tempDir } from "../helpers";

let dir: string;
let core: Core;

beforeEach(() => {
  dir = tempDir("pai-watch-");
  core = createCore({ dataDir: dir, maxSessions: 1, trustedProxies: [], allowPrivateCallbacks: false }, createLogger("error"));
});
afterEach(async () => {
  await core.stop();
  removeDir(dir);
});

const input = (name: string, system = "s", namespace = "default"): AgentInput => ({ name, namespace, spec: { models: ["pai/echo"], system } });
const rvOf = (ns: string, name: string) => Number(core.agents.get(ns, name).agent.metadata.resourceVersion);

/** A watch of agents through the service, collecting what it sends. */
function watchAgents(from?: number, namespace?: string) {
  const got: { type: string; name: string; rv: string; system?: string }[] = [];
  const stop = core.watch.watch({
    kind: "Agent",
    from,
    namespace,
    list: () => core.agents.list(namespace).map((a) => ({ object: a.agent, rev: Number(a.agent.metadata.resourceVersion) })),
    current: (ns, name) => core.agents.find(ns, name)?.agent,
    send: (e: WatchEvent) => {
      const a = e.object as Agent;
      got.push({ type: e.type, name: a.metadata.name, rv: a.metadata.resourceVersion, system: a.spec.system });
    },
  });
  return { got, stop };
}

describe("the revision counter", () => {
  test("agents and secrets share one store-wide counter, and a list's version is the newest", () => {
    core.agents.apply(input("a"), "api");
    const a1 = rvOf("default", "a");
    core.secrets.put({ namespace: "default", name: "s", type: "Opaque", data: { k: "v" } });
    const s1 = Number(core.store.secrets.get("default", "s")!.resourceVersion);
    core.agents.apply(input("a", "changed"), "api");
    const a2 = rvOf("default", "a");
    expect(s1).toBeGreaterThan(a1);
    expect(a2).toBeGreaterThan(s1);
    expect(core.watch.current()).toBe(a2);
    // An apply that changes nothing writes nothing: same version.
    core.agents.apply(input("a", "changed"), "api");
    expect(rvOf("default", "a")).toBe(a2);
  });

  test("a write rolled back takes no version and is never announced", () => {
    const { got, stop } = watchAgents(core.watch.current());
    const before = core.watch.current();
    expect(() =>
      core.store.tx(() => {
        core.store.agents.insert({
          namespace: "default", name: "ghost", uid: "u", generation: 1, resourceVersion: 0, labels: null, annotations: null,
          spec: { models: ["pai/echo"] }, status: {}, source: "api", createdAt: "t", updatedAt: "t",
        });
        throw new Error("disk full");
      }),
    ).toThrow("disk full");
    expect(core.agents.find("default", "ghost")).toBeUndefined();
    expect(core.watch.current()).toBe(before);
    expect(got).toEqual([]);
    stop();
  });
});

describe("watch", () => {
  test("without a version: the current objects as ADDED, then changes as they commit (status write-back included)", () => {
    core.agents.apply(input("a"), "api");
    core.agents.apply(input("b", "s", "other"), "api");
    const { got, stop } = watchAgents(undefined, "default");
    expect(got.map((e) => [e.type, e.name])).toEqual([["ADDED", "a"]]);
    core.agents.apply(input("a", "v2"), "api");
    core.agents.setStatus("default", "a", { webhookUrl: "http://x" });
    core.agents.apply(input("c"), "api");
    core.agents.apply(input("b", "v2", "other"), "api"); // another namespace: not seen
    core.agents.remove("default", "c");
    expect(got.map((e) => [e.type, e.name])).toEqual([
      ["ADDED", "a"],
      ["MODIFIED", "a"],
      ["MODIFIED", "a"],
      ["ADDED", "c"],
      ["DELETED", "c"],
    ]);
    // Each event carries the object at that version; versions only grow.
    expect(got[1]!.system).toBe("v2");
    const rvs = got.slice(1).map((e) => Number(e.rv));
    expect([...rvs].sort((x, y) => x - y)).toEqual(rvs);
    expect(new Set(rvs).size).toBe(rvs.length);
    stop();
    core.agents.apply(input("d"), "api");
    expect(got).toHaveLength(5);
  });

  test("from a version: every change after it is replayed from the log, then live ones follow", () => {
    core.agents.apply(input("a"), "api");
    const listed = core.watch.current();
    core.agents.apply(input("a", "v2"), "api");
    core.secrets.put({ namespace: "default", name: "s", type: "Opaque", data: {} }); // another kind: not seen
    core.agents.remove("default", "a");
    const { got, stop } = watchAgents(listed);
    expect(got.map((e) => [e.type, e.name, e.system])).toEqual([
      ["MODIFIED", "a", "v2"],
      ["DELETED", "a", "v2"],
    ]);
    core.agents.apply(input("a", "v3"), "api");
    expect(got.at(-1)).toMatchObject({ type: "ADDED", name: "a", system: "v3" });
    stop();
  });

  test("a version older than the log's oldest is Expired (410); the newest is not", () => {
    for (let i = 0; i < 5; i++) core.agents.apply(input("a", `v${i}`), "api");
    const old = 1;
    core.store.revisions.compact(core.watch.current() - 2);
    expect(() => watchAgents(old)).toThrow(ExpiredError);
    const { got, stop } = watchAgents(core.watch.current());
    expect(got).toEqual([]);
    stop();
  });

  test("secrets: a deleted secret's values do not stay in the log", () => {
    core.secrets.put({ namespace: "default", name: "s", type: "Opaque", data: { password: "hunter2" } });
    core.secrets.remove("default", "s");
    const rows = core.store.revisions.after(0).filter((r) => r.kind === "Secret" && r.type === "DELETED");
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows[0]!.object)).not.toContain("hunter2");
  });
});

describe("the watch stream", () => {
  const route = (): WatchRoute => ({
    kind: "Agent",
    objectKind: "Agent",
    apiVersion: "pai.io/v1",
    namespace: "default",
    toObject: (o) => o,
    list: () => core.agents.list("default").map((a) => ({ object: a.agent, rev: Number(a.agent.metadata.resourceVersion) })),
    current: (ns, name) => core.agents.find(ns, name)?.agent,
  });

  async function lines(reader: ReadableStreamDefaultReader<Uint8Array>, count: number): Promise<any[]> {
    const out: any[] = [];
    let buf = "";
    while (out.length < count) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += new TextDecoder().decode(value);
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        if (nl > 0) out.push(JSON.parse(buf.slice(0, nl))); // a blank line only opens the stream
        buf = buf.slice(nl + 1);
      }
    }
    return out;
  }

  test("streams JSON lines, live, and ends after timeoutSeconds", async () => {
    core.agents.apply(input("a"), "api");
    const res = watchResponse(core.watch, new Request("http://x/"), { watch: "true", timeoutSeconds: "1" }, route());
    expect(res.headers.get("content-type")).toBe("application/json");
    setTimeout(() => core.agents.apply(input("a", "v2"), "api"), 20);
    const reader = res.body!.getReader();
    const got = await lines(reader, 2);
    expect(got.map((e) => e.type)).toEqual(["ADDED", "MODIFIED"]);
    expect(got[1].object.spec.system).toBe("v2");
    // Then the stream ends by itself (timeoutSeconds=1).
    expect((await reader.read()).done).toBe(true);
  });

  test("with allowWatchBookmarks, BOOKMARK events carry the newest resourceVersion", async () => {
    core.agents.apply(input("a"), "api");
    const res = watchResponse(core.watch, new Request("http://x/"), { watch: "true", allowWatchBookmarks: "true", timeoutSeconds: "5" }, { ...route(), bookmarkMs: 20 });
    const reader = res.body!.getReader();
    const got = await lines(reader, 2);
    expect(got[0].type).toBe("ADDED");
    expect(got[1]).toEqual({ type: "BOOKMARK", object: { kind: "Agent", apiVersion: "pai.io/v1", metadata: { resourceVersion: String(core.watch.current()) } } });
    await reader.cancel();
  });

  test("with nothing to send yet, a blank line opens the stream (so the headers go out at once)", async () => {
    const res = watchResponse(core.watch, new Request("http://x/"), { watch: "true", timeoutSeconds: "1" }, route());
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe("\n");
    await reader.cancel();
  });

  test("a client that hangs up ends the watch: nothing is sent to it any more", async () => {
    const abort = new AbortController();
    const res = watchResponse(core.watch, new Request("http://x/", { signal: abort.signal }), { watch: "true" }, route());
    abort.abort();
    core.agents.apply(input("late"), "api");
    // Only the blank line that opened the stream: no event after the hang-up.
    const text = await res.text();
    expect(text).toBe("\n");
  });

  test("an expired version and a malformed one are refused before any byte is sent", () => {
    for (let i = 0; i < 3; i++) core.agents.apply(input("a", `v${i}`), "api");
    core.store.revisions.compact(core.watch.current() - 1);
    expect(() => watchResponse(core.watch, new Request("http://x/"), { watch: "true", resourceVersion: "1" }, route())).toThrow(ExpiredError);
    expect(() => watchResponse(core.watch, new Request("http://x/"), { watch: "true", resourceVersion: "1e3" }, route())).toThrow("not a resource version");
    expect(() => watchResponse(core.watch, new Request("http://x/"), { watch: "true", timeoutSeconds: "-1" }, route())).toThrow("timeoutSeconds");
  });
});

describe("a data dir from before the revision log", () => {
  test("its agents and secrets get a revision each, and their resourceVersion from it", async () => {
    const { Database } = await import("bun:sqlite");
    const { migrations } = await import("../../db/migrations/index");
    const { join } = await import("node:path");
    const old = tempDir("pai-watch-old-");
    try {
      // The schema as the release before left it, with one agent and one secret in it.
      const db = new Database(join(old, "pai.db"), { create: true });
      const before = migrations.filter((m) => m.tag < "0005");
      for (const m of before) for (const stmt of m.sql.split("--> statement-breakpoint")) if (stmt.trim()) db.exec(stmt);
      db.exec("CREATE TABLE IF NOT EXISTS __drizzle_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, hash text NOT NULL, created_at numeric)");
      for (const m of before) db.prepare("INSERT INTO __drizzle_migrations (hash, created_at) VALUES (?, ?)").run("old", m.when);
      db.exec(`INSERT INTO agents (namespace, name, uid, generation, resource_version, spec, status, source, created_at, updated_at)
               VALUES ('default', 'a', 'u1', 3, 7, '{"models":["pai/echo"]}', '{}', 'api', 't', 't')`);
      db.exec(`INSERT INTO secrets (namespace, name, uid, type, resource_version, data, created_at) VALUES ('default', 's', 'u2', 'Opaque', 4, '{"k":"v"}', 't')`);
      db.close();
      const c = createCore({ dataDir: old, maxSessions: 1, trustedProxies: [], allowPrivateCallbacks: false }, createLogger("error"));
      try {
        const a = Number(c.agents.get("default", "a").agent.metadata.resourceVersion);
        const s = Number(c.store.secrets.get("default", "s")!.resourceVersion);
        // Agents first, then secrets, each in name order.
        expect([a, s]).toEqual([1, 2]);
        expect(c.watch.current()).toBe(2);
        // A watch from before one replays it; the migration kept no object, so it comes from the store.
        const got: unknown[] = [];
        const stop = c.watch.watch({ kind: "Secret", from: 1, list: () => [], current: (ns, n) => c.store.secrets.get(ns, n), send: (e) => got.push([e.type, e.rev, (e.object as { data: unknown }).data]) });
        stop();
        expect(got).toEqual([["ADDED", 2, { k: "v" }]]);
        // New writes count on from there.
        c.agents.apply(input("a", "new"), "api");
        expect(Number(c.agents.get("default", "a").agent.metadata.resourceVersion)).toBeGreaterThan(Math.max(a, s));
      } finally {
        await c.stop();
      }
    } finally {
      removeDir(old);
    }
  });
});
