/**
 * `pai harness`: the child process that runs one session's agent loop. It waits for the start
 * message on the IPC pipe, sets up the session's tools (built-in ones, MCP servers) and its
 * sandbox, runs the loop (./loop.ts) over the models of `spec.models` (./models/fallback.ts), and
 * reports events and a result. It never touches the store.
 */
import { EventType } from "../domain/session";
import { runLoop } from "./loop";
import { createFallbackClient } from "./models/fallback";
import { ModelError } from "./models/types";
import { promptOf, type Emit, type HarnessEvent, type HarnessMessage, type HarnessResult, type StartMessage } from "./protocol";
import { createSandbox } from "./sandbox";
import { builtinTool } from "./tools/index";
import { killAllProcesses } from "./tools/process";
import { ToolRegistry } from "./tools/registry";
import type { ToolContext } from "./tools/types";

function send(msg: HarnessMessage) {
  process.send!(msg);
}

const emitToParent: Emit = (type, content) => send({ type: "event", event: { type, content } as HarnessEvent });

/** The session's environment as the tools get it: this process's own (the supervisor made it from spec.env and the caller's env). */
function sessionEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  return env;
}

/** Runs the agent for one start message, in the working folder `cwd`; returns the result to report. */
export async function runAgent(start: StartMessage, emit: Emit, signal: AbortSignal, cwd = process.cwd()): Promise<HarnessResult> {
  const spec = start.spec;
  const context: ToolContext = {
    cwd,
    env: sessionEnv(),
    signal,
    sandbox: createSandbox({ cwd, hidden: start.tools.hidden, network: spec.sandbox?.network !== false, allowUnsandboxed: start.tools.allowUnsandboxed }),
    allowPrivateFetch: start.tools.allowPrivateFetch,
  };
  const tools = new ToolRegistry();
  for (const name of spec.tools ?? []) tools.add(await builtinTool(name));
  // MCP servers that fail to start are reported and left out; the run goes on without them.
  const mcp = start.mcpServers?.length ? await (await import("./mcp/index")).connectMcpServers(start.mcpServers, { context, tools, emit, proxy: start.credentials.proxy }) : undefined;
  try {
    let client;
    try {
      client = createFallbackClient(spec.models, start.credentials, emit);
    } catch (err) {
      const message = err instanceof ModelError ? err.message : String(err);
      emit(EventType.Error, { message });
      return { type: "result", phase: "Error", response: null, error: message };
    }
    return await runLoop({ prompt: promptOf(start.session), spec, client, tools, context, emit });
  } finally {
    await mcp?.close();
  }
}

export async function runHarness(): Promise<number> {
  if (!process.send) {
    process.stderr.write("error: pai harness is started by pai serve for each session; it is not run by hand\n");
    return 2;
  }
  const abort = new AbortController();
  let finished = false;
  process.on("SIGTERM", () => {
    abort.abort();
    // Every process a tool started goes with the session, whatever it is doing.
    killAllProcesses();
    setTimeout(() => process.exit(143), 50).unref();
  });
  // The supervisor is gone (crashed or killed): nobody will store what we do, so stop.
  process.on("disconnect", () => {
    if (!finished) {
      killAllProcesses();
      process.exit(1);
    }
  });
  const start = await new Promise<StartMessage>((resolve) => {
    process.once("message", (m) => resolve(m as StartMessage));
  });
  let result: HarnessResult;
  try {
    result = await runAgent(start, emitToParent, abort.signal);
  } catch (err) {
    const message = `the harness failed: ${err instanceof Error ? err.message : String(err)}`;
    emitToParent(EventType.Error, { message });
    result = { type: "result", phase: "Error", response: null, error: message };
  }
  killAllProcesses();
  finished = true;
  send(result);
  process.disconnect?.();
  return -1;
}
