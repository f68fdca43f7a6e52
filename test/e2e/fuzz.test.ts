/**
 * A seeded, time-bounded fuzz test (fast-check) of one real server: batches of a few concurrent
 * requests against the webhook routes and the management API, from test/fuzz/cases.ts. It asserts:
 *
 *  1. no 5xx, ever (a 503 with Retry-After that says nothing was accepted is the documented
 *     back-pressure: counted apart, and a failure too, since the load here is light);
 *  2. nothing acknowledged is lost: every 200 from POST /webhooks/… that names a `session` has that
 *     session in the store at once (GET /agents/{session}), a POST 200 without a session is only
 *     GitHub's ping, and a repeated delivery id gets the session it started;
 *  3. /readyz keeps answering meanwhile: polled from a Worker, its worst latency is printed and
 *     bounded generously (READYZ_BOUND_MS; shared machines are noisy);
 *
 * and, because they are cheap to check on the way: no webhook 2xx without the agent's URL token,
 * no management 2xx without a token that may have it, and every session acknowledged on a fixed
 * (pai/echo) agent ends.
 *
 * Reproduce a run with FUZZ_SEED=<seed> (printed); FUZZ_RUNS and FUZZ_TIME_LIMIT_MS change its
 * size. (Not PAI_FUZZ_SEED: test/preload.ts removes every PAI_* variable before the test runs.)
 * FUZZ_DEBUG=1 prints how many requests of each kind got which status; FUZZ_DEBUG=<text> also
 * prints the answers whose "kind method target → status" line contains <text>.
 * All traffic goes to the server on 127.0.0.1; callback URLs are only ever ones it must refuse.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import fc from "fast-check";
import { eventually, startServer, type TestServer } from "../helpers";
import {
  batchArb,
  clip,
  deliveryIdOf,
  describeRequest,
  FIXED,
  FIXED_KEYS,
  GITHUB_SECRET,
  HOOKED_KEYS,
  materialise,
  MAX_BODY,
  webhookTarget,
  type Case,
  type Ctx,
  type Materialised,
} from "../fuzz/cases";
import type { ReadyzReport } from "../fuzz/readyz-poller";

const SEED = Number(process.env.FUZZ_SEED ?? 1_318_713_205);
const RUNS = Number(process.env.FUZZ_RUNS ?? 1000);
/** fast-check stops starting new batches (and shrinking) after this; what ran still counts. */
const TIME_LIMIT_MS = Number(process.env.FUZZ_TIME_LIMIT_MS ?? 30_000);
/** A request with no answer after this is a hang (no generated request waits more than 1 s by design). */
const REQUEST_TIMEOUT_MS = 10_000;
/** The stalls this guards against held /readyz for 6–10 s; normal answers take milliseconds. */
const READYZ_BOUND_MS = 2_000;
const FINAL_PHASES = ["Complete", "Error", "Cancelled"];

let server: TestServer;
let ctx: Ctx;

interface Ack {
  ns: string;
  session: string;
  /** The session belongs to one of the fixed pai/echo agents: it must end. */
  fixed: boolean;
}

const stats = {
  requests: 0,
  byStatus: new Map<string, number>(),
  clientRefused: 0,
  oversizeCut: 0,
  documented503: [] as string[],
  misconfigured503: [] as string[],
  /** Error answers that are not a Status object with a message (the README's promise); reported, not failed. */
  notStatus: [] as string[],
  sessionsAcked: 0,
  deliveriesRepeated: 0,
};
const acks: Ack[] = [];
const deliveries = new Map<string, string>();
const violations: string[] = [];
const debugCounts = new Map<string, number>();
/** The last requests answered, newest last: when the server dies, the one that killed it is among them. */
const recent: string[] = [];
let recentAtDeath: string[] | undefined;
/** The last requests that started a session: a crash while starting one follows its 200. */
const recentAcks: string[] = [];
let recentAcksAtDeath: string[] | undefined;
const died = () => server.proc.exitCode !== null || server.proc.signalCode !== null;

const count = (key: string) => stats.byStatus.set(key, (stats.byStatus.get(key) ?? 0) + 1);

async function applyAgent(ns: string, name: string, spec: unknown) {
  const res = await server.api(`/apis/pai.io/v1/namespaces/${ns}/agents/${name}`, {
    method: "PUT",
    json: { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name }, spec },
  });
  expect(res.status).toBeLessThan(300);
}

async function webhookToken(ns: string, name: string): Promise<string> {
  return eventually(async () => {
    const a = (await (await server.api(`/apis/pai.io/v1/namespaces/${ns}/agents/${name}`)).json()) as { status: { webhookUrl?: string } };
    return a.status.webhookUrl?.split("/").pop();
  }, 5000, `webhook URL of ${ns}/${name}`);
}

beforeAll(async () => {
  server = await startServer({
    args: ["--max-body-bytes", String(MAX_BODY)],
    // No model keys: sessions of fuzzed agents with anthropic/ or openai/ models fail at once, and
    // the base URLs point at a closed loopback port in case a key turns up.
    env: { ANTHROPIC_BASE_URL: "http://127.0.0.1:9", OPENAI_BASE_URL: "http://127.0.0.1:9" },
  });
  const secret = await server.api("/api/v1/namespaces/default/secrets/fz-gh", { method: "PUT", json: { stringData: { secret: GITHUB_SECRET } } });
  expect(secret.status).toBeLessThan(300);
  for (const key of FIXED_KEYS) await applyAgent(FIXED[key].ns, FIXED[key].name, FIXED[key].spec);
  const tokens: Record<string, string> = {};
  for (const key of HOOKED_KEYS) tokens[key] = await webhookToken(FIXED[key].ns, FIXED[key].name);
  const nsToken = (await (await server.api("/apis/pai.io/v1/namespaces/team-b/accesstokens", { method: "POST", json: { metadata: { name: "fuzz" } } })).json()) as { token: string };
  ctx = { url: server.url, adminToken: server.token, nsToken: nsToken.token, tokens, mutableTokens: {}, acked: [] };
});

afterAll(async () => {
  await server?.stop();
});

/** A failed expectation: recorded (so a report lists all of them) and thrown (so fast-check sees it). */
function violation(kind: string, m: Materialised, detail: string): never {
  const text = `${kind}: ${detail}\n${describeRequest(m)}`;
  violations.push(text);
  throw new Error(text);
}

async function storedSession(ns: string, session: string): Promise<{ status: number; body: { session?: string; agentDefinition?: string; phase?: string; error?: string | null } }> {
  const res = await server.api(`/agents/${encodeURIComponent(session)}?namespace=${encodeURIComponent(ns)}`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const text = await res.text();
  let body = {};
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.status, body };
}

const isFixed = (ns: string, name: string) => FIXED_KEYS.some((k) => FIXED[k].ns === ns && FIXED[k].name === name && k !== "nohook");

/** Checks one answer; throws (through `violation`) on anything the properties forbid. */
async function check(c: Case, m: Materialised, res: Response, text: string) {
  const status = res.status;
  let json: Record<string, unknown> | undefined;
  try {
    const v = JSON.parse(text);
    if (v && typeof v === "object") json = v;
  } catch {}
  const answer = `→ ${status} ${clip(text, 300)}`;

  // 1. Never a 5xx; the documented back-pressure 503 is counted apart.
  if (status >= 500) {
    const message = typeof json?.message === "string" ? json.message : "";
    if (status === 503 && res.headers.get("retry-after") && /nothing was accepted/i.test(message)) {
      stats.documented503.push(`${describeRequest(m)}\n${answer}`);
      return;
    }
    // An agent the fuzzer applied may name a signing Secret that does not exist: the server says
    // its owner must fix it. Counted and reported; never expected of the fixed agents.
    if (status === 503 && c.kind === "webhook" && webhookTarget(c).mutable && /signing secret is not configured/.test(message)) {
      stats.misconfigured503.push(`${m.method} ${clip(m.url, 120)} ${answer}`);
      return;
    }
    violation("5xx", m, answer);
  }
  if (status >= 400 && !(json?.kind === "Status" && typeof json.message === "string")) stats.notStatus.push(`${m.method} ${clip(m.url, 120)} ${answer}`);

  if (c.kind === "webhook") {
    const target = webhookTarget(c);
    if (status >= 200 && status < 300 && !(c.token === "right" && (target.hooked || target.mutable)))
      violation("webhook 2xx without the agent's URL token", m, `token=${c.token} agent=${JSON.stringify(c.agent)} ${answer}`);
    if (m.method !== "POST" || status !== 200) return;
    // 2. A 200 names a session that is in the store now, or it is GitHub's ping.
    if (typeof json?.session !== "string") {
      const ping = m.headers["x-github-event"]?.trim().toLowerCase() === "ping";
      if (!(ping && json?.ok === true)) violation("webhook 200 without a session", m, answer);
      return;
    }
    const session = json.session;
    const stored = await storedSession(target.ns, session);
    if (stored.status !== 200 || stored.body.session !== session)
      violation("acknowledged session not in the store", m, `${answer}\nGET /agents/${session}?namespace=${target.ns} → ${stored.status} ${clip(JSON.stringify(stored.body), 300)}`);
    if (json.agentDefinition !== target.name) violation("webhook 200 names another agent", m, answer);
    acks.push({ ns: target.ns, session, fixed: !target.mutable });
    recentAcks.push(`${describeRequest(m)}\n  ${answer}`);
    if (recentAcks.length > 6) recentAcks.shift();
    ctx.acked.push({ ns: target.ns, session });
    stats.sessionsAcked++;
    // A delivery id seen before gets the session it started (also when the two were concurrent).
    // Only for the fixed agents: the fuzzer deletes and re-creates its own ones meanwhile.
    const delivery = target.mutable ? undefined : deliveryIdOf(m.headers);
    if (delivery !== undefined) {
      const key = `${target.ns}/${target.name}/${delivery}`;
      const first = deliveries.get(key);
      if (first === undefined) deliveries.set(key, session);
      else {
        stats.deliveriesRepeated++;
        if (first !== session) violation("repeated delivery started a second session", m, `delivery ${JSON.stringify(delivery)} first started ${first}, now ${session}`);
      }
    }
    return;
  }

  // Management API: no data without a token that may have it.
  const r = c.route;
  if (status >= 200 && status < 300 && json) learnTokens(json);
  const open = r.r === "misc" && m.url.slice(ctx.url.length) !== "/metrics";
  const ok = status >= 200 && status < 300;
  if (ok && !open && ["none", "wrong", "malformed", "basic"].includes(c.auth)) violation("management 2xx without a valid token", m, answer);
  // The namespace token (team-b's) reads team-b's agents (GET), nothing else of these.
  const ownAgents = r.r === "agents" && m.method === "GET" && new URL(m.url).pathname.startsWith("/apis/pai.io/v1/namespaces/team-b/agents");
  const adminOnly = ["agents", "all-agents", "secrets", "all-secrets", "tokens"].includes(r.r) && !ownAgents;
  if (ok && c.auth === "ns-token" && adminOnly) violation("admin-only route answered a namespace token", m, answer);
  // A session the API says it started is in the store too.
  if (r.r === "sessions" && m.method === "POST" && status === 201 && typeof json?.session === "string") {
    const ns = typeof json.namespace === "string" ? json.namespace : "default";
    const stored = await storedSession(ns, json.session);
    if (stored.status !== 200) violation("session started by the API not in the store", m, `${answer}\nGET → ${stored.status}`);
    acks.push({ ns, session: json.session, fixed: isFixed(ns, String(json.agentDefinition)) });
    ctx.acked.push({ ns, session: json.session });
  }
}

/** Notes the webhook tokens of the fuzzer's own agents (fz-m*) from any Agent or AgentList answer. */
function learnTokens(json: Record<string, unknown>) {
  const agents = Array.isArray(json.items) ? (json.items as Record<string, any>[]) : json.kind === "Agent" ? [json as Record<string, any>] : [];
  for (const a of agents) {
    const name = a?.metadata?.name;
    const ns = a?.metadata?.namespace;
    if (typeof name !== "string" || typeof ns !== "string" || !/^fz-m\d$/.test(name)) continue;
    const token = typeof a.status?.webhookUrl === "string" ? a.status.webhookUrl.split("/").pop() : undefined;
    if (token) ctx.mutableTokens[`${ns}/${name}`] = token;
  }
}

async function send(c: Case) {
  const m = materialise(c, ctx);
  let request: Request;
  try {
    request = new Request(m.url, { method: m.method, headers: m.headers, body: m.body as BodyInit | undefined });
  } catch {
    stats.clientRefused++; // a header value or URL fetch itself will not send
    return;
  }
  stats.requests++;
  let res: Response;
  let text: string;
  const signal = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
  try {
    res = await fetch(request, { signal });
    // A stream of a session still running would go on; its status is all that is checked.
    if (c.kind === "mgmt" && c.route.r === "session" && c.route.sub === "/stream" && res.status === 200) {
      await res.body?.cancel();
      text = "";
    } else text = await res.text();
  } catch (err) {
    const e = err as Error;
    if (signal.aborted) violation("no answer (hang)", m, `nothing within ${REQUEST_TIMEOUT_MS} ms`);
    // A body over the limit may be cut off by the server before it was all sent: the client then
    // sees the connection end instead of the 413. Counted; nothing was accepted either way.
    if (m.bodyBytes > MAX_BODY) {
      stats.oversizeCut++;
      return;
    }
    // Did the server die? Its exit may take a moment to be seen.
    await Promise.race([server.proc.exited, Bun.sleep(200)]);
    if (died()) {
      recentAtDeath ??= [...recent];
      recentAcksAtDeath ??= [...recentAcks];
      throw new Error(`the server died (exit ${server.proc.exitCode ?? server.proc.signalCode})`);
    }
    violation("connection failed", m, `${e.name}: ${e.message}`);
  }
  count(`${c.kind} ${res.status}`);
  recent.push(`${describeRequest(m)}\n  → ${res.status} ${clip(text, 200)}`);
  if (recent.length > 8) recent.shift();
  if (process.env.FUZZ_DEBUG) {
    const what = c.kind === "mgmt" ? `${c.route.r} ${c.auth}` : `${typeof c.agent === "string" ? c.agent : "mutable" in c.agent ? "mutable" : "unknown"} ${c.token} ${c.path} ${c.body.t}`;
    const key = `${c.kind} ${m.method} ${what} → ${res.status}`;
    debugCounts.set(key, (debugCounts.get(key) ?? 0) + 1);
    if (process.env.FUZZ_DEBUG.length > 1 && key.includes(process.env.FUZZ_DEBUG)) console.log(`${key}: ${clip(text, 700)}`);
  }
  await check(c, m, res, text);
}

async function runBatch(batch: Case[]) {
  if (died()) throw new Error(`the server died (exit ${server.proc.exitCode ?? server.proc.signalCode})`);
  const results = await Promise.allSettled(batch.map(send));
  if (died()) {
    recentAtDeath ??= [...recent];
    recentAcksAtDeath ??= [...recentAcks];
  }
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}

test(
  "fuzz: webhooks and the management API never 5xx, never lose an acknowledged session, and /readyz keeps answering",
  async () => {
    const poller = new Worker(new URL("../fuzz/readyz-poller.ts", import.meta.url).href);
    const reports = new Promise<ReadyzReport>((resolve) => {
      poller.onmessage = (e: MessageEvent) => {
        if (e.data?.report) resolve(e.data.report as ReadyzReport);
      };
    });
    poller.postMessage({ start: server.url });

    const started = performance.now();
    console.log(`fuzz: seed ${SEED} (FUZZ_SEED=${SEED} reproduces), up to ${RUNS} batches of 1–6 requests, at most ${TIME_LIMIT_MS / 1000} s`);
    const details = await fc.check(fc.asyncProperty(batchArb, runBatch), {
      seed: SEED,
      numRuns: RUNS,
      plugins: [fc.interruptAfterTimeLimit(TIME_LIMIT_MS)],
    });
    const fuzzMs = performance.now() - started;

    // Everything acknowledged is still there, and the sessions of the fixed pai/echo agents end
    // (checked while the server lives; a dead server is reported below).
    const missing: string[] = [];
    for (let i = 0; i < acks.length && !died(); i += 16) {
      await Promise.all(
        acks.slice(i, i + 16).map(async (a) => {
          const s = await storedSession(a.ns, a.session);
          if (s.status !== 200) missing.push(`${a.ns}/${a.session}: ${s.status}`);
        }),
      );
    }
    let open = acks.filter((a) => a.fixed);
    /** Acknowledged sessions of the fixed agents that ended Error because they could not start: reported, not failed. */
    const notStarted: string[] = [];
    const settleBy = Date.now() + 15_000;
    while (open.length && Date.now() < settleBy && !died()) {
      const bodies = await Promise.all(open.slice(0, 64).map(async (a) => (await storedSession(a.ns, a.session)).body));
      bodies.forEach((b, i) => {
        if (b.phase === "Error" && /failed to start/i.test(b.error ?? "")) notStarted.push(`${open[i]!.ns}/${open[i]!.session}: ${clip(b.error!, 200)}`);
      });
      open = open.filter((_, i) => i >= 64 || !FINAL_PHASES.includes(bodies[i]!.phase ?? "?"));
      if (open.length) await Bun.sleep(100);
    }

    poller.postMessage({ stop: true });
    const readyz = await reports;
    poller.terminate();

    const errorLines = server.logs().split("\n").filter((l) => / ERROR /.test(l));
    const statuses = [...stats.byStatus.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}: ${v}`).join(", ");
    console.log(
      [
        `fuzz: seed ${SEED}: ${details.numRuns} batches (${details.interrupted ? "stopped by the time limit" : "all"}), ${stats.requests} requests in ${(fuzzMs / 1000).toFixed(1)} s` +
          `${details.failed ? `, failed after ${details.numShrinks} shrinks` : ""}`,
        `  answers: ${statuses}`,
        `  sessions acknowledged: ${acks.length} (${stats.sessionsAcked} by webhooks; ${stats.deliveriesRepeated} repeated deliveries got their first session)`,
        `  not sent (fetch refused the header/URL): ${stats.clientRefused}; oversize bodies cut off by the server: ${stats.oversizeCut}`,
        `  documented 503 back-pressure answers: ${stats.documented503.length}; 503 for a fuzzed agent whose signing Secret is missing: ${stats.misconfigured503.length}`,
        `  /readyz: ${readyz.polls} polls, worst ${readyz.worstMs} ms (at ${(readyz.worstAtMs / 1000).toFixed(1)} s), p99 ${readyz.p99Ms} ms, ${readyz.failures.length} not 200`,
        `  error answers that are not a Status object: ${stats.notStatus.length}${stats.notStatus.length ? `, e.g.\n    ${stats.notStatus.slice(0, 3).join("\n    ")}` : ""}`,
        `  acknowledged sessions of the fixed agents that ended Error without starting: ${notStarted.length}${notStarted.length ? `, e.g.\n    ${notStarted.slice(0, 3).join("\n    ")}` : ""}`,
        `  server ERROR log lines: ${errorLines.length}${errorLines.length ? `, e.g.\n    ${[...new Set(errorLines.map((l) => clip(l.replace(/^\S+ /, ""), 300)))].slice(0, 5).join("\n    ")}` : ""}`,
      ].join("\n"),
    );

    if (process.env.FUZZ_DEBUG) console.log([...debugCounts.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${v}\t${k}`).join("\n"));
    if (died()) {
      throw new Error(
        [
          `fuzz failed: seed ${SEED}: the server process died (exit ${server.proc.exitCode ?? server.proc.signalCode}) (FUZZ_SEED=${SEED} reproduces)`,
          `its log ends:\n${server.logs().slice(-2500)}`,
          `the last webhook requests that started a session before it died (a crash while starting one comes after its 200):\n${(recentAcksAtDeath ?? recentAcks).join("\n---\n")}`,
          `the last requests it answered:\n${(recentAtDeath ?? recent).slice(-4).join("\n---\n")}`,
        ].join("\n\n"),
      );
    }
    if (details.failed) {
      const counterexample = (details.counterexample as [Case[]] | null)?.[0]?.map((c) => {
        try {
          return describeRequest(materialise(c, ctx));
        } catch {
          return JSON.stringify(c).slice(0, 500);
        }
      });
      throw new Error(
        [
          `fuzz failed: seed ${SEED}, path ${JSON.stringify(details.counterexamplePath)} (FUZZ_SEED=${SEED} reproduces)`,
          `${details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)}`,
          counterexample ? `smallest batch found (${counterexample.length} concurrent requests):\n${counterexample.join("\n---\n")}` : "",
          violations.length ? `the first violation seen, before shrinking (${violations.length} in all, shrinking included):\n${violations[0]}` : "",
        ].join("\n\n"),
      );
    }
    expect(violations).toEqual([]);
    expect(stats.documented503).toEqual([]); // light load: back-pressure has no reason to appear
    expect(missing).toEqual([]);
    expect(open.map((a) => `${a.ns}/${a.session}`)).toEqual([]);
    expect(readyz.failures).toEqual([]);
    expect(readyz.worstMs).toBeLessThan(READYZ_BOUND_MS);
    // The run did something: enough requests, and sessions acknowledged and checked.
    expect(stats.requests).toBeGreaterThan(200);
    expect(acks.length).toBeGreaterThan(20);
  },
  90_000,
);
