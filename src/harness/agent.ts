/**
 * One session's agent: its tools (built-in ones, MCP servers) and sandbox, then the loop
 * (./loop.ts) over the models of `spec.models` (./models/fallback.ts). Loaded by ./main.ts once
 * the start message came, so a harness waiting for it holds none of this.
 */
import { EventType } from "../domain/session";
import { runLoop } from "./loop";
import { createFallbackClient } from "./models/fallback";
import { ModelError } from "./models/types";
import { promptOf, type Emit, type HarnessResult, type StartMessage } from "./protocol";
import type { Sandbox } from "./sandbox";
import { builtinTool } from "./tools/index";
import { ToolRegistry } from "./tools/registry";
import type { ToolContext } from "./tools/types";

/** The session's environment as the tools get it: this process's own (the supervisor made it from spec.env and the caller's env). */
function sessionEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  return env;
}

/** Runs the agent for one start message, in the working folder `cwd`; returns the result to report. */
export async function runAgent(start: StartMessage, emit: Emit, signal: AbortSignal, cwd = process.cwd()): Promise<HarnessResult> {
  const spec = start.spec;
  // Only tools and MCP servers start processes. A session with neither never loads the sandbox's
  // code (it brings node:fs and node:os, ~1.5 ms in a fresh process), and one with them works
  // the sandbox out (~1 ms of file system look-ups) when a process is first started.
  const { createSandbox } = spec.tools?.length || start.mcpServers?.length ? await import("./sandbox") : { createSandbox: undefined };
  let sandbox: Sandbox | undefined;
  const context: ToolContext = {
    cwd,
    env: sessionEnv(),
    signal,
    get sandbox(): Sandbox {
      if (!createSandbox) throw new Error("the session has no tools and no MCP servers: nothing may start a process");
      return (sandbox ??= createSandbox({
        cwd,
        hidden: start.tools.hidden,
        readOnly: start.tools.readOnly,
        network: spec.sandbox?.network !== false,
        allowUnsandboxed: start.tools.allowUnsandboxed,
      }));
    },
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

