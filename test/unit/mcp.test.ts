/**
 * MCP servers in the harness (src/harness/mcp): real servers built with the official SDK — a stdio
 * one started as a real process (by the Bun running the tests), Streamable HTTP and legacy SSE
 * ones on 127.0.0.1 — connected into a real ToolRegistry, with a hand-made unsandboxed Sandbox and
 * with the real bubblewrap one. Processes are found by a marker in their environment (/proc), so
 * "killed" means nothing with the marker is left.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { EventType } from "../../src/domain/session";
import { connectMcpServers, type McpConnections, type McpOptions } from "../../src/harness/mcp/index";
import { mcpToolName, resultText } from "../../src/harness/mcp/result";
import type { HarnessEventMap, ProxySettings, ResolvedMcpServer } from "../../src/harness/protocol";
import { createSandbox, type Sandbox } from "../../src/harness/sandbox";
import { ToolRegistry } from "../../src/harness/tools/registry";
import type { ToolContext } from "../../src/harness/tools/types";
import { startFakeProxy } from "../fakes/http-proxy";
import { startLegacySseServer, startStreamableServer, type TestHttpServer } from "../fixtures/mcp/http-server";
import { eventually, removeDir, ROOT, tempDir } from "../helpers";

const STDIO = join(ROOT, "test", "fixtures", "mcp", "stdio-server.ts");
const unsandboxed: Sandbox = { kind: "none", wrap: (argv) => argv };
const hasBwrap = process.platform === "linux" && existsSync("/usr/bin/bwrap");

type Ev = { [K in keyof HarnessEventMap]: { type: K; content: HarnessEventMap[K] } }[keyof HarnessEventMap];

interface Rig {
  cwd: string;
  marker: string;
  context: ToolContext;
  tools: ToolRegistry;
  events: Ev[];
  abort: AbortController;
  mcp: McpConnections;
  call(tool: string, input?: Record<string, unknown>): ReturnType<ToolRegistry["call"]>;
  errors(): HarnessEventMap[typeof EventType.Error][];
  connected(server: string): HarnessEventMap[typeof EventType.McpServer] | undefined;
}

const rigs: Rig[] = [];
const httpServers: TestHttpServer[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) {
    await r.mcp.close();
    removeDir(r.cwd);
  }
  for (const s of httpServers.splice(0)) await s.close();
});

/** Pids of live processes whose environment holds MARK=<marker>. */
function procsWith(marker: string): number[] {
  const needle = `MARK=${marker}\0`;
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/environ`, "latin1").includes(needle)) out.push(Number(e));
    } catch {
      // Gone, or not ours.
    }
  }
  return out;
}

const stdio = (name: string, extra: Partial<Extract<ResolvedMcpServer, { command: string }>> = {}): ResolvedMcpServer => ({
  name,
  command: process.execPath,
  args: [STDIO],
  ...extra,
});

async function connect(
  servers: ResolvedMcpServer[],
  o: { sandbox?: (cwd: string) => Sandbox; opts?: McpOptions; prepare?: (cwd: string, tools: ToolRegistry) => void; proxy?: ProxySettings } = {},
): Promise<Rig> {
  const cwd = tempDir("pai-mcp-");
  const marker = crypto.randomUUID();
  const abort = new AbortController();
  const context: ToolContext = {
    cwd,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SESSION_VAR: "from the session", MARK: marker },
    signal: abort.signal,
    sandbox: o.sandbox ? o.sandbox(cwd) : unsandboxed,
    allowPrivateFetch: false,
  };
  const tools = new ToolRegistry();
  o.prepare?.(cwd, tools);
  const events: Ev[] = [];
  const mcp = await connectMcpServers(servers, { context, tools, emit: (type, content) => events.push({ type, content } as Ev), proxy: o.proxy }, o.opts);
  const rig: Rig = {
    cwd,
    marker,
    context,
    tools,
    events,
    abort,
    mcp,
    call: (tool, input = {}) => tools.call(tool, input, context),
    errors: () => events.flatMap((e) => (e.type === EventType.Error ? [e.content] : [])),
    connected: (server) => events.flatMap((e) => (e.type === EventType.McpServer && e.content.server === server ? [e.content] : []))[0],
  };
  rigs.push(rig);
  return rig;
}

describe("stdio servers", () => {
  test("tools are offered as mcp__<server>__<tool>, only those of the allow list, with the server's schemas", async () => {
    const r = await connect([stdio("local", { tools: ["add", "fail", "echo_env", "no_such_tool"] })]);
    expect(r.errors()).toEqual([]);
    const ev = r.connected("local")!;
    expect(ev.tools.sort()).toEqual(["add", "echo_env", "fail"]);
    expect(ev.notes).toEqual(["not offered by the server: no_such_tool"]);
    expect(r.tools.names().sort()).toEqual(["mcp__local__add", "mcp__local__echo_env", "mcp__local__fail"]);
    const add = r.tools.specs().find((s) => s.name === "mcp__local__add")!;
    expect(add.description).toBe("Adds two numbers.");
    expect(add.inputSchema).toMatchObject({ type: "object", properties: { a: { type: "number" }, b: { type: "number" } }, required: ["a", "b"] });
  }, 20_000);

  test("calls answer the server's text; isError and the server's own input checks come through", async () => {
    const r = await connect([stdio("local")]);
    expect(await r.call("mcp__local__add", { a: 2, b: 40 })).toEqual({ output: "42", isError: false });
    expect(await r.call("mcp__local__fail")).toEqual({ output: "it went wrong on purpose", isError: true });
    const bad = await r.call("mcp__local__add", { a: "two" });
    expect(bad.isError).toBe(true);
    expect(bad.output).toContain("Invalid arguments for tool add");
    // Images and binary resources are summarised; structured content is JSON when there is no text.
    expect(await r.call("mcp__local__mixed")).toEqual({
      output: "here:\n[image: image/png, 8 bytes]\n[resource: file:///x.bin, application/octet-stream, 3 bytes]",
      isError: false,
    });
    expect(await r.call("mcp__local__structured")).toEqual({ output: '{"total":42}', isError: false });
  }, 20_000);

  test("the server gets the session's env plus its own, and nothing else of the harness's", async () => {
    process.env.PAI_MCP_TEST_LEAK = "should not be seen";
    try {
      const r = await connect([stdio("local", { env: { OWN_TOKEN: "s3cret", SESSION_VAR: "overridden by the server's env" } })]);
      expect((await r.call("mcp__local__echo_env", { name: "OWN_TOKEN" })).output).toBe("s3cret");
      expect((await r.call("mcp__local__echo_env", { name: "SESSION_VAR" })).output).toBe("overridden by the server's env");
      expect((await r.call("mcp__local__echo_env", { name: "PAI_MCP_TEST_LEAK" })).output).toBe("(unset)");
      expect((await r.call("mcp__local__env_names")).output.split("\n")).toEqual(["MARK", "OWN_TOKEN", "PATH", "SESSION_VAR"]);
    } finally {
      delete process.env.PAI_MCP_TEST_LEAK;
    }
  }, 20_000);

  test("a call that takes too long is an error result, and the server still answers the next one", async () => {
    const r = await connect([stdio("local")], { opts: { callTimeoutMs: 1500 } });
    const slow = await r.call("mcp__local__slow", { ms: 60_000 });
    expect(slow.isError).toBe(true);
    expect(slow.output).toMatch(/^MCP server local: .*timed out/i);
    expect(await r.call("mcp__local__add", { a: 1, b: 1 })).toEqual({ output: "2", isError: false });
  }, 20_000);

  test("close kills the server and what it started; its tools then answer an error", async () => {
    const r = await connect([stdio("local")]);
    const child = Number((await r.call("mcp__local__spawn_child")).output);
    expect(child).toBeGreaterThan(0);
    expect(procsWith(r.marker).length).toBeGreaterThanOrEqual(2);
    await r.mcp.close();
    await eventually(() => procsWith(r.marker).length === 0, 5000, "the server and its child to be gone");
    expect(await r.call("mcp__local__add", { a: 1, b: 1 })).toEqual({ output: "MCP server local is not running", isError: true });
    // close twice is fine.
    await r.mcp.close();
  }, 20_000);

  test("aborting the session kills the servers without waiting for close", async () => {
    const r = await connect([stdio("local")]);
    await r.call("mcp__local__spawn_child");
    expect(procsWith(r.marker).length).toBeGreaterThanOrEqual(2);
    r.abort.abort();
    await eventually(() => procsWith(r.marker).length === 0, 5000, "the server to be killed on abort");
    // A server that was killed on purpose is not reported as one that stopped by itself.
    expect(r.errors()).toEqual([]);
  }, 20_000);

  test("a server that dies mid-session is reported once, and its tools answer an error", async () => {
    const r = await connect([stdio("local", { args: [STDIO, "--stderr", "starting up"] })]);
    await r.call("mcp__local__crash");
    const [err] = await eventually(() => (r.errors().length ? r.errors() : null), 5000, "the stopped server to be reported");
    expect(err).toEqual({ message: "MCP server local stopped: it exited with code 3: starting up", server: "local" });
    const after = await r.call("mcp__local__add", { a: 1, b: 1 });
    expect(after.isError).toBe(true);
    expect(after.output).toStartWith("MCP server local: ");
  }, 20_000);

  test("stderr is kept in .pai/mcp-<name>.log, capped to its newest bytes", async () => {
    const r = await connect([stdio("local", { args: [STDIO, "--stderr", "FIRST LINE"] })], { opts: { logCapBytes: 4096 } });
    const log = join(r.cwd, ".pai", "mcp-local.log");
    await eventually(() => existsSync(log) && readFileSync(log, "utf8").includes("FIRST LINE"), 5000, "the first line in the log");
    await r.call("mcp__local__stderr", { n: 10_000 });
    await r.mcp.close();
    const text = readFileSync(log, "utf8");
    expect(text.length).toBe(4096);
    expect(text).toEndWith("xxxxEND\n");
    expect(text).not.toContain("FIRST LINE");
  }, 20_000);

  test("the default cap is 64 KiB", async () => {
    const r = await connect([stdio("local")]);
    await r.call("mcp__local__stderr", { n: 100_000 });
    await r.call("mcp__local__stderr", { n: 100 });
    await r.mcp.close();
    const st = statSync(join(r.cwd, ".pai", "mcp-local.log"));
    expect(st.size).toBe(64 * 1024);
  }, 20_000);

  test("a log path that is a symbolic link is not followed: the server runs, the note says why there is no log", async () => {
    const outside = tempDir("pai-mcp-outside-");
    try {
      const target = join(outside, "victim");
      writeFileSync(target, "keep me");
      const r = await connect([stdio("linked"), stdio("dirlink")], {
        prepare: (cwd) => {
          mkdirSync(join(cwd, ".pai"));
          symlinkSync(target, join(cwd, ".pai", "mcp-linked.log"));
        },
      });
      expect(readFileSync(target, "utf8")).toBe("keep me");
      expect(lstatSync(join(r.cwd, ".pai", "mcp-linked.log")).isSymbolicLink()).toBe(true);
      expect(r.connected("linked")!.notes?.[0]).toStartWith("its stderr log could not be written:");
      expect(await r.call("mcp__linked__add", { a: 1, b: 2 })).toEqual({ output: "3", isError: false });
      // The other server's log is unaffected.
      expect(r.connected("dirlink")!.notes).toBeUndefined();
    } finally {
      removeDir(outside);
    }
  }, 20_000);

  test("a .pai that is a symbolic link to another folder is not written through", async () => {
    const outside = tempDir("pai-mcp-outside-");
    try {
      const r = await connect([stdio("local")], { prepare: (cwd) => symlinkSync(outside, join(cwd, ".pai")) });
      expect(r.connected("local")!.notes).toEqual(["its stderr log could not be written: .pai is not a folder"]);
      expect(readdirSync(outside)).toEqual([]);
      expect(await r.call("mcp__local__add", { a: 1, b: 2 })).toEqual({ output: "3", isError: false });
    } finally {
      removeDir(outside);
    }
  }, 20_000);

  test("a name already taken is left out with a note; the server's other tools still come", async () => {
    const r = await connect([stdio("local", { tools: ["add", "fail"] })], {
      prepare: (_cwd, tools) => tools.add({ name: "mcp__local__add", description: "already here", inputSchema: { type: "object" }, run: async () => ({ output: "mine" }) }),
    });
    const ev = r.connected("local")!;
    expect(ev.tools).toEqual(["fail"]);
    expect(ev.notes).toEqual(["add left out: the name mcp__local__add is taken by another tool"]);
    expect((await r.call("mcp__local__add", { a: 1, b: 1 })).output).toBe("mine");
  }, 20_000);
});

describe("servers that fail to start", () => {
  test("a bad command, a server that exits, an unreachable URL and a refused sandbox are errors; the good server still works", async () => {
    // A port nothing listens on: bind one, then free it.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const r = await connect([
      stdio("good"),
      { name: "nocmd", command: "/nonexistent/mcp-server" },
      stdio("quits", { args: [STDIO, "--stderr", "missing config file", "--exit", "2"] }),
      { name: "nohost", url: `http://127.0.0.1:${port}/mcp` },
      { name: "badurl", url: "ftp://example.com/" },
    ]);
    const byServer = Object.fromEntries(r.errors().map((e) => [e.server, e.message]));
    expect(Object.keys(byServer).sort()).toEqual(["badurl", "nocmd", "nohost", "quits"]);
    expect(byServer.nocmd).toStartWith("MCP server nocmd failed to start: ");
    expect(byServer.nocmd).toContain("ENOENT");
    expect(byServer.quits).toBe("MCP server quits failed to start: it exited with code 2: missing config file");
    expect(byServer.nohost).toStartWith("MCP server nohost failed to start: ");
    expect(byServer.badurl).toBe('MCP server badurl failed to start: "ftp://example.com/" is not an http:// or https:// URL');
    expect(r.tools.names().every((n) => n.startsWith("mcp__good__"))).toBe(true);
    expect(await r.call("mcp__good__add", { a: 20, b: 22 })).toEqual({ output: "42", isError: false });
    expect(readFileSync(join(r.cwd, ".pai", "mcp-quits.log"), "utf8")).toBe("missing config file\n");
  }, 20_000);

  test("a server that never answers is stopped at the start timeout, and killed", async () => {
    const r = await connect([{ name: "mute", command: "sleep", args: ["300"] }], { opts: { startTimeoutMs: 1500 } });
    expect(r.errors()).toEqual([{ message: "MCP server mute failed to start: it did not answer within 1.5 s", server: "mute" }]);
    expect(r.tools.size).toBe(0);
    await eventually(() => !procsWith(r.marker).some((pid) => readFileSync(`/proc/${pid}/cmdline`, "latin1").startsWith("sleep")), 5000, "the mute server to be killed");
  }, 20_000);

  test("a sandbox that refuses processes starts nothing", async () => {
    const refusing: Sandbox = {
      kind: "none",
      refusal: "no sandbox here",
      wrap() {
        throw new Error("wrap must not be called");
      },
    };
    const r = await connect([stdio("local")], { sandbox: () => refusing });
    expect(r.errors()).toEqual([{ message: "MCP server local failed to start: no sandbox here", server: "local" }]);
    expect(r.tools.size).toBe(0);
    expect(procsWith(r.marker)).toEqual([]);
  }, 20_000);

  test("an aborted session starts nothing", async () => {
    const cwd = tempDir("pai-mcp-");
    const abort = new AbortController();
    abort.abort();
    const events: Ev[] = [];
    const tools = new ToolRegistry();
    const mcp = await connectMcpServers([stdio("local")], {
      context: { cwd, env: { PATH: process.env.PATH ?? "" }, signal: abort.signal, sandbox: unsandboxed, allowPrivateFetch: false },
      tools,
      emit: (type, content) => events.push({ type, content } as Ev),
    });
    await mcp.close();
    removeDir(cwd);
    expect(events).toEqual([{ type: EventType.Error, content: { message: "MCP server local failed to start: the session was stopped", server: "local" } }]);
    expect(tools.size).toBe(0);
  }, 20_000);
});

describe("HTTP servers", () => {
  test("Streamable HTTP with an Authorization header", async () => {
    const http = startStreamableServer({ token: "t0ken" });
    httpServers.push(http);
    const r = await connect([
      { name: "remote", url: http.url, headers: { Authorization: "Bearer t0ken" }, tools: ["add", "headers", "fail"] },
      { name: "nokey", url: http.url },
    ]);
    expect(r.connected("remote")!.tools.sort()).toEqual(["add", "fail", "headers"]);
    expect(await r.call("mcp__remote__add", { a: 3, b: 4 })).toEqual({ output: "7", isError: false });
    expect(await r.call("mcp__remote__headers")).toEqual({ output: "Bearer t0ken", isError: false });
    expect(await r.call("mcp__remote__fail")).toEqual({ output: "it went wrong on purpose", isError: true });
    const [err] = r.errors();
    expect(err!.server).toBe("nokey");
    expect(err!.message).toStartWith("MCP server nokey failed to start: ");
    expect(err!.message).toContain("401");
  }, 20_000);

  test("a server of the legacy HTTP+SSE transport is reached through the fallback", async () => {
    const sse = await startLegacySseServer();
    httpServers.push(sse);
    const r = await connect([{ name: "old", url: sse.url, tools: ["add"] }]);
    expect(r.errors()).toEqual([]);
    expect(r.connected("old")!.tools).toEqual(["add"]);
    expect(await r.call("mcp__old__add", { a: 5, b: 6 })).toEqual({ output: "11", isError: false });
  }, 20_000);

  test("a server that goes away mid-session gives error results, not a crash", async () => {
    const http = startStreamableServer();
    httpServers.push(http);
    const r = await connect([{ name: "remote", url: http.url }]);
    expect(await r.call("mcp__remote__add", { a: 1, b: 2 })).toEqual({ output: "3", isError: false });
    await http.close();
    const res = await r.call("mcp__remote__add", { a: 1, b: 2 });
    expect(res.isError).toBe(true);
    expect(res.output).toStartWith("MCP server remote: ");
  }, 20_000);
});

describe("HTTP servers and proxies", () => {
  const PROXY_VARS = ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"];

  test("proxy variables of the session's env are not used (a caller could set them); the operator's proxy is", async () => {
    const http = startStreamableServer({ token: "t0ken" });
    httpServers.push(http);
    const callers = startFakeProxy();
    const operators = startFakeProxy();
    const saved = Object.fromEntries(PROXY_VARS.map((k) => [k, process.env[k]]));
    // The harness's own env is the session's: spec.env and a caller's overrides.
    for (const k of ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]) process.env[k] = callers.url;
    for (const k of ["NO_PROXY", "no_proxy"]) delete process.env[k];
    try {
      const direct = await connect([{ name: "remote", url: http.url, headers: { Authorization: "Bearer t0ken" } }]);
      expect(await direct.call("mcp__remote__headers")).toEqual({ output: "Bearer t0ken", isError: false });
      const proxied = await connect([{ name: "remote", url: http.url, headers: { Authorization: "Bearer t0ken" } }], { proxy: { HTTP_PROXY: operators.url } });
      expect(await proxied.call("mcp__remote__add", { a: 1, b: 1 })).toEqual({ output: "2", isError: false });
      expect(callers.requests).toEqual([]);
      expect(operators.requests.length).toBeGreaterThan(0);
      expect(operators.requests.every((r) => r.url === http.url)).toBe(true);
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      await callers.stop();
      await operators.stop();
    }
  }, 20_000);
});

describe.skipIf(!hasBwrap)("inside the real sandbox (bubblewrap)", () => {
  // The fixtures live in the checkout, which may be under /tmp (covered by the sandbox's own): shown read-only.
  const bwrap = (network: boolean) => (cwd: string) => createSandbox({ cwd, hidden: [], readOnly: [ROOT], network, allowUnsandboxed: false, bwrapPath: "/usr/bin/bwrap" });

  test("a stdio server runs inside bwrap, with only the session's env and its own, and dies on close", async () => {
    const r = await connect([stdio("boxed", { env: { OWN: "o" } }), { name: "nocmd", command: "/nonexistent/mcp-server" }], { sandbox: bwrap(false) });
    expect(r.context.sandbox.kind).toBe("bubblewrap");
    expect(await r.call("mcp__boxed__add", { a: 1, b: 2 })).toEqual({ output: "3", isError: false });
    // bwrap sets PWD (--chdir); nothing else is added.
    expect((await r.call("mcp__boxed__env_names")).output.split("\n")).toEqual(["MARK", "OWN", "PATH", "PWD", "SESSION_VAR"]);
    expect(r.errors()).toEqual([{ message: "MCP server nocmd failed to start: it exited with code 1: bwrap: execvp /nonexistent/mcp-server: No such file or directory", server: "nocmd" }]);
    // It runs in the sandbox: its working folder is writable, the rest of the filesystem is not.
    await r.call("mcp__boxed__spawn_child");
    expect(procsWith(r.marker).length).toBeGreaterThanOrEqual(3);
    await r.mcp.close();
    await eventually(() => procsWith(r.marker).length === 0, 5000, "bwrap, the server and its child to be gone");
  }, 20_000);

  test("the server's process is in the sandbox's PID namespace and sees a read-only root", async () => {
    const r = await connect([{ name: "sh", command: "sh", args: ["-c", "touch /probe-$MARK 2>/dev/null && echo WROTE >&2; echo pid=$$ >&2; exec sleep 300"] }], {
      sandbox: bwrap(false),
      opts: { startTimeoutMs: 1000 },
    });
    // sh never speaks MCP: it fails to start, and what it said is in its log.
    expect(r.errors()[0]!.message).toStartWith("MCP server sh failed to start: it did not answer within 1 s");
    await r.mcp.close();
    const log = readFileSync(join(r.cwd, ".pai", "mcp-sh.log"), "utf8");
    expect(log).not.toContain("WROTE");
    // A small pid: the sandbox has its own PID namespace.
    expect(Number(/pid=(\d+)/.exec(log)![1])).toBeLessThan(10);
    expect(existsSync(`/probe-${r.marker}`)).toBe(false);
    await eventually(() => procsWith(r.marker).length === 0, 5000, "the sandbox to be gone");
  }, 20_000);
});

describe("names and results", () => {
  test("tool names are sanitised and cut to the model APIs' 64 characters, long ones kept apart by a hash", () => {
    expect(mcpToolName("gh", "get_pull_request")).toBe("mcp__gh__get_pull_request");
    expect(mcpToolName("gh", "files.read/all")).toBe("mcp__gh__files_read_all");
    const a = mcpToolName("s".repeat(32), `${"t".repeat(40)}_a`);
    const b = mcpToolName("s".repeat(32), `${"t".repeat(40)}_b`);
    for (const n of [a, b]) expect(n).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    expect(a.length).toBe(64);
    expect(a).not.toBe(b);
  });

  test("results: text joined, media summarised, structured content when there is no text, empty ones said so", () => {
    expect(resultText({ content: [{ type: "text", text: "a" }, { type: "text", text: "b" }] })).toEqual({ output: "a\nb", isError: false });
    expect(resultText({ content: [{ type: "audio", data: "AAAA", mimeType: "audio/wav" }] }).output).toBe("[audio: audio/wav, 3 bytes]");
    expect(resultText({ content: [{ type: "resource", resource: { uri: "file:///a.txt", mimeType: "text/plain", text: "hello" } }] }).output).toBe(
      "[resource: file:///a.txt, text/plain]\nhello",
    );
    expect(resultText({ content: [{ type: "resource_link", uri: "file:///b", name: "b" }] }).output).toBe("[resource link: b file:///b]");
    expect(resultText({ content: [{ type: "text", text: "has text" }], structuredContent: { x: 1 } }).output).toBe("has text");
    expect(resultText({ content: [], structuredContent: { x: 1 } }).output).toBe('{"x":1}');
    expect(resultText({ content: [] })).toEqual({ output: "(the tool returned no content)", isError: false });
    expect(resultText({ content: [], isError: true })).toEqual({ output: "the tool failed and said nothing more", isError: true });
    expect(resultText({ toolResult: { ok: true } }).output).toBe('{"ok":true}');
    expect(resultText({ content: "not a list" as unknown as [] }).output).toBe("(the tool returned no content)");
  });
});
