/**
 * `pai serve --kubernetes` benchmark, over real HTTP on loopback. The "cluster" is a `dist/pai
 * serve --tls --no-controller` (pai serves the Kubernetes API of agents and Secrets) with
 * test/fakes/kube-leases.ts in front for coordination.k8s.io Leases, as in
 * test/e2e/kubernetes-mode.test.ts; the replica is `dist/pai serve --kubernetes` with the kubeconfig
 * `dist/pai kubeconfig` made, pointed at that proxy. Every figure stands beside a local-mode
 * `pai serve` (SQLite, no cluster) measured the same way in the same run:
 *
 * 1. Rotation visibility (the issue's aim: a rotation is seen within a second): DELETE the agent's
 *    pai-webhook-<agent> Secret on the API server, then poll every ~5 ms until the replica refuses
 *    the old token (401 on GET, the senders' verification ping, which starts no session) and
 *    accepts the new one, read from the agent's status on the API server. Local baseline: the same
 *    DELETE through the local server's own API, polled the same way. Rotations interleaved.
 * 2. Fire-and-forget webhook accepts/s, with bench/webhooks.ts's load generator and its `parked`
 *    setting (8 session children waiting on a silent model, the rest Pending), on a fresh replica
 *    and a fresh local server per round, rounds alternating: the cache-fed webhook path should
 *    cost nothing next to the SQLite-fed one.
 * 3. Requests the replica sent to the API server during (2), other than watches and Lease calls,
 *    from the proxy's log: the webhook path must not call the API server (expected 0).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { startLeaseProxy, type LeaseProxy } from "../test/fakes/kube-leases";
import { freePort, hangingModel, ms, percentile, serveCommand, spawnChild, type BenchContext, type Child, type Report } from "./lib";
import { CONNECTIONS, DURATION_S, load, ROUNDS, WARMUP_S } from "./webhooks";

const ROTATIONS = 20;
const ROTATION_WARMUP = 2;
const POLL_MS = 5;
const ROTATION_AIM_MS = 1000;
/** The replica's accepts against the local server's, at least: "costs nothing extra" on a noisy 2-core machine. */
const ACCEPT_AIM = 0.9;
const API = "/apis/pai.io/v1/namespaces/default";
/** Shared by every replica, as behind one ingress: a new replica then has no status of its own to write. */
const PUBLIC_URL = "http://pai.bench.invalid";
const NO_PENDING_CAP = ["--max-pending", "100000000"];
const SILENT_MODEL = "anthropic/claude-bench-hold";

// ---- pai servers -------------------------------------------------------------------------------

interface Server {
  child: Child;
  base: string;
  port: number;
  /** Its own API with the admin token (its CA trusted when it serves TLS); throws on an error status unless `allow` lists it. */
  api(path: string, init?: { method?: string; json?: unknown; allow?: number[] }): Promise<{ status: number; body: unknown }>;
}

async function startServe(
  ctx: BenchContext,
  opts: { extra?: string[]; env?: Record<string, string>; tls?: boolean; dataDir?: string } = {},
): Promise<Server & { dataDir: string; ca?: string }> {
  const port = freePort();
  const dataDir = opts.dataDir ?? ctx.tmp.dir("data-kube");
  const child = spawnChild(serveCommand(ctx.pai, port, dataDir, [...(opts.tls ? ["--tls"] : []), ...(opts.extra ?? [])]), {
    cwd: ctx.cwd,
    env: { ...ctx.env, ...opts.env },
  });
  const base = `${opts.tls ? "https" : "http"}://127.0.0.1:${port}`;
  let dead = false;
  child.exited.then(() => (dead = true));
  const deadline = performance.now() + 15_000;
  // The CA is made at start-up, so readiness is polled without it; every call after trusts it.
  for (;;) {
    const res = await fetch(`${base}/readyz`, { tls: { rejectUnauthorized: false }, signal: AbortSignal.timeout(1000) }).catch(() => undefined);
    await res?.arrayBuffer();
    if (res?.status === 200) break;
    if (dead || performance.now() > deadline) {
      await child.stop();
      throw new Error(`${base}: ${dead ? "exited" : "not ready after 15 s"}:\n${child.stderr()}`);
    }
    await Bun.sleep(10);
  }
  const ca = opts.tls ? readFileSync(join(dataDir, "tls", "ca.crt"), "utf8") : undefined;
  const token = readFileSync(join(dataDir, "admin-token"), "utf8").trim();
  const api: Server["api"] = async (path, init = {}) => {
    const method = init.method ?? "GET";
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(init.json !== undefined ? { "content-type": "application/json" } : {}) },
      body: init.json !== undefined ? JSON.stringify(init.json) : undefined,
      signal: AbortSignal.timeout(10_000),
      ...(ca ? { tls: { ca } } : {}),
    });
    const body = (await res.json().catch(() => null)) as unknown;
    if (!res.ok && !init.allow?.includes(res.status)) throw new Error(`${method} ${base}${path}: HTTP ${res.status} ${JSON.stringify(body)}\n${child.stderr()}`);
    return { status: res.status, body };
  };
  return { child, base, port, dataDir, ca, api };
}

const webhookSpec = (models: string[]) => ({ models, triggers: [{ webhook: {} }] });

async function putAgent(server: Server, name: string, spec: Record<string, unknown>): Promise<void> {
  await server.api(`${API}/agents/${name}`, { method: "PUT", json: { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name }, spec } });
}

/** The webhook token in the agent's status on `authority` (the API server, or the local server itself), if any. */
async function statusToken(authority: Server, name: string): Promise<string | undefined> {
  const { body } = await authority.api(`${API}/agents/${name}`);
  const url = (body as { status?: { webhookUrl?: string } }).status?.webhookUrl;
  return url ? new URL(url).pathname.split("/").pop() : undefined;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 10_000, intervalMs = POLL_MS): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms`);
    await Bun.sleep(intervalMs);
  }
}

/** Status of a GET on the agent's webhook URL at `server` (GET: the token is checked, no session starts). */
async function ping(server: Server, name: string, token: string): Promise<number> {
  const res = await fetch(`${server.base}/webhooks/default/${name}/${token}`, { signal: AbortSignal.timeout(5000) });
  await res.arrayBuffer();
  return res.status;
}

// ---- the cluster: API server, lease proxy, kubeconfig -------------------------------------------

interface Cluster {
  apiServer: Server;
  proxy: LeaseProxy;
  kubeconfig: string;
  stop(): Promise<void>;
}

async function startCluster(ctx: BenchContext): Promise<Cluster> {
  const apiServer = await startServe(ctx, { tls: true, extra: ["--no-controller"] });
  let proxy: LeaseProxy | undefined;
  try {
    const tlsDir = join(apiServer.dataDir, "tls");
    proxy = await startLeaseProxy({
      upstream: apiServer.base,
      upstreamCa: apiServer.ca,
      tls: { cert: readFileSync(join(tlsDir, "server.crt"), "utf8"), key: readFileSync(join(tlsDir, "server.key"), "utf8") },
    });
    const token = readFileSync(join(apiServer.dataDir, "admin-token"), "utf8").trim();
    const made = Bun.spawnSync([ctx.pai, "kubeconfig", "--certificate-authority", join(tlsDir, "ca.crt")], {
      cwd: ctx.cwd,
      env: { ...ctx.env, PAI_SERVER: apiServer.base, PAI_TOKEN: token },
      stdout: "pipe",
      stderr: "pipe",
    });
    if (made.exitCode !== 0) throw new Error(`dist/pai kubeconfig exited ${made.exitCode}: ${made.stderr.toString()}`);
    // The kubeconfig pai made, pointed at the proxy (same certificate, CA and token).
    const config = parse(made.stdout.toString()) as { clusters: { cluster: { server: string } }[] };
    config.clusters[0]!.cluster.server = proxy.url;
    const kubeconfig = join(ctx.tmp.dir("kubeconfig"), "kubeconfig");
    writeFileSync(kubeconfig, stringify(config), { mode: 0o600 });
    const p = proxy;
    return {
      apiServer,
      proxy: p,
      kubeconfig,
      async stop() {
        await p.stop();
        await apiServer.child.stop();
      },
    };
  } catch (err) {
    await proxy?.stop();
    await apiServer.child.stop();
    throw err;
  }
}

const startReplica = (ctx: BenchContext, cluster: Cluster, extra: string[] = [], env: Record<string, string> = {}) =>
  startServe(ctx, { extra: ["--kubernetes", "--kubeconfig", cluster.kubeconfig, "--lease-namespace", "pai-system", "--public-url", PUBLIC_URL, ...extra], env });

// ---- 1. rotation visibility --------------------------------------------------------------------

interface RotationTarget {
  /** Where the Secret is deleted and the agent's status read. */
  authority: Server;
  /** Where the webhook is polled. */
  webhooks: Server;
  token: string;
}

/**
 * One rotation: ms from sending the DELETE until a poll saw both the old token refused (401) and
 * the new one (from the status on the authority) accepted (200) on the webhook server.
 */
async function rotate(t: RotationTarget, agent: string): Promise<number> {
  const old = t.token;
  if ((await ping(t.webhooks, agent, old)) !== 200) throw new Error(`rotation: the current token of ${agent} is not accepted on ${t.webhooks.base} before the DELETE`);
  const t0 = performance.now();
  await t.authority.api(`/api/v1/namespaces/default/secrets/pai-webhook-${agent}`, { method: "DELETE" });
  let oldRefused = false;
  let fresh: string | undefined;
  return until(`rotation of ${agent} seen on ${t.webhooks.base}`, async () => {
    if (!oldRefused) oldRefused = (await ping(t.webhooks, agent, old)) === 401;
    if (fresh === undefined) {
      const s = await statusToken(t.authority, agent);
      if (s !== undefined && s !== old) fresh = s;
    }
    if (!oldRefused || fresh === undefined || (await ping(t.webhooks, agent, fresh)) !== 200) return undefined;
    t.token = fresh;
    return performance.now() - t0;
  });
}

// ---- 2 and 3. accepts on the replica and on a local server ---------------------------------------

type Target = "replica" | "local";

interface Round {
  rate: number;
  p50: number;
  p99: number;
  failed: number;
  firstError?: string;
  /** Replica only: what it sent the proxy during the load: watches, Lease calls, and the others (method and path). */
  watches?: number;
  leases?: number;
  other?: string[];
}

const LOAD_AGENT = "load";

async function acceptRound(ctx: BenchContext, cluster: Cluster, target: Target): Promise<Round> {
  const fake = hangingModel();
  const env = { ANTHROPIC_API_KEY: "x", ANTHROPIC_BASE_URL: fake.url };
  let server: Server | undefined;
  try {
    let token: string;
    if (target === "replica") {
      server = await startReplica(ctx, cluster, NO_PENDING_CAP, env);
      token = await until("the load agent's token in its status", () => statusToken(cluster.apiServer, LOAD_AGENT));
    } else {
      server = await startServe(ctx, { extra: NO_PENDING_CAP, env });
      await putAgent(server, LOAD_AGENT, webhookSpec([SILENT_MODEL]));
      token = await until("the load agent's token in its status", () => statusToken(server!, LOAD_AGENT), 10_000, 10);
    }
    const s = server;
    await until(`the load agent's webhook on ${s.base}`, async () => ((await ping(s, LOAD_AGENT, token)) === 200 ? true : undefined));
    const before = cluster.proxy.requests.length;
    const r = await load(`${s.base}/webhooks/default/${LOAD_AGENT}/${token}`, s.port, s.child.pid);
    const during = cluster.proxy.requests.slice(before);
    const failed = Object.values(r.statuses).reduce((a, b) => a + b, 0) + r.errors;
    const round: Round = { rate: r.rate, p50: r.p50, p99: r.p99, failed, firstError: r.firstError };
    if (target === "replica") {
      const isWatch = (q: { path: string }) => /[?&]watch=(1|true)(&|$)/.test(q.path);
      const isLease = (q: { path: string }) => q.path.startsWith("/apis/coordination.k8s.io/");
      round.watches = during.filter(isWatch).length;
      round.leases = during.filter(isLease).length;
      round.other = during.filter((q) => !isWatch(q) && !isLease(q)).map((q) => `${q.method} ${q.path}`);
    }
    return round;
  } finally {
    await server?.child.stop(15_000);
    await fake.stop();
  }
}

// ---- the benchmark -----------------------------------------------------------------------------

export async function kubernetes(ctx: BenchContext): Promise<Report> {
  const cluster = await startCluster(ctx);
  try {
    // Created before any replica runs, so the first one makes both Secrets as it starts leading.
    await putAgent(cluster.apiServer, "rot", webhookSpec(["pai/echo"]));
    await putAgent(cluster.apiServer, LOAD_AGENT, webhookSpec([SILENT_MODEL]));

    // 1. Rotations, interleaved, on a replica and a local server running side by side.
    const rotation: Record<Target, number[]> = { replica: [], local: [] };
    const replica = await startReplica(ctx, cluster);
    const local = await startServe(ctx);
    try {
      await putAgent(local, "rot", webhookSpec(["pai/echo"]));
      const targets: Record<Target, RotationTarget> = {
        replica: { authority: cluster.apiServer, webhooks: replica, token: await until("rot's token on the API server", () => statusToken(cluster.apiServer, "rot")) },
        local: { authority: local, webhooks: local, token: await until("rot's token on the local server", () => statusToken(local, "rot")) },
      };
      await until(`rot's webhook on the replica`, async () => ((await ping(replica, "rot", targets.replica.token)) === 200 ? true : undefined));
      for (let i = 0; i < ROTATION_WARMUP + ROTATIONS; i++)
        for (const t of (i % 2 ? ["local", "replica"] : ["replica", "local"]) as Target[]) {
          const took = await rotate(targets[t], "rot");
          if (i >= ROTATION_WARMUP) rotation[t].push(took);
        }
    } finally {
      await replica.child.stop(15_000);
      await local.child.stop(15_000);
    }

    // 2 and 3. Accept rounds, alternating, each on a fresh server.
    const rounds: Record<Target, Round[]> = { replica: [], local: [] };
    for (let i = 0; i < ROUNDS; i++)
      for (const t of (i % 2 ? ["local", "replica"] : ["replica", "local"]) as Target[]) rounds[t].push(await acceptRound(ctx, cluster, t));

    return report(rotation, rounds);
  } finally {
    await cluster.stop();
  }
}

function report(rotation: Record<"replica" | "local", number[]>, rounds: Record<"replica" | "local", Round[]>): Report {
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const rate = (t: Target) => mean(rounds[t].map((r) => r.rate));
  const each = (t: Target) => rounds[t].map((r) => r.rate.toFixed(0)).join(", ");
  const share = rate("replica") / rate("local");
  const maxRotation = Math.max(...rotation.replica);
  const rotationVerdict = maxRotation < ROTATION_AIM_MS ? "met" : "MISSED";
  const acceptVerdict = share >= ACCEPT_AIM ? "met" : "MISSED";
  const other = rounds.replica.flatMap((r) => r.other ?? []);
  const sum = (f: (r: Round) => number) => rounds.replica.reduce((a, r) => a + f(r), 0);
  const failed = (t: Target) => String(rounds[t].reduce((a, r) => a + r.failed, 0));
  const problems = [...rounds.replica, ...rounds.local].filter((r) => r.failed > 0).map((r) => r.firstError);
  const rot = (p: number) => (t: Target) => ms(percentile(rotation[t], p));
  const row = (figure: string, f: (t: Target) => string, aim = "") => [figure, f("replica"), f("local"), aim];
  return {
    title:
      `pai serve --kubernetes: a replica fed by watches from an API server (dist/pai serve --tls --no-controller, Leases by test/fakes/kube-leases.ts), ` +
      `beside a local-mode dist/pai serve (SQLite, no cluster) measured the same way in the same run`,
    rows: [
      ["figure", "--kubernetes replica", "baseline: local pai serve", "aim"],
      row(`1. rotation seen, p50 (${ROTATIONS} rotations each)`, rot(50)),
      row("1. rotation seen, p90", rot(90)),
      row("1. rotation seen, max", rot(100), `replica max < ${ROTATION_AIM_MS} ms: ${rotationVerdict}`),
      row(`2. webhook 200s/s, mean of ${ROUNDS} rounds`, (t) => `${rate(t).toFixed(0)}/s`, `replica/local = ${(share * 100).toFixed(0)}%, at least ${ACCEPT_AIM * 100}%: ${acceptVerdict}`),
      row("2. 200s/s per round", each),
      row("2. p50 / p99 latency (mean of rounds)", (t) => `${ms(mean(rounds[t].map((r) => r.p50)))} / ${ms(mean(rounds[t].map((r) => r.p99)))}`),
      row("2. non-200 answers and errors", failed),
      ["3. replica → API server requests during (2), not watch or Lease", String(other.length), "(no API server)", `0: ${other.length === 0 ? "met" : "MISSED"}`],
    ],
    notes: [
      `1. Rotation seen: from sending DELETE /api/v1/namespaces/default/secrets/pai-webhook-rot (to the API server; for the baseline, to the local server itself) ` +
        `until one poll finds the old token refused (401) and the new one, read from the agent's status.webhookUrl on the same server, accepted (200) on the ` +
        `server that takes webhooks (GET, the verification ping: no session starts). The first poll goes as soon as the DELETE is answered, then one ` +
        `every ${POLL_MS} ms plus the polls' own round trips, so figures past the first poll are ~${POLL_MS}-10 ms coarse. Rotations interleaved, after ${ROTATION_WARMUP} warm-up rotations each. Aim (the issue): a rotation is seen within a second.`,
      `2. Accepts: fire-and-forget POSTs by bench/load.ts (${CONNECTIONS} keep-alive connections, closed loop, ${WARMUP_S} s warm-up, ${DURATION_S} s counted) — ` +
        `bench/webhooks.ts's \`parked\` setting: default --max-sessions 8, an agent on a silent model (8 children parked, the rest Pending), ` +
        `${NO_PENDING_CAP.join(" ")}. A fresh server per round, replica and local alternating. Aim: the cache-fed webhook path (agent and token from ` +
        `watch-fed caches) costs nothing next to the local one; ${ACCEPT_AIM * 100}% allows for this noisy machine.`,
      `3. From the lease proxy's log, over the ${ROUNDS} replica load runs (warm-up, window and drain): ${sum((r) => r.leases ?? 0)} Lease calls ` +
        `(renewals), ${sum((r) => r.watches ?? 0)} watches opened, ${other.length} other requests (aim 0: the webhook path reads only the caches).` +
        (other.length ? ` The others: ${[...new Set(other)].slice(0, 10).join("; ")}` : ""),
      ...(problems.length ? [`First failure: ${problems[0]}`] : []),
    ],
  };
}
