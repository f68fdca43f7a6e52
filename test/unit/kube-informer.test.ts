/**
 * The informer (src/kube/informer.ts) against a small fake API server on 127.0.0.1 that speaks the
 * real protocol: paged lists (limit, continue, metadata.resourceVersion), watches as streams of JSON
 * lines with BOOKMARK and ERROR events, 410 answers, 500s and streams that end. The tests drive the
 * fake by hand (change its objects, send events, end streams) and check the cache, what listeners
 * heard, and the exact requests the informer made.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createKubeClient, type KubeObject } from "../../src/kube/client";
import { createInformer, type Informer, type InformerEventType, type InformerOptions } from "../../src/kube/informer";
import { createLogger } from "../../src/lib/log";

const PATH = "/apis/test.io/v1/widgets";

interface Widget extends KubeObject {
  spec?: { color?: string };
}

const status = (code: number, reason: string, message: string) => ({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", reason, code, message });
const statusResponse = (code: number, reason: string, message: string) => Response.json(status(code, reason, message), { status: code });
const EXPIRED_EVENT = { type: "ERROR", object: status(410, "Expired", "too old resource version") };

interface Seen {
  kind: "list" | "watch";
  query: URLSearchParams;
}
/** Answers one request instead of the fake's normal behaviour when it returns a Response. */
type Override = (query: URLSearchParams) => Response | undefined;

/** A fake API server for one resource; its resourceVersions are numbers, as a counter, sent as strings. */
function startFake() {
  let rv = 10;
  const objects = new Map<string, Widget>();
  const seen: Seen[] = [];
  const open = new Set<ReadableStreamDefaultController<Uint8Array>>();
  const overrides = { list: [] as Override[], watch: [] as Override[] };
  const encoder = new TextEncoder();

  const takeOverride = (kind: "list" | "watch", query: URLSearchParams): Response | undefined => {
    const list = overrides[kind];
    for (let i = 0; i < list.length; i++) {
      const res = list[i]!(query);
      if (res) {
        list.splice(i, 1);
        return res;
      }
    }
    return undefined;
  };

  function listAnswer(query: URLSearchParams): Response {
    const all = [...objects.keys()].sort().map((k) => objects.get(k)!);
    const start = Number(query.get("continue") ?? 0);
    const limit = Number(query.get("limit") ?? 0) || all.length;
    const items = all.slice(start, start + limit);
    const next = start + limit < all.length ? String(start + limit) : undefined;
    return Response.json({ kind: "WidgetList", apiVersion: "test.io/v1", metadata: { resourceVersion: String(rv), ...(next ? { continue: next } : {}) }, items });
  }

  function watchAnswer(request: Request): Response {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        controller = c;
        open.add(c);
        c.enqueue(encoder.encode("\n"));
      },
      cancel() {
        open.delete(controller);
      },
    });
    request.signal.addEventListener("abort", () => open.delete(controller));
    return new Response(stream, { headers: { "content-type": "application/json" } });
  }

  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    fetch(request) {
      const url = new URL(request.url);
      if (url.pathname !== PATH) return statusResponse(404, "NotFound", `no route ${url.pathname}`);
      const kind = url.searchParams.get("watch") === "1" ? "watch" : "list";
      seen.push({ kind, query: url.searchParams });
      const override = takeOverride(kind, url.searchParams);
      if (override) return override;
      return kind === "watch" ? watchAnswer(request) : listAnswer(url.searchParams);
    },
  });

  const write = (text: string) => {
    for (const c of open) c.enqueue(encoder.encode(text));
  };

  return {
    url: `http://127.0.0.1:${server.port}`,
    seen,
    open,
    overrides,
    rv: () => String(rv),
    /** Creates or changes an object (a new resourceVersion) without telling any watch. */
    put(namespace: string, name: string, color = "red"): Widget {
      const obj: Widget = { apiVersion: "test.io/v1", kind: "Widget", metadata: { name, namespace, resourceVersion: String(++rv) }, spec: { color } };
      objects.set(`${namespace}/${name}`, obj);
      return structuredClone(obj);
    },
    /** Removes an object without telling any watch; returns it at its deletion's resourceVersion. */
    remove(namespace: string, name: string): Widget {
      const obj = objects.get(`${namespace}/${name}`)!;
      objects.delete(`${namespace}/${name}`);
      return { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++rv) } };
    },
    send(type: string, object: unknown) {
      write(`${JSON.stringify({ type, object })}\n`);
    },
    sendRaw: write,
    /** Ends every open watch normally (as the server's timeoutSeconds does). */
    endWatches() {
      for (const c of open) c.close();
      open.clear();
    },
    watches: () => seen.filter((s) => s.kind === "watch"),
    lists: () => seen.filter((s) => s.kind === "list"),
    stop: () => server.stop(true),
  };
}

type Fake = ReturnType<typeof startFake>;

/** Polls until `fn` is true; fails with `what` after 3 s. */
async function until(fn: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

let fake: Fake;
let logLines: string[];
let informers: Informer<Widget>[];

beforeEach(() => {
  fake = startFake();
  logLines = [];
  informers = [];
});
afterEach(async () => {
  for (const i of informers) i.stop();
  await fake.stop();
});

function makeInformer(extra: Partial<InformerOptions> = {}): Informer<Widget> {
  const inf = createInformer<Widget>({
    client: createKubeClient({ server: fake.url, namespace: "default", source: "test" }),
    path: PATH,
    log: createLogger("debug", (l) => logLines.push(l)),
    backoffMs: { initial: 10, max: 40 },
    ...extra,
  });
  informers.push(inf);
  return inf;
}

/** What listeners heard, as `TYPE ns/name rv (old rv)`. */
function record(inf: Informer<Widget>): string[] {
  const events: string[] = [];
  inf.on((type: InformerEventType, obj, old) => events.push(`${type} ${obj.metadata.namespace}/${obj.metadata.name} ${obj.metadata.resourceVersion}${old ? ` (${old.metadata.resourceVersion})` : ""}`));
  return events;
}

/** Starts, waits for the first list and for the watch to be open on the fake. */
async function startAndWatch(inf: Informer<Widget>, watches = 1): Promise<void> {
  inf.start();
  await inf.synced();
  await until(() => fake.open.size === 1 && fake.watches().length === watches, "the informer's watch to be open");
}

describe("the first list", () => {
  test("pages with limit and continue, fills the cache, emits ADDED for each, then watches from the list's resourceVersion", async () => {
    for (const [ns, name] of [["a", "one"], ["a", "two"], ["b", "one"], ["b", "three"], ["c", "four"]] as const) fake.put(ns, name);
    const inf = makeInformer({ pageSize: 2, labelSelector: "app=x", fieldSelector: "metadata.name!=z" });
    const events = record(inf);
    expect(inf.hasSynced()).toBe(false);
    await startAndWatch(inf);

    expect(inf.hasSynced()).toBe(true);
    expect(fake.lists().map((l) => [l.query.get("limit"), l.query.get("continue")])).toEqual([["2", null], ["2", "2"], ["2", "4"]]);
    for (const l of fake.lists()) expect([l.query.get("labelSelector"), l.query.get("fieldSelector")]).toEqual(["app=x", "metadata.name!=z"]);
    expect(inf.list().length).toBe(5);
    expect(inf.list("a").map((o) => o.metadata.name).sort()).toEqual(["one", "two"]);
    expect(inf.get("b", "three")?.metadata.resourceVersion).toBe("14");
    expect(inf.get(undefined, "three")).toBeUndefined();
    expect(events).toEqual(["ADDED a/one 11", "ADDED a/two 12", "ADDED b/one 13", "ADDED b/three 14", "ADDED c/four 15"]);
    expect(inf.resourceVersion()).toBe("15");

    const w = fake.watches()[0]!.query;
    expect(Object.fromEntries(w)).toEqual({ watch: "1", resourceVersion: "15", allowWatchBookmarks: "true", timeoutSeconds: "300", labelSelector: "app=x", fieldSelector: "metadata.name!=z" });
    expect(inf.stats()).toEqual({ lists: 1, watches: 1, expired: 0, errors: 0 });
  });

  test("start() twice lists once", async () => {
    fake.put("a", "one");
    const inf = makeInformer();
    inf.start();
    inf.start();
    await startAndWatch(inf);
    expect(fake.lists().length).toBe(1);
  });
});

describe("the watch", () => {
  test("ADDED, MODIFIED and DELETED update the cache and reach listeners in order, with the old object", async () => {
    fake.put("ns", "a");
    const inf = makeInformer();
    const events = record(inf);
    await startAndWatch(inf);

    fake.send("ADDED", fake.put("ns", "b"));
    fake.send("MODIFIED", fake.put("ns", "a", "blue"));
    fake.send("DELETED", fake.remove("ns", "b"));
    await until(() => events.length === 4, "three watch events");
    expect(events).toEqual(["ADDED ns/a 11", "ADDED ns/b 12", "MODIFIED ns/a 13 (11)", "DELETED ns/b 14 (12)"]);
    expect(inf.get("ns", "a")?.spec?.color).toBe("blue");
    expect(inf.get("ns", "b")).toBeUndefined();
    expect(inf.resourceVersion()).toBe("14");
  });

  test("a MODIFIED whose resourceVersion looks older is applied all the same (resourceVersions are opaque)", async () => {
    fake.put("ns", "a");
    const inf = makeInformer();
    const events = record(inf);
    await startAndWatch(inf);
    fake.send("MODIFIED", { ...fake.put("ns", "a", "green"), metadata: { name: "a", namespace: "ns", resourceVersion: "9" } });
    await until(() => events.length === 2, "the MODIFIED event");
    expect(events[1]).toBe("MODIFIED ns/a 9 (11)");
    expect(inf.get("ns", "a")?.spec?.color).toBe("green");
    expect(inf.resourceVersion()).toBe("9");
  });

  test("as in client-go, the event follows the cache: ADDED of a cached object is a MODIFIED, MODIFIED of an unknown one an ADDED", async () => {
    fake.put("ns", "a");
    const inf = makeInformer();
    const events = record(inf);
    await startAndWatch(inf);
    fake.send("ADDED", fake.put("ns", "a", "blue"));
    fake.send("MODIFIED", fake.put("ns", "new"));
    await until(() => events.length === 3, "two events");
    expect(events.slice(1)).toEqual(["MODIFIED ns/a 12 (11)", "ADDED ns/new 13"]);
  });

  test("a BOOKMARK moves the resourceVersion only, and a watch the server ends is resumed from it at once", async () => {
    fake.put("ns", "a");
    const inf = makeInformer();
    const events = record(inf);
    await startAndWatch(inf);
    fake.send("BOOKMARK", { kind: "Widget", apiVersion: "test.io/v1", metadata: { resourceVersion: "500" } });
    await until(() => inf.resourceVersion() === "500", "the bookmark's resourceVersion");
    expect(events).toEqual(["ADDED ns/a 11"]);
    expect(inf.list().length).toBe(1);

    fake.endWatches();
    await until(() => fake.watches().length === 2 && fake.open.size === 1, "a second watch");
    expect(fake.watches()[1]!.query.get("resourceVersion")).toBe("500");
    expect(inf.stats()).toEqual({ lists: 1, watches: 2, expired: 0, errors: 0 });
  });
});

describe("410 Expired", () => {
  test("an ERROR event with a 410 Status: list again, and listeners get what changed in between", async () => {
    for (const name of ["a", "b", "c"]) fake.put("ns", name);
    const inf = makeInformer();
    const events = record(inf);
    await startAndWatch(inf);
    const afterSync = events.length;
    // Changes the informer never hears about as events.
    fake.put("ns", "a", "blue");
    fake.remove("ns", "b");
    fake.put("ns", "d");
    fake.send(EXPIRED_EVENT.type, EXPIRED_EVENT.object);
    await until(() => inf.stats().lists === 2 && fake.open.size === 1, "the relist and a new watch");

    expect(events.slice(afterSync)).toEqual(["MODIFIED ns/a 14 (11)", "ADDED ns/d 16", "DELETED ns/b 12 (12)"]);
    expect(inf.list().map((o) => o.metadata.name).sort()).toEqual(["a", "c", "d"]);
    expect(inf.stats()).toMatchObject({ lists: 2, expired: 1, errors: 0 });
    // The relist asked for everything afresh (no continue, no resourceVersion), and the new watch starts from its version.
    const relist = fake.lists()[1]!.query;
    expect([relist.get("continue"), relist.get("resourceVersion")]).toEqual([null, null]);
    expect(fake.watches().at(-1)!.query.get("resourceVersion")).toBe("16");
    expect(inf.resourceVersion()).toBe("16");
  });

  test("a 410 answer to the watch request: list again", async () => {
    fake.put("ns", "a");
    fake.overrides.watch.push(() => statusResponse(410, "Expired", "too old resource version: 11 (20)"));
    const inf = makeInformer();
    const events = record(inf);
    inf.start();
    await until(() => inf.stats().lists === 2 && fake.open.size === 1, "the relist and a new watch");
    expect(fake.seen.map((s) => s.kind)).toEqual(["list", "watch", "list", "watch"]);
    expect(inf.stats()).toEqual({ lists: 2, watches: 2, expired: 1, errors: 0 });
    // Nothing changed between the two lists: no event besides the first ADDED.
    expect(events).toEqual(["ADDED ns/a 11"]);
  });

  test("a 410 on a list's continue token: list again from scratch, in one request", async () => {
    for (const name of ["a", "b", "c"]) fake.put("ns", name);
    fake.overrides.list.push((q) => (q.get("continue") ? statusResponse(410, "Expired", "The provided continue parameter is too old") : undefined));
    const inf = makeInformer({ pageSize: 1 });
    const events = record(inf);
    await startAndWatch(inf);
    expect(fake.lists().map((l) => [l.query.get("limit"), l.query.get("continue")])).toEqual([["1", null], ["1", "1"], [null, null]]);
    expect(events).toEqual(["ADDED ns/a 11", "ADDED ns/b 12", "ADDED ns/c 13"]);
    expect(inf.stats()).toEqual({ lists: 1, watches: 1, expired: 1, errors: 0 });
  });
});

describe("failures", () => {
  test("a 500 on the list and on the watch: back off and retry; the watch again from the last resourceVersion, no relist", async () => {
    fake.put("ns", "a");
    fake.overrides.list.push(() => statusResponse(500, "InternalError", "etcd is sad"));
    fake.overrides.watch.push(() => statusResponse(500, "InternalError", "etcd is sad"));
    const inf = makeInformer();
    await startAndWatch(inf, 2);
    expect(fake.seen.map((s) => s.kind)).toEqual(["list", "list", "watch", "watch"]);
    expect(fake.watches().map((w) => w.query.get("resourceVersion"))).toEqual(["11", "11"]);
    expect(inf.stats()).toEqual({ lists: 1, watches: 2, expired: 0, errors: 2 });
    expect(logLines.filter((l) => l.includes("informer list/watch failed")).length).toBe(2);
  });

  test("an ERROR event that is not a 410, and a garbled stream: back off, watch again from the last resourceVersion", async () => {
    fake.put("ns", "a");
    const inf = makeInformer();
    await startAndWatch(inf);
    fake.send("MODIFIED", fake.put("ns", "a", "blue"));
    fake.send("ERROR", status(500, "InternalError", "something broke"));
    await until(() => fake.watches().length === 2 && fake.open.size === 1, "a second watch");
    fake.sendRaw("{not json\n");
    await until(() => fake.watches().length === 3 && fake.open.size === 1, "a third watch");
    expect(fake.watches().map((w) => w.query.get("resourceVersion"))).toEqual(["11", "12", "12"]);
    expect(inf.stats()).toEqual({ lists: 1, watches: 3, expired: 0, errors: 2 });
    expect(inf.get("ns", "a")?.spec?.color).toBe("blue");
  });

  test("a watch the server ends at once without any event is a failure (retried after a pause), not a timeout", async () => {
    fake.put("ns", "a");
    fake.overrides.watch.push(() => new Response("", { headers: { "content-type": "application/json" } }));
    const inf = makeInformer();
    await startAndWatch(inf, 2);
    expect(inf.stats()).toEqual({ lists: 1, watches: 2, expired: 0, errors: 1 });
    expect(logLines.some((l) => l.includes("very short watch"))).toBe(true);
  });

  test("a listener that throws is logged, and the other listeners and later events still arrive", async () => {
    fake.put("ns", "a");
    const inf = makeInformer();
    inf.on(() => {
      throw new Error("listener bug");
    });
    const events = record(inf);
    const other: string[] = [];
    const off = inf.on((type, obj) => other.push(`${type} ${obj.metadata.name}`));
    await startAndWatch(inf);
    fake.send("ADDED", fake.put("ns", "b"));
    await until(() => events.length === 2 && other.length === 2, "the watch event at both listeners");
    off();
    fake.send("ADDED", fake.put("ns", "c"));
    await until(() => events.length === 3, "the third event");
    expect(events).toEqual(["ADDED ns/a 11", "ADDED ns/b 12", "ADDED ns/c 13"]);
    // Unsubscribed before the third event.
    expect(other).toEqual(["ADDED a", "ADDED b"]);
    expect(logLines.filter((l) => l.includes("informer listener failed") && l.includes("listener bug")).length).toBe(3);
    expect(inf.stats().errors).toBe(0);
  });
});

describe("stop()", () => {
  test("closes the watch, and nothing more reaches the server, not even start() again", async () => {
    fake.put("ns", "a");
    const inf = makeInformer();
    await startAndWatch(inf);
    inf.stop();
    await until(() => fake.open.size === 0, "the watch to be closed on the server");
    const count = fake.seen.length;
    inf.start();
    await Bun.sleep(100); // several backoff periods of this informer
    expect(fake.seen.length).toBe(count);
  });

  test("during a backoff wait: no retry after it", async () => {
    fake.put("ns", "a");
    fake.overrides.watch.push(() => statusResponse(500, "InternalError", "etcd is sad"));
    const inf = makeInformer({ backoffMs: { initial: 50, max: 50 } });
    inf.start();
    await until(() => inf.stats().errors === 1, "the failed watch");
    inf.stop();
    const count = fake.seen.length;
    await Bun.sleep(150);
    expect(fake.seen.length).toBe(count);
    expect(fake.seen.map((s) => s.kind)).toEqual(["list", "watch"]);
  });

  test("before the first list answers: synced() stays pending and the cache empty", async () => {
    fake.put("ns", "a");
    // A list that never answers until the client goes away.
    fake.overrides.list.push(() => new Response(new ReadableStream({ start() {} })));
    const inf = makeInformer();
    inf.start();
    await until(() => fake.seen.length === 1, "the list request");
    inf.stop();
    const settled = await Promise.race([inf.synced().then(() => "synced"), Bun.sleep(50).then(() => "pending")]);
    expect(settled).toBe("pending");
    expect(inf.hasSynced()).toBe(false);
    expect(inf.list()).toEqual([]);
    expect(fake.seen.length).toBe(1);
  });
});
