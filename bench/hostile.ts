/**
 * Hostile traffic against `dist/pai serve`, each case beside a well-behaved baseline on the same
 * fresh server in the same run:
 *
 * 1. 400 concurrent 1 MiB POSTs to an unknown agent (no valid URL, so the body is never read)
 *    beside 400 concurrent small valid deliveries: server RSS growth, and every answer's status.
 * 2. 40 KB bodies of brackets nested 20,000 deep, sent 50 times, beside 50 flat 40 KB bodies:
 *    time to answer and /readyz latency while they are sent.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, mb, memory, ms, msUntilOk, percentile, serveCommand, spawnChild, type BenchContext, type Report } from "./lib";

const FLOOD = 400;
const BIG = 1024 * 1024;
const DEEP_RUNS = 50;

async function startPai(ctx: BenchContext) {
  const port = freePort();
  const dataDir = ctx.tmp.dir("data-hostile");
  const child = spawnChild(serveCommand(ctx.pai, port, dataDir), { cwd: ctx.cwd, env: ctx.env });
  const base = `http://127.0.0.1:${port}`;
  await msUntilOk(child, `${base}/readyz`);
  const token = readFileSync(join(dataDir, "admin-token"), "utf8").trim();
  const api = (path: string, init: RequestInit = {}) => fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...init.headers } });
  await api("/apis/pai.io/v1/namespaces/default/agents/target", {
    method: "PUT",
    body: JSON.stringify({ apiVersion: "pai.io/v1", kind: "Agent", metadata: { name: "target" }, spec: { models: ["pai/echo"], triggers: [{ webhook: {} }] } }),
  });
  let url: string | undefined;
  for (let i = 0; i < 500 && !url; i++) {
    const agent = (await (await api("/apis/pai.io/v1/namespaces/default/agents/target")).json()) as { status?: { webhookUrl?: string } };
    url = agent.status?.webhookUrl?.replace(/^http:\/\/localhost:\d+/, base);
    if (!url) await Bun.sleep(10);
  }
  if (!url) throw new Error("no webhook URL");
  return { child, base, url };
}

/** Sends `n` POSTs at once; returns the statuses counted and the server's RSS before and at its peak. */
async function flood(pid: number, url: string, body: BodyInit, n: number) {
  await Bun.sleep(300);
  const before = memory(pid).rss;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, memory(pid).rss)), 10);
  const statuses: Record<string, number> = {};
  await Promise.all(
    Array.from({ length: n }, () =>
      fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body })
        .then((r) => r.arrayBuffer().then(() => String(r.status)))
        .catch(() => "error")
        .then((s) => (statuses[s] = (statuses[s] ?? 0) + 1)),
    ),
  );
  clearInterval(sampler);
  peak = Math.max(peak, memory(pid).rss);
  return { before, peak, statuses };
}

/** Sends `bodies` one after another while /readyz is polled; returns answer times and the worst /readyz. */
async function timed(base: string, url: string, bodies: string[]) {
  let polling = true;
  const readyz: number[] = [];
  const poller = (async () => {
    while (polling) {
      const t0 = performance.now();
      await fetch(`${base}/readyz`).then((r) => r.arrayBuffer());
      readyz.push(performance.now() - t0);
      await Bun.sleep(5);
    }
  })();
  const times: number[] = [];
  const statuses: Record<string, number> = {};
  for (const body of bodies) {
    const t0 = performance.now();
    const r = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
    await r.arrayBuffer();
    times.push(performance.now() - t0);
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  }
  polling = false;
  await poller;
  return { times, readyz, statuses };
}

const show = (statuses: Record<string, number>) => Object.entries(statuses).map(([k, v]) => `${v}× ${k}`).join(", ");

export async function hostileTraffic(ctx: BenchContext): Promise<Report> {
  const server = await startPai(ctx);
  try {
    const unknown = `${server.base}/webhooks/default/nobody/${"0".repeat(64)}`;
    const small = await flood(server.child.pid, server.url, JSON.stringify({ title: "hello" }), FLOOD);
    const big = await flood(server.child.pid, unknown, new Uint8Array(BIG), FLOOD);
    const deepBody = "[".repeat(20_000) + "]".repeat(20_000);
    const flatBody = JSON.stringify({ title: "flat", data: "x".repeat(deepBody.length - 30) });
    const flat = await timed(server.base, server.url, Array(DEEP_RUNS).fill(flatBody));
    const deep = await timed(server.base, server.url, Array(DEEP_RUNS).fill(deepBody));
    const grow = (r: { before: number; peak: number }) => `+${mb(r.peak - r.before)} (${mb(r.before)} → ${mb(r.peak)})`;
    return {
      title: `Hostile traffic against dist/pai serve (one fresh server, cases in this order): ${FLOOD} concurrent POSTs, then ${DEEP_RUNS} sequential 40 KB bodies while /readyz is polled`,
      rows: [
        ["case", "answers", "server RSS growth (peak)", "answer p50 / max", "/readyz p50 / max meanwhile"],
        [`baseline: ${FLOOD} small valid deliveries`, show(small.statuses), grow(small), "", ""],
        [`${FLOOD} × 1 MiB to an unknown agent`, show(big.statuses), grow(big), "", ""],
        [`baseline: ${DEEP_RUNS} flat 40 KB bodies`, show(flat.statuses), "", `${ms(percentile(flat.times, 50))} / ${ms(Math.max(...flat.times))}`, `${ms(percentile(flat.readyz, 50))} / ${ms(Math.max(...flat.readyz))}`],
        [`${DEEP_RUNS} × 40 KB nested 20,000 deep`, show(deep.statuses), "", `${ms(percentile(deep.times, 50))} / ${ms(Math.max(...deep.times))}`, `${ms(percentile(deep.readyz, 50))} / ${ms(Math.max(...deep.readyz))}`],
      ],
      notes: [
        "An unknown agent's bodies are never read (the URL is checked first), so they cost the server no memory; a body nested deeper than 64 levels is refused before it is parsed.",
      ],
    };
  } finally {
    await server.child.stop(10_000);
  }
}
