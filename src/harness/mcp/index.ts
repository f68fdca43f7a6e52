/**
 * MCP servers feeding the session's tool registry. Each server of the start message is connected
 * at start, all at the same time: a stdio one is started inside the session's sandbox (./stdio.ts),
 * an HTTP one is reached over Streamable HTTP, or the legacy SSE transport when it does not speak
 * that. Its tools are added as `mcp__<server>__<tool>` with the server's own input schemas. A
 * server that fails to start is an error event and the run goes on without it.
 *
 * The SDK is imported here and only here, and this file only when an agent has MCP servers, so
 * sessions without them never load it.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { Tool as SdkTool } from "@modelcontextprotocol/sdk/types.js";
import { EventType } from "../../domain/session";
import { modelFetch } from "../models/proxy";
import type { Emit, ProxySettings, ResolvedMcpServer } from "../protocol";
import type { ToolRegistry } from "../tools/registry";
import { toolError, type Tool, type ToolContext } from "../tools/types";
import { mcpToolName, resultText, TOOL_NAME } from "./result";
import { LOG_CAP_BYTES, SandboxedStdioTransport, StderrLog } from "./stdio";

/** How long a server has to start and list its tools. */
export const START_TIMEOUT_MS = 30_000;
/** How long one tool call may take. */
export const CALL_TIMEOUT_MS = 5 * 60_000;
/** A server listing more pages of tools than this is cut off there. */
const MAX_TOOL_PAGES = 100;
/** A description longer than this is cut: a server does not get to fill the model's context. */
const MAX_DESCRIPTION = 8 * 1024;

export interface McpDeps {
  context: ToolContext;
  tools: ToolRegistry;
  emit: Emit;
  /** The operator's proxy settings (start.credentials.proxy). HTTP servers are never reached through proxy variables of the session's env, which a caller may set. */
  proxy?: ProxySettings;
}

export interface McpOptions {
  startTimeoutMs?: number;
  callTimeoutMs?: number;
  logCapBytes?: number;
}

export interface McpConnections {
  /** Closes every client, kills every stdio server; never throws. */
  close(): Promise<void>;
}

const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));
const clip = (s: string, max = 500) => (s.length > max ? `${s.slice(0, max)}…` : s);

async function loadSdk() {
  const [{ Client }, http] = await Promise.all([import("@modelcontextprotocol/sdk/client/index.js"), import("@modelcontextprotocol/sdk/client/streamableHttp.js")]);
  return { Client, StreamableHTTPClientTransport: http.StreamableHTTPClientTransport, StreamableHTTPError: http.StreamableHTTPError };
}
type Sdk = Awaited<ReturnType<typeof loadSdk>>;

/** One server: its client and transport while they live, and how to end them. */
class Connection {
  client?: Client;
  transport?: Transport;
  stdio?: SandboxedStdioTransport;
  log?: StderrLog;
  closing = false;
  private closed?: Promise<void>;

  constructor(readonly server: ResolvedMcpServer) {}

  /** SIGKILL now (the session is aborted): nothing waits for a polite exit. */
  kill() {
    this.stdio?.kill();
  }

  close(): Promise<void> {
    this.closing = true;
    this.closed ??= (async () => {
      const t = this.transport;
      // A Streamable HTTP session is ended politely, but the session does not wait long for it.
      if (t && "terminateSession" in t && typeof t.terminateSession === "function") {
        await Promise.race([(t.terminateSession as () => Promise<void>).call(t).catch(() => {}), new Promise((r) => setTimeout(r, 1000).unref())]);
      }
      try {
        await this.client?.close();
      } catch {}
      try {
        await this.transport?.close();
      } catch {}
      this.log?.close();
    })();
    return this.closed;
  }
}

export async function connectMcpServers(servers: ResolvedMcpServer[], deps: McpDeps, opts: McpOptions = {}): Promise<McpConnections> {
  const { context, emit } = deps;
  const failed = (name: string, reason: string) => emit(EventType.Error, { message: `MCP server ${name} failed to start: ${reason}`, server: name });
  if (!servers.length) return { close: async () => {} };
  let sdk: Sdk;
  try {
    sdk = await loadSdk();
  } catch (err) {
    for (const s of servers) failed(s.name, `the MCP SDK could not be loaded: ${errText(err)}`);
    return { close: async () => {} };
  }
  const conns = servers.map((s) => new Connection(s));
  // Every log is opened before any server runs, so no server can plant a link where another's log goes.
  for (const c of conns) if ("command" in c.server) c.log = new StderrLog(context.cwd, c.server.name, opts.logCapBytes ?? LOG_CAP_BYTES);

  const onAbort = () => {
    for (const c of conns) {
      c.kill();
      void c.close();
    }
  };
  context.signal.addEventListener("abort", onAbort, { once: true });

  const startMs = opts.startTimeoutMs ?? START_TIMEOUT_MS;
  const outcomes = await Promise.all(conns.map((c) => startOne(c, sdk, deps, startMs).then((tools) => ({ tools }), (err: unknown) => ({ error: errText(err) }))));

  const callTimeout = opts.callTimeoutMs ?? CALL_TIMEOUT_MS;
  // Tools are added in the order of spec.mcpServers, so which of two clashing names wins does not depend on timing.
  conns.forEach((c, i) => {
    const out = outcomes[i]!;
    const name = c.server.name;
    if ("error" in out) {
      failed(name, clip(out.error));
      void c.close();
      return;
    }
    const notes: string[] = [];
    if (c.log?.problem) notes.push(c.log.problem);
    const allow = c.server.tools;
    const offered = allow ? out.tools.filter((t) => allow.includes(t.name)) : out.tools;
    if (allow) {
      const missing = allow.filter((n) => !out.tools.some((t) => t.name === n));
      if (missing.length) notes.push(`not offered by the server: ${missing.join(", ")}`);
    }
    const added: string[] = [];
    for (const t of offered) {
      const full = mcpToolName(name, t.name);
      if (!TOOL_NAME.test(full)) {
        notes.push(`${t.name} left out: its name is not usable`);
        continue;
      }
      if (deps.tools.has(full)) {
        notes.push(`${t.name} left out: the name ${full} is taken by another tool`);
        continue;
      }
      if (full !== `mcp__${name}__${t.name}`) notes.push(`${t.name} is offered as ${full}`);
      deps.tools.add(mcpTool(c, t, full, callTimeout));
      added.push(t.name);
    }
    emit(EventType.McpServer, { server: name, tools: added, ...(notes.length ? { notes } : {}) });
    // A server that stops later is reported once; its tools then answer with an error.
    if (c.client) {
      c.client.onclose = () => {
        if (c.closing || context.signal.aborted) return;
        const how = c.stdio ? exitText(c.stdio) : "the connection closed";
        emit(EventType.Error, { message: `MCP server ${name} stopped: ${how}`, server: name });
      };
    }
  });

  return {
    close: async () => {
      context.signal.removeEventListener("abort", onAbort);
      await Promise.all(conns.map((c) => c.close().catch(() => {})));
    },
  };
}

/** Starts one server and lists its tools, within the start timeout and the session's signal. */
async function startOne(c: Connection, sdk: Sdk, deps: McpDeps, timeoutMs: number): Promise<SdkTool[]> {
  const signal = deps.context.signal;
  if (signal.aborted) throw new Error("the session was stopped");
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(new Error(`it did not answer within ${timeoutMs / 1000} s`)), timeoutMs);
  const onAbort = () => stop.abort(new Error("the session was stopped"));
  signal.addEventListener("abort", onAbort, { once: true });
  const stopped = new Promise<never>((_, reject) => stop.signal.addEventListener("abort", () => reject(stop.signal.reason), { once: true }));
  try {
    const work = (async () => {
      if ("command" in c.server) await startStdio(c, c.server, sdk, deps, stop.signal);
      else await startHttp(c, c.server, sdk, deps, stop.signal);
      return await listAllTools(c.client!, stop.signal);
    })();
    work.catch(() => {});
    return await Promise.race([work, stopped]);
  } catch (err) {
    // What the process said on its way out says more than "Connection closed".
    if (c.stdio?.exit) throw new Error(exitText(c.stdio));
    throw err;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
  }
}

/** "exited with code 1: <the last lines of its stderr>" */
function exitText(t: SandboxedStdioTransport): string {
  const e = t.exit;
  const how = !e ? "the connection closed" : e.signal ? `it was killed (${e.signal})` : `it exited with code ${e.code}`;
  const said = t.logTail();
  return said ? `${how}: ${said}` : how;
}

function newClient(sdk: Sdk): Client {
  const client = new sdk.Client({ name: "pai", version: "1" }, { capabilities: {} });
  // Transport errors surface where they matter (a start, a call); none is fatal on its own.
  client.onerror = () => {};
  return client;
}

async function startStdio(c: Connection, srv: Extract<ResolvedMcpServer, { command: string }>, sdk: Sdk, deps: McpDeps, signal: AbortSignal) {
  const { context } = deps;
  if (context.sandbox.refusal) throw new Error(context.sandbox.refusal);
  const own = srv.env ?? {};
  for (const [k, v] of Object.entries(own)) {
    if (!k || k.includes("=") || k.includes("\0")) throw new Error(`env name ${JSON.stringify(k)} is not usable`);
    if (v.includes("\0")) throw new Error(`env ${k} holds a NUL byte`);
  }
  if ([srv.command, ...(srv.args ?? [])].some((a) => a.includes("\0"))) throw new Error("the command line holds a NUL byte");
  // The session's environment and the server's own variables, nothing else of ours.
  const env = { ...context.env, ...own };
  const argv = context.sandbox.wrap([srv.command, ...(srv.args ?? [])]);
  c.stdio = new SandboxedStdioTransport({ argv, cwd: context.cwd, env, log: c.log! });
  c.transport = c.stdio;
  c.client = newClient(sdk);
  await c.client.connect(c.stdio, { signal });
}

async function startHttp(c: Connection, srv: Extract<ResolvedMcpServer, { url: string }>, sdk: Sdk, deps: McpDeps, signal: AbortSignal) {
  const url = URL.parse(srv.url);
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) throw new Error(`${JSON.stringify(srv.url)} is not an http:// or https:// URL`);
  const headers = srv.headers ?? {};
  try {
    new Headers(headers);
  } catch (err) {
    throw new Error(`its headers are not valid HTTP: ${errText(err)}`);
  }
  const requestInit: RequestInit = { headers };
  const fetch = modelFetch(deps.proxy);
  c.client = newClient(sdk);
  c.transport = new sdk.StreamableHTTPClientTransport(url, { requestInit, fetch });
  try {
    await c.client.connect(c.transport, { signal });
    return;
  } catch (err) {
    // An HTTP status (404, 405, …) to the Streamable HTTP POST: maybe a server of the older HTTP+SSE
    // transport, as the SDK's docs suggest. A connection error or a timeout is not retried.
    if (!(err instanceof sdk.StreamableHTTPError) || signal.aborted) throw err;
    await c.client.close().catch(() => {});
    const { SSEClientTransport } = await import("@modelcontextprotocol/sdk/client/sse.js");
    c.client = newClient(sdk);
    c.transport = new SSEClientTransport(url, { requestInit, fetch });
    try {
      await c.client.connect(c.transport, { signal });
    } catch (sseErr) {
      throw new Error(`${clip(errText(err), 300)} (and over the legacy SSE transport: ${clip(errText(sseErr), 200)})`);
    }
  }
}

async function listAllTools(client: Client, signal: AbortSignal): Promise<SdkTool[]> {
  // A server without the tools capability offers none.
  if (!client.getServerCapabilities()?.tools) return [];
  const tools: SdkTool[] = [];
  const cursors = new Set<string>();
  let cursor: string | undefined;
  for (let page = 0; page < MAX_TOOL_PAGES; page++) {
    const r = await client.listTools(cursor ? { cursor } : undefined, { signal });
    tools.push(...r.tools);
    cursor = r.nextCursor;
    // A cursor seen before would loop forever.
    if (!cursor || cursors.has(cursor)) break;
    cursors.add(cursor);
  }
  return tools;
}

function mcpTool(c: Connection, t: SdkTool, name: string, timeout: number): Tool {
  const server = c.server.name;
  let description = t.description ?? t.title ?? `${t.name} (MCP server ${server})`;
  if (description.length > MAX_DESCRIPTION) description = `${description.slice(0, MAX_DESCRIPTION)}…`;
  return {
    name,
    description,
    inputSchema: t.inputSchema as Record<string, unknown>,
    async run(input, ctx) {
      const client = c.client;
      if (!client || c.closing) return toolError(`MCP server ${server} is not running`);
      try {
        const result = await client.callTool({ name: t.name, arguments: input }, undefined, { signal: ctx.signal, timeout });
        return resultText(result);
      } catch (err) {
        // A transport error, a timeout, a server that died: the model gets an error result.
        return toolError(`MCP server ${server}: ${clip(errText(err), 1000)}`);
      }
    },
  };
}
