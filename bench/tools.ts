/**
 * Tool benchmarks, on `dist/pai harness` spawned as the supervisor spawns it (IPC start message),
 * against the fake model server (test/fakes/model-server.ts, the real Anthropic wire format):
 *
 * 1. Time per tool turn: a session of 10 turns that each call `bash` with `true`, then a final
 *    answer, minus a session of the same agent that answers at once, divided by 10; with the
 *    sandbox (bubblewrap) and without (PATH without bwrap, --allow-unsandboxed-tools), beside bare
 *    spawns of `bash -c true` and of the same command under the same bwrap arguments, all
 *    interleaved in the same run.
 * 2. The harness's memory with one stdio MCP server connected (test/fixtures/mcp/stdio-server.ts,
 *    run by this Bun), beside the same harness with none, both measured while their first model
 *    call waits.
 */
import { symlinkSync } from "node:fs";
import { join } from "node:path";
import { childEnv as sessionChildEnv } from "../src/supervisor/env";
import { EventType } from "../src/domain/session";
import type { HarnessMessage, StartMessage } from "../src/harness/protocol";
import { createSandbox } from "../src/harness/sandbox";
import { callTools, startModelServer, type FakeModelServer } from "../test/fakes/model-server";
import { mb, median, memory, ms, track, type BenchContext, type Report } from "./lib";

const TURNS = 10;
const ROUNDS = 15;
const WARMUP = 2;
const HAVE_BWRAP = Bun.which("bwrap") !== null;

interface HarnessRun {
  ms: number;
  result?: HarnessMessage;
  events: { type: string; content: any }[];
}

/** A PATH with bash and nothing else of /usr/bin: createSandbox finds no bwrap there. */
function pathWithoutBwrap(ctx: BenchContext): string {
  const bin = ctx.tmp.dir("bin-no-bwrap");
  for (const tool of ["bash", "true", "sh"]) {
    const real = Bun.which(tool);
    if (real) symlinkSync(real, join(bin, tool));
  }
  return bin;
}

function startMessage(model: FakeModelServer, spec: StartMessage["spec"], tools: Partial<StartMessage["tools"]> = {}): StartMessage {
  return {
    type: "start",
    session: { name: "bench-run-00000001", namespace: "default", title: "go", origin: {}, hasPayload: false },
    spec,
    credentials: { ANTHROPIC_API_KEY: "sk-bench", ANTHROPIC_BASE_URL: model.anthropicBaseUrl },
    tools: { allowUnsandboxed: false, allowPrivateFetch: false, hidden: [], ...tools },
  };
}

/** A harness child spawned as the supervisor spawns it (IPC, json, stderr piped), in a folder of its own, given `start`. */
function spawnHarness(ctx: BenchContext, start: StartMessage, env: Record<string, string>, onMessage: (m: HarnessMessage) => void) {
  const proc = Bun.spawn([ctx.pai, "harness"], {
    cwd: ctx.tmp.dir("session"),
    env,
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
    serialization: "json",
    ipc: onMessage,
  });
  proc.send(start);
  return proc;
}

/** One harness child, from spawn to exit. */
async function runHarness(ctx: BenchContext, start: StartMessage, env: Record<string, string>): Promise<HarnessRun> {
  const events: HarnessRun["events"] = [];
  let result: HarnessMessage | undefined;
  const t0 = performance.now();
  const proc = spawnHarness(ctx, start, env, (m) => {
    if (m.type === "event") events.push(m.event);
    else result = m;
  });
  const stderr = new Response(proc.stderr).text();
  const code = await track(proc);
  const took = performance.now() - t0;
  if (result?.type !== "result" || result.phase !== "Complete")
    throw new Error(`pai harness exited ${code} without a Complete result: ${JSON.stringify(result)} ${JSON.stringify(events.slice(-3))}\n${await stderr}`);
  return { ms: took, result, events };
}

async function bareSpawn(argv: string[], cwd: string): Promise<number> {
  const t0 = performance.now();
  const proc = Bun.spawn(argv, { cwd, stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  const code = await proc.exited;
  if (code !== 0) throw new Error(`${argv.join(" ")} exited ${code}`);
  return performance.now() - t0;
}

export async function toolTurns(ctx: BenchContext): Promise<Report> {
  if (!HAVE_BWRAP) return { title: "Tool turns: SKIPPED (bubblewrap is not installed: apt-get install bubblewrap)", rows: [["case"], ["skipped"]] };
  const model = startModelServer();
  // Each request: call bash `true` until TURNS results came back, then answer.
  model.script((_m, req) => {
    const results = req.conversation.filter((m) => m.role === "user" && m.content.some((b) => b.type === "tool_result")).length;
    const wanted = req.system === "tools" ? TURNS : 0;
    return results < wanted ? callTools([{ name: "bash", input: { command: "true" } }]) : { text: "done" };
  });
  const noBwrap = pathWithoutBwrap(ctx);
  const envSandboxed = sessionChildEnv(ctx.env);
  const envPlain = { ...envSandboxed, PATH: noBwrap };
  const spec = (system: string): StartMessage["spec"] => ({ models: ["anthropic/claude-bench"], system, tools: ["bash"], maxTurns: TURNS + 1 });
  const sandbox = createSandbox({ cwd: ctx.cwd, hidden: [ctx.tmp.root], network: true, allowUnsandboxed: false });
  const cases = {
    sandboxedTools: () => runHarness(ctx, startMessage(model, spec("tools"), { hidden: [ctx.tmp.root] }), envSandboxed),
    sandboxedNone: () => runHarness(ctx, startMessage(model, spec("none"), { hidden: [ctx.tmp.root] }), envSandboxed),
    plainTools: () => runHarness(ctx, startMessage(model, spec("tools"), { allowUnsandboxed: true }), envPlain),
    plainNone: () => runHarness(ctx, startMessage(model, spec("none"), { allowUnsandboxed: true }), envPlain),
    bash: async () => ({ ms: await bareSpawn(["bash", "-c", "true"], ctx.cwd), events: [] }),
    bwrapBash: async () => ({ ms: await bareSpawn(sandbox.wrap(["bash", "-c", "true"]), ctx.cwd), events: [] }),
  };
  type Case = keyof typeof cases;
  const order = Object.keys(cases) as Case[];
  const times = Object.fromEntries(order.map((c) => [c, [] as number[]])) as Record<Case, number[]>;
  try {
    // The tool turns really ran: 10 tool results, in and out of the sandbox.
    const check = await cases.sandboxedTools();
    const toolResults = check.events.filter((e) => e.type === EventType.AgentToolResult);
    if (toolResults.length !== TURNS || toolResults.some((e) => e.content.isError)) throw new Error(`expected ${TURNS} good tool results: ${JSON.stringify(toolResults.slice(0, 2))}`);
    for (let i = 0; i < WARMUP; i++) for (const c of order) await cases[c]();
    for (let i = 0; i < ROUNDS; i++)
      for (let j = 0; j < order.length; j++) {
        const c = order[(i + j) % order.length]!;
        times[c].push((await cases[c]()).ms);
      }
  } finally {
    await model.stop();
  }
  const med = (c: Case) => median(times[c]);
  const perTurnSandboxed = (med("sandboxedTools") - med("sandboxedNone")) / TURNS;
  const perTurnPlain = (med("plainTools") - med("plainNone")) / TURNS;
  return {
    title: `Tool turns: a pai harness session of ${TURNS} turns each calling bash \`true\` against the fake model server (Anthropic wire format, streamed), minus the same agent answering at once, per turn; medians of ${ROUNDS} interleaved rounds`,
    rows: [
      ["case", "median", "per tool turn"],
      [`session, ${TURNS} tool turns, sandboxed (bubblewrap)`, ms(med("sandboxedTools")), ms(perTurnSandboxed)],
      ["session, no tool call, sandboxed", ms(med("sandboxedNone")), ""],
      [`session, ${TURNS} tool turns, unsandboxed (--allow-unsandboxed-tools, no bwrap)`, ms(med("plainTools")), ms(perTurnPlain)],
      ["session, no tool call, unsandboxed", ms(med("plainNone")), ""],
      ["bare spawn: bash -c true", ms(med("bash")), ""],
      ["bare spawn: bwrap (the same arguments) bash -c true", ms(med("bwrapBash")), ""],
    ],
    notes: [
      `A tool turn is a model call (HTTP to the fake, streamed answer), the bash call (spawn, wait, capture), and the events over IPC. ` +
        `Sandboxed: ${ms(perTurnSandboxed)} per turn = ${(perTurnSandboxed / med("bwrapBash")).toFixed(2)}x a bare bwrap spawn; unsandboxed: ${ms(perTurnPlain)} = ${(perTurnPlain / med("bash")).toFixed(2)}x a bare bash spawn.`,
    ],
  };
}

export async function mcpMemory(ctx: BenchContext): Promise<Report> {
  const model = startModelServer();
  model.script(() => ({ hang: true }));
  const server = join(import.meta.dir, "..", "test", "fixtures", "mcp", "stdio-server.ts");
  const runs = Math.max(3, Math.ceil(ctx.runs / 3));
  const withMcp: number[] = [];
  const without: number[] = [];
  const env = sessionChildEnv(ctx.env);
  /** Runs a harness until its first model call arrives, reads its RSS, then lets the call fail so it exits. */
  const measure = async (mcpServers: StartMessage["mcpServers"]) => {
    // The fixture lives in the checkout, which may be under /tmp: shown read-only in the sandbox.
    const start = startMessage(model, { models: ["anthropic/claude-bench"] }, { allowUnsandboxed: true, readOnly: [join(import.meta.dir, "..")] });
    if (mcpServers) start.mcpServers = mcpServers;
    const before = model.requests.length;
    let mcpSeen = !mcpServers;
    const proc = spawnHarness(ctx, start, env, (m) => {
      if (m.type === "event" && m.event.type === EventType.McpServer) mcpSeen = true;
    });
    const t0 = Date.now();
    while (model.requests.length === before || !mcpSeen) {
      if (Date.now() - t0 > 20_000) throw new Error("the harness did not reach its first model call");
      await Bun.sleep(20);
    }
    await Bun.sleep(300);
    const rss = memory(proc.pid).rss;
    proc.kill("SIGTERM");
    await proc.exited;
    return rss;
  };
  try {
    for (let i = 0; i < runs; i++) {
      withMcp.push(await measure([{ name: "fixture", command: process.execPath, args: [server] }]));
      without.push(await measure(undefined));
    }
  } finally {
    await model.stop();
  }
  return {
    title: `Harness memory with an MCP server: pai harness RSS while its first model call waits, median of ${runs} runs each`,
    rows: [
      ["harness", "RSS (VmRSS)"],
      ["one stdio MCP server connected (test/fixtures/mcp/stdio-server.ts; its own process not counted)", mb(median(withMcp))],
      ["no MCP server", mb(median(without))],
    ],
    notes: [`The MCP SDK is loaded only by sessions that have MCP servers: ${mb(median(withMcp) - median(without))} more.`],
  };
}
