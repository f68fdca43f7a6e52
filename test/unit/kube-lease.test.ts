/**
 * Leader election on a Lease (src/kube/lease.ts) against the fake Lease API of
 * test/fakes/kube-leases.ts over real HTTP: acquiring, renewing, releasing on stop, losing a term
 * that cannot be renewed, replacing a dead leader, a race for an expired lease; and throughout, never
 * two leaders at once. Then the fake itself: its Lease protocol, and that everything else reaches
 * the upstream unchanged and streamed, over HTTP and HTTPS (pai's generated certificates), and in
 * front of a real `pai serve --tls`.
 *
 * Electors whose clock is frozen (`now`) make the cases that would otherwise depend on timing
 * deterministic: a frozen elector never sees another's lease expire, so if it takes over, the lease
 * was released.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { KubeApiError, createKubeClient, type KubeClient } from "../../src/kube/client";
import { kubeconfigConnection } from "../../src/kube/config";
import { createLeaderElector, microTime, type Lease, type LeaderElector } from "../../src/kube/lease";
import { createLogger } from "../../src/lib/log";
import { ensureGeneratedTls } from "../../src/lib/tls";
import { startLeaseProxy, type LeaseProxy } from "../fakes/kube-leases";
import { eventually, removeDir, tempDir } from "../helpers";
import { startKubeServer } from "../kube";

const TIMES = { leaseDurationMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 100 };
const LEASE = "default/pai-controller";
const LEASE_URL = "/apis/coordination.k8s.io/v1/namespaces/default/leases";

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function proxyFor(opts: Parameters<typeof startLeaseProxy>[0] = { upstream: "http://127.0.0.1:9" }): Promise<LeaseProxy> {
  const proxy = await startLeaseProxy(opts);
  cleanups.push(() => proxy.stop());
  return proxy;
}

/** Checks, for the whole test, that no two electors lead at once: at every term start, and by sampling isLeader(). */
function leaderWatch() {
  const leading = new Set<string>();
  const overlaps: string[] = [];
  const all: { id: string; e: LeaderElector }[] = [];
  const sampler = setInterval(() => {
    const now = all.filter((x) => x.e.isLeader()).map((x) => x.id);
    if (now.length > 1) overlaps.push(`sampled: ${now.join(", ")}`);
  }, 2);
  cleanups.push(() => clearInterval(sampler));
  return {
    overlaps,
    started(id: string) {
      if (leading.size) overlaps.push(`${id} started while ${[...leading].join(", ")} led`);
      leading.add(id);
    },
    stopped(id: string) {
      leading.delete(id);
    },
    add(id: string, e: LeaderElector) {
      all.push({ id, e });
    },
  };
}

interface Candidate {
  e: LeaderElector;
  events: string[];
  logs: string[];
  client: KubeClient;
}

function candidate(
  proxy: LeaseProxy,
  watch: ReturnType<typeof leaderWatch>,
  id: string,
  opts: { fetch?: typeof fetch; now?: () => number; times?: Partial<typeof TIMES> } = {},
): Candidate {
  const events: string[] = [];
  const logs: string[] = [];
  const client = createKubeClient({ server: proxy.url, namespace: "default", source: "test" }, opts.fetch ? { fetch: opts.fetch } : {});
  const e = createLeaderElector({
    client,
    namespace: "default",
    name: "pai-controller",
    identity: id,
    log: createLogger("debug", (l) => logs.push(l)),
    ...TIMES,
    ...opts.times,
    now: opts.now,
    onStartedLeading() {
      events.push("started");
      watch.started(id);
    },
    onStoppedLeading() {
      events.push("stopped");
      watch.stopped(id);
    },
  });
  watch.add(id, e);
  cleanups.push(() => e.stop());
  return { e, events, logs, client };
}

const spec = (proxy: LeaseProxy) => (proxy.leases.get(LEASE) as Lease | undefined)?.spec;
/** Waits until `c` has renewed `n` more times (so the others have had as many chances to take over). */
const renewalsPass = (c: Candidate, n: number) => {
  const from = c.e.stats().renewals;
  return eventually(() => c.e.stats().renewals >= from + n, 5000, `${n} renewals`);
};
/** A fetch that fails (as a dead network would) while `dead.on`. */
function dyingFetch(dead: { on: boolean }): typeof fetch {
  return Object.assign((input: string | URL | Request, init?: RequestInit) => (dead.on ? Promise.reject(new TypeError("connection refused (test)")) : fetch(input, init)), { preconnect: fetch.preconnect });
}

describe("leader election", () => {
  test("the first elector acquires the lease, renews it, and a second does not lead meanwhile", async () => {
    const proxy = await proxyFor();
    const watch = leaderWatch();
    const a = candidate(proxy, watch, "a");
    a.e.start();
    a.e.start(); // idempotent
    await eventually(() => a.e.isLeader(), 5000, "a to lead");
    expect(a.events).toEqual(["started"]);
    const first = spec(proxy)!;
    expect(first).toMatchObject({ holderIdentity: "a", leaseTransitions: 0, leaseDurationSeconds: 1 });
    expect(first.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(first.acquireTime).toBe(first.renewTime!);

    const b = candidate(proxy, watch, "b");
    b.e.start();
    // Well past a lease duration of renewals: b must have seen them and kept out.
    await renewalsPass(a, 15);
    expect(b.e.isLeader()).toBe(false);
    expect(b.e.stats().acquired).toBe(0);
    const later = spec(proxy)!;
    expect(later).toMatchObject({ holderIdentity: "a", leaseTransitions: 0, acquireTime: first.acquireTime });
    expect(later.renewTime! > first.renewTime!).toBe(true);
    expect(a.events).toEqual(["started"]);
    expect(a.e.stats()).toMatchObject({ acquired: 1, lost: 0, errors: 0 });
    expect(watch.overlaps).toEqual([]);
  });

  test("stop() releases the lease: a waiting elector takes over without waiting for it to expire", async () => {
    const proxy = await proxyFor();
    const watch = leaderWatch();
    const a = candidate(proxy, watch, "a");
    a.e.start();
    await eventually(() => a.e.isLeader(), 5000, "a to lead");
    // b's clock stands still, so to b a's lease never expires: only a release lets it in.
    const frozen = Date.now();
    const b = candidate(proxy, watch, "b", { now: () => frozen });
    b.e.start();
    await renewalsPass(a, 5);
    expect(b.e.isLeader()).toBe(false);

    await a.e.stop();
    expect(a.e.isLeader()).toBe(false);
    expect(a.events).toEqual(["started", "stopped"]);
    expect(a.e.stats().lost).toBe(0);
    await eventually(() => b.e.isLeader(), 5000, "b to take over after a's release");
    expect(spec(proxy)).toMatchObject({ holderIdentity: "b", leaseTransitions: 1 });
    expect(b.events).toEqual(["started"]);
    // a, stopped, stays out.
    await renewalsPass(b, 3);
    expect(a.events).toEqual(["started", "stopped"]);
    expect(watch.overlaps).toEqual([]);
  });

  test("stop() writes client-go's release record", async () => {
    const proxy = await proxyFor();
    const watch = leaderWatch();
    const a = candidate(proxy, watch, "a");
    a.e.start();
    await eventually(() => a.e.isLeader(), 5000, "a to lead");
    await a.e.stop();
    expect(spec(proxy)).toMatchObject({ holderIdentity: "", leaseDurationSeconds: 1, leaseTransitions: 0 });
    // A stop that was not leading writes nothing.
    const writes = proxy.requests.filter((r) => r.method !== "GET").length;
    const idle = candidate(proxy, watch, "idle");
    await idle.e.stop();
    await a.e.stop();
    expect(proxy.requests.filter((r) => r.method !== "GET").length).toBe(writes);
  });

  test("a leader that cannot renew stops leading, and leads again once it can", async () => {
    const proxy = await proxyFor();
    const watch = leaderWatch();
    const a = candidate(proxy, watch, "a");
    a.e.start();
    await eventually(() => a.e.isLeader(), 5000, "a to lead");
    proxy.failLeaseWrites = 503;
    await eventually(() => !a.e.isLeader(), 3000, "a to stop leading once renewals fail");
    expect(a.events).toEqual(["started", "stopped"]);
    expect(a.e.stats().lost).toBe(1);
    expect(a.e.stats().errors).toBeGreaterThan(0);
    expect(a.logs.some((l) => / WARN leader election: stopped leading .*renewDeadline/.test(l))).toBe(true);

    proxy.failLeaseWrites = undefined;
    await eventually(() => a.e.isLeader(), 5000, "a to lead again");
    expect(a.events).toEqual(["started", "stopped", "started"]);
    // Still its lease: taken back, not a transition.
    expect(spec(proxy)).toMatchObject({ holderIdentity: "a", leaseTransitions: 0 });
    expect(watch.overlaps).toEqual([]);
  });

  test("a leader that is cut off is replaced once its lease expires, after it stopped leading", async () => {
    const proxy = await proxyFor();
    const watch = leaderWatch();
    const dead = { on: false };
    const a = candidate(proxy, watch, "a", { fetch: dyingFetch(dead) });
    a.e.start();
    await eventually(() => a.e.isLeader(), 5000, "a to lead");
    const b = candidate(proxy, watch, "b");
    b.e.start();
    await renewalsPass(a, 3);
    expect(b.e.isLeader()).toBe(false);

    dead.on = true;
    await eventually(() => b.e.isLeader(), 5000, "b to replace a");
    // The order is the safety property: a's term ended before b's began (watch.overlaps).
    expect(a.events).toEqual(["started", "stopped"]);
    expect(b.events).toEqual(["started"]);
    expect(spec(proxy)).toMatchObject({ holderIdentity: "b", leaseTransitions: 1 });
    expect(watch.overlaps).toEqual([]);
  });

  test("expiry is judged by when the elector saw the lease change, not by the holder's renewTime", async () => {
    const proxy = await proxyFor();
    const admin = createKubeClient({ server: proxy.url, namespace: "default", source: "test" });
    // A holder whose last renewal was long ago by its clock, which may be wrong.
    await admin.request("POST", LEASE_URL, {
      body: { metadata: { name: "pai-controller" }, spec: { holderIdentity: "ghost", leaseDurationSeconds: 1, renewTime: microTime(0), acquireTime: microTime(0), leaseTransitions: 4 } },
    });
    const watch = leaderWatch();
    let clock = Date.now();
    const a = candidate(proxy, watch, "a", { now: () => clock });
    a.e.start();
    const gets = () => proxy.requests.filter((r) => r.method === "GET").length;
    await eventually(() => gets() >= 5, 5000, "a few attempts");
    expect(a.e.isLeader()).toBe(false);
    expect(spec(proxy)?.holderIdentity).toBe("ghost");
    clock += 1001;
    await eventually(() => a.e.isLeader(), 5000, "a to take the expired lease");
    expect(spec(proxy)).toMatchObject({ holderIdentity: "a", leaseTransitions: 5 });
  });

  test("two electors racing for an expired lease: exactly one leads", async () => {
    const proxy = await proxyFor();
    const admin = createKubeClient({ server: proxy.url, namespace: "default", source: "test" });
    await admin.request("POST", LEASE_URL, { body: { metadata: { name: "pai-controller" }, spec: { holderIdentity: "ghost", leaseDurationSeconds: 1, leaseTransitions: 2 } } });
    // Both PUTs are held until both are sent, so they carry the same resourceVersion.
    let open!: () => void;
    let gate: Promise<void> | undefined = new Promise<void>((r) => (open = r));
    const held: string[] = [];
    const answers: { id: string; method: string; status: number }[] = [];
    const gated = (id: string): typeof fetch =>
      Object.assign(
        async (input: string | URL | Request, init?: RequestInit) => {
          const method = init?.method ?? "GET";
          if (method === "PUT" && gate) {
            held.push(id);
            await gate;
          }
          const res = await fetch(input, init);
          answers.push({ id, method, status: res.status });
          return res;
        },
        { preconnect: fetch.preconnect },
      );
    const watch = leaderWatch();
    let clock = Date.now();
    const b = candidate(proxy, watch, "b", { fetch: gated("b"), now: () => clock });
    const c = candidate(proxy, watch, "c", { fetch: gated("c"), now: () => clock });
    // Runs before the electors' stop(), which waits for a PUT still held.
    cleanups.push(() => open());
    b.e.start();
    c.e.start();
    const saw = (id: string) => answers.some((x) => x.id === id && x.method === "GET" && x.status === 200);
    await eventually(() => saw("b") && saw("c"), 5000, "both to see the lease");
    clock += 1001;
    await eventually(() => held.length === 2, 5000, "both to try to take the expired lease");
    gate = undefined;
    open();
    await eventually(() => answers.filter((x) => x.method === "PUT").length >= 2, 5000, "both PUTs answered");
    expect(answers.filter((x) => x.method === "PUT").map((x) => x.status).sort()).toEqual([200, 409]);
    const winner = answers.find((x) => x.method === "PUT" && x.status === 200)!.id === "b" ? b : c;
    const loser = winner === b ? c : b;
    await eventually(() => winner.e.isLeader(), 5000, "the winner to lead");
    await renewalsPass(winner, 5);
    expect(loser.e.isLeader()).toBe(false);
    expect(loser.e.stats()).toMatchObject({ acquired: 0, errors: 0 });
    expect(spec(proxy)).toMatchObject({ leaseTransitions: 3 });
    expect(watch.overlaps).toEqual([]);
  });

  test("a renewal that meets a 409 reads the lease again and renews if it is still ours", async () => {
    const proxy = await proxyFor();
    const watch = leaderWatch();
    const a = candidate(proxy, watch, "a");
    a.e.start();
    await eventually(() => a.e.isLeader(), 5000, "a to lead");
    // Someone else writes the lease (a label, say): a's next update carries a stale resourceVersion.
    const current = (await a.client.request<Lease>("GET", `${LEASE_URL}/pai-controller`)) as Lease;
    await a.client.request("PUT", `${LEASE_URL}/pai-controller`, { body: { ...current, metadata: { ...current.metadata, labels: { touched: "yes" } } } });
    await renewalsPass(a, 3);
    expect(a.events).toEqual(["started"]);
    expect(a.e.stats()).toMatchObject({ lost: 0, errors: 0 });
    expect((proxy.leases.get(LEASE) as Lease).metadata.labels).toEqual({ touched: "yes" });
  });

  test("bad settings are refused", () => {
    const client = createKubeClient({ server: "http://127.0.0.1:9", namespace: "default", source: "test" });
    const base = { client, namespace: "default", name: "x", identity: "a", log: createLogger("error", () => {}), onStartedLeading() {}, onStoppedLeading() {} };
    expect(() => createLeaderElector({ ...base, leaseDurationMs: 1000, renewDeadlineMs: 1000 })).toThrow("leaseDuration must be greater than renewDeadline");
    expect(() => createLeaderElector({ ...base, renewDeadlineMs: 2000, retryPeriodMs: 2000 })).toThrow("renewDeadline must be greater");
    expect(() => createLeaderElector({ ...base, identity: "" })).toThrow("identity");
  });
});

describe("the lease proxy", () => {
  test("speaks the Lease protocol with Status errors", async () => {
    const proxy = await proxyFor();
    const client = createKubeClient({ server: proxy.url, namespace: "default", source: "test" });
    const err = async (p: Promise<unknown>) => {
      const e = await p.then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(KubeApiError);
      return e as KubeApiError;
    };
    const raw = await fetch(`${proxy.url}${LEASE_URL}/x`);
    expect(raw.status).toBe(404);
    expect(await raw.json()).toMatchObject({ apiVersion: "v1", kind: "Status", status: "Failure", reason: "NotFound", code: 404, message: 'leases.coordination.k8s.io "x" not found' });

    const created = await client.request<Lease>("POST", LEASE_URL, { body: { metadata: { name: "x" }, spec: { holderIdentity: "h" } } });
    expect(created.metadata).toMatchObject({ name: "x", namespace: "default" });
    expect(created.metadata.uid).toBeString();
    expect(created.metadata.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(created.metadata.resourceVersion).toMatch(/^\d+$/);
    expect(await err(client.request("POST", LEASE_URL, { body: { metadata: { name: "x" } } }))).toMatchObject({ status: 409, reason: "AlreadyExists" });

    const updated = await client.request<Lease>("PUT", `${LEASE_URL}/x`, { body: { ...created, spec: { holderIdentity: "i" } } });
    expect(Number(updated.metadata.resourceVersion)).toBeGreaterThan(Number(created.metadata.resourceVersion));
    expect(updated.metadata.uid).toBe(created.metadata.uid!);
    expect(await err(client.request("PUT", `${LEASE_URL}/x`, { body: { ...created, spec: { holderIdentity: "j" } } }))).toMatchObject({ status: 409, reason: "Conflict" });
    expect(((await client.request<Lease>("GET", `${LEASE_URL}/x`)) as Lease).spec).toEqual({ holderIdentity: "i" });
    expect(await err(client.request("PUT", `${LEASE_URL}/y`, { body: { metadata: { name: "y" } } }))).toMatchObject({ status: 404, reason: "NotFound" });
    expect(await err(client.request("PUT", `${LEASE_URL}/x`, { body: { metadata: { name: "z" } } }))).toMatchObject({ status: 400 });
    expect(await err(client.request("PUT", `${LEASE_URL}/x`, { body: { ...updated, spec: { renewTime: "yesterday" } } }))).toMatchObject({ status: 400 });
    expect(await err(client.request("PUT", `${LEASE_URL}/x`, { body: { ...updated, spec: { leaseDurationSeconds: 0 } } }))).toMatchObject({ status: 422, reason: "Invalid" });

    const list = await client.request<{ kind: string; items: Lease[] }>("GET", LEASE_URL);
    expect(list.kind).toBe("LeaseList");
    expect(list.items.map((l) => l.metadata.name)).toEqual(["x"]);
    await client.request("DELETE", `${LEASE_URL}/x`);
    expect(await err(client.request("GET", `${LEASE_URL}/x`))).toMatchObject({ status: 404, reason: "NotFound" });
    expect(proxy.leases.size).toBe(0);
  });

  /** An upstream that echoes requests and streams a watch whose second event waits for `release`. */
  function startUpstream(tls?: { cert: string; key: string }) {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      ...(tls ? { tls } : {}),
      async fetch(req) {
        const url = new URL(req.url);
        if (url.searchParams.get("watch") === "1") {
          const enc = new TextEncoder();
          return new Response(
            new ReadableStream({
              async start(ctl) {
                ctl.enqueue(enc.encode(`${JSON.stringify({ type: "ADDED", object: { metadata: { name: "one" } } })}\n`));
                await released;
                ctl.enqueue(enc.encode(`${JSON.stringify({ type: "ADDED", object: { metadata: { name: "two" } } })}\n`));
                ctl.close();
              },
            }),
            { headers: { "content-type": "application/json" } },
          );
        }
        if (url.pathname === "/missing") return Response.json({ kind: "Status", apiVersion: "v1", status: "Failure", reason: "NotFound", code: 404, message: "nope" }, { status: 404 });
        return Response.json({ method: req.method, path: url.pathname + url.search, authorization: req.headers.get("authorization"), body: req.method === "GET" ? null : await req.text() });
      },
    });
    cleanups.push(() => server.stop(true));
    return { url: `${tls ? "https" : "http"}://127.0.0.1:${server.port}`, release };
  }

  async function checkForwarding(client: KubeClient, upstream: ReturnType<typeof startUpstream>, proxy: LeaseProxy) {
    expect(await client.request("POST", "/apis/pai.io/v1/namespaces/default/agents", { query: { dryRun: "All" }, body: { a: 1 } })).toEqual({
      method: "POST",
      path: "/apis/pai.io/v1/namespaces/default/agents?dryRun=All",
      authorization: "Bearer t0ken",
      body: '{"a":1}',
    });
    const missing = await client.request("GET", "/missing").catch((e: unknown) => e);
    expect(missing).toMatchObject({ status: 404, reason: "NotFound" });

    // The first event must come through while the upstream still holds the second back.
    const events = client.watch("/api/v1/namespaces/default/secrets", {})[Symbol.asyncIterator]();
    const first = await Promise.race([events.next(), Bun.sleep(5000).then(() => "timeout" as const)]);
    expect(first).not.toBe("timeout");
    expect(first).toMatchObject({ done: false, value: { type: "ADDED", object: { metadata: { name: "one" } } } });
    upstream.release();
    expect(await events.next()).toMatchObject({ done: false, value: { object: { metadata: { name: "two" } } } });
    expect((await events.next()).done).toBe(true);
    expect(proxy.requests).toContainEqual({ method: "GET", path: "/api/v1/namespaces/default/secrets?watch=1" });
  }

  test("forwards everything else to the upstream, streaming", async () => {
    const upstream = startUpstream();
    const proxy = await proxyFor({ upstream: upstream.url });
    const client = createKubeClient({ server: proxy.url, namespace: "default", source: "test", token: () => "t0ken" });
    await checkForwarding(client, upstream, proxy);
  });

  test("over HTTPS, with pai's generated certificates, to an HTTPS upstream", async () => {
    const dir = tempDir("pai-lease-tls-");
    cleanups.push(() => removeDir(dir));
    const tls = await ensureGeneratedTls(join(dir, "tls"), ["127.0.0.1", "localhost"]);
    const upstream = startUpstream({ cert: tls.cert, key: tls.key });
    const proxy = await proxyFor({ upstream: upstream.url, upstreamCa: tls.ca, tls: { cert: tls.cert, key: tls.key } });
    expect(proxy.url).toStartWith("https://127.0.0.1:");
    const client = createKubeClient({ server: proxy.url, ca: tls.ca, namespace: "default", source: "test", token: () => "t0ken" });
    await checkForwarding(client, upstream, proxy);
    await client.request("POST", LEASE_URL, { body: { metadata: { name: "over-tls" } } });
    expect(proxy.leases.has("default/over-tls")).toBe(true);
  });

  test("in front of pai serve --tls: pai's kubeconfig, its server swapped, reaches both", async () => {
    const k = await startKubeServer();
    cleanups.push(() => k.stop());
    const tlsDir = join(k.server.dataDir, "tls");
    const proxy = await proxyFor({
      upstream: k.url,
      upstreamCa: k.ca,
      tls: { cert: await Bun.file(join(tlsDir, "server.crt")).text(), key: await Bun.file(join(tlsDir, "server.key")).text() },
    });
    const client = createKubeClient({ ...kubeconfigConnection(k.kubeconfig), server: proxy.url });
    const discovery = await client.request<{ kind: string }>("GET", "/apis");
    expect(discovery.kind).toBe("APIGroupList");
    const agents = await client.request<{ items: unknown[] }>("GET", "/apis/pai.io/v1/namespaces/default/agents");
    expect(Array.isArray(agents.items)).toBe(true);
    const watch = leaderWatch();
    const events: string[] = [];
    const e = createLeaderElector({
      client,
      namespace: "default",
      name: "pai-controller",
      identity: "solo",
      log: createLogger("error", () => {}),
      ...TIMES,
      onStartedLeading: () => (events.push("started"), watch.started("solo")),
      onStoppedLeading: () => (events.push("stopped"), watch.stopped("solo")),
    });
    cleanups.push(() => e.stop());
    e.start();
    await eventually(() => e.isLeader(), 5000, "to lead through the proxy");
    expect(spec(proxy)?.holderIdentity).toBe("solo");
    await e.stop();
    expect(events).toEqual(["started", "stopped"]);
  });
});
