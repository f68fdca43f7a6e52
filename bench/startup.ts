/** Start-up benchmarks: time from spawn to the first 200 from /readyz, and idle memory, each beside the bare Bun server. */
import { cpSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { freePort, median, memory, mb, ms, msUntilOk, percentile, ratio, serveCommand, spawnChild, type BenchContext, type Report } from "./lib";

const EXAMPLES = resolve(import.meta.dir, "..", "manifests", "examples");
const COLD_START_AIM = 2;
const RSS_AIM = 60 * 1024 * 1024;
const IDLE_MS = 1000;

/** Starts `bin` serving `dataDir`, returns ms until /readyz answered 200, and stops it. */
async function timeStart(ctx: BenchContext, bin: string, dataDir: string): Promise<number> {
  const port = freePort();
  const child = spawnChild(serveCommand(bin, port, dataDir), { cwd: ctx.cwd, env: ctx.env });
  try {
    return await msUntilOk(child, `http://127.0.0.1:${port}/readyz`);
  } finally {
    await child.stop();
  }
}

export async function coldStart(ctx: BenchContext): Promise<Report> {
  const warmDir = ctx.tmp.dir("data-warm");
  const cases = {
    bare: () => timeStart(ctx, ctx.bare, ctx.tmp.dir("data-bare")),
    fresh: () => timeStart(ctx, ctx.pai, join(ctx.tmp.dir("fresh"), ".pai")), // does not exist yet
    warm: () => timeStart(ctx, ctx.pai, warmDir),
  };
  const order = Object.keys(cases) as (keyof typeof cases)[];
  // One untimed start each fills the page cache and makes warmDir an existing data dir.
  for (const c of order) await cases[c]();
  const times: Record<keyof typeof cases, number[]> = { bare: [], fresh: [], warm: [] };
  for (let i = 0; i < ctx.runs; i++)
    for (let j = 0; j < order.length; j++) {
      const c = order[(i + j) % order.length]!; // rotate, so no case always runs right after another
      times[c].push(await cases[c]());
    }

  const bare = { median: median(times.bare), p90: percentile(times.bare, 90) };
  const row = (label: string, t: number[]) => {
    const m = median(t);
    return [label, ms(m), ms(percentile(t, 90)), ms(bare.median), ms(bare.p90), ratio(m, bare.median), m <= COLD_START_AIM * bare.median ? "met" : "MISSED"];
  };
  return {
    title: `Cold start: spawn until the first 200 from GET /readyz (polled every 1 ms), ${ctx.runs} runs each`,
    rows: [
      ["pai serve", "median", "p90", "bare median", "bare p90", "ratio", `aim: within ${COLD_START_AIM}x of bare`],
      row("first start, new data dir", times.fresh),
      row("restart, existing data dir", times.warm),
    ],
  };
}

type Memory = ReturnType<typeof memory>;

/** Starts `bin`, waits until ready (and `check` passed) and IDLE_MS more, and returns its memory. */
async function idleMemoryOnce(ctx: BenchContext, bin: string, extra: string[] = [], check?: (url: string, dataDir: string) => Promise<void>): Promise<Memory> {
  const port = freePort();
  const dataDir = ctx.tmp.dir("data-mem");
  const child = spawnChild(serveCommand(bin, port, dataDir, extra), { cwd: ctx.cwd, env: ctx.env });
  try {
    const url = `http://127.0.0.1:${port}`;
    await msUntilOk(child, `${url}/readyz`);
    await check?.(url, dataDir);
    await Bun.sleep(IDLE_MS);
    return memory(child.pid);
  } finally {
    await child.stop();
  }
}

/** Fails unless the server lists `count` agents. */
const expectAgents = (count: number) => async (url: string, dataDir: string) => {
  const token = readFileSync(join(dataDir, "admin-token"), "utf8").trim();
  const res = await fetch(`${url}/apis/pai.io/v1/agents`, { headers: { authorization: `Bearer ${token}` } });
  const items = res.ok ? ((await res.json()) as { items: unknown[] }).items : [];
  if (items.length !== count) throw new Error(`expected ${count} agents from the manifests folder, the server lists ${items.length} (HTTP ${res.status})`);
};

export async function idleMemory(ctx: BenchContext): Promise<Report> {
  const agents = readdirSync(EXAMPLES).filter((f) => /\.ya?ml$/.test(f)).length; // one agent per example file
  const withAgents = () => {
    const dir = ctx.tmp.dir("manifests");
    cpSync(EXAMPLES, dir, { recursive: true }); // a fresh copy: the server writes status into the files
    return idleMemoryOnce(ctx, ctx.pai, ["--manifests", dir], expectAgents(agents));
  };
  const runs = Math.max(3, Math.ceil(ctx.runs / 5));
  const results: Record<"agents" | "plain" | "bare", Memory[]> = { agents: [], plain: [], bare: [] };
  for (let i = 0; i < runs; i++) {
    results.agents.push(await withAgents());
    results.plain.push(await idleMemoryOnce(ctx, ctx.pai));
    results.bare.push(await idleMemoryOnce(ctx, ctx.bare));
  }
  const pick = (k: keyof typeof results, field: keyof Memory) => median(results[k].map((m) => m[field]));
  const rss = pick("agents", "rss");
  const row = (label: string, field: keyof Memory, verdict: string) => [label, mb(pick("agents", field)), mb(pick("plain", field)), mb(pick("bare", field)), verdict];
  return {
    title: `Memory: ${IDLE_MS} ms after ready, median of ${runs} runs`,
    rows: [
      ["", `pai, ${agents} agents (--manifests)`, "pai, no agents", "bare", `aim: under ${mb(RSS_AIM)}`],
      row("idle RSS (VmRSS)", "rss", rss < RSS_AIM ? "met" : "MISSED"),
      row("peak RSS (VmHWM)", "peak", ""),
    ],
  };
}
