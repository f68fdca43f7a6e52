/**
 * MCP servers for real, end to end: `pai serve` runs a session whose agent has a stdio MCP server
 * (the SDK-built fixture, started by the harness inside bubblewrap when it is installed), a
 * Streamable HTTP one whose Authorization header comes from a Secret, and one that cannot start.
 * The model (the fake server, Anthropic wire format) calls the MCP tools; the results reach it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { callTools, startModelServer, toolResultsOf, type FakeModelServer } from "../fakes/model-server";
import { startStreamableServer, type TestHttpServer } from "../fixtures/mcp/http-server";
import { eventually, ROOT, startServer, type TestServer } from "../helpers";

const STDIO = join(ROOT, "test", "fixtures", "mcp", "stdio-server.ts");
const NS = "/apis/pai.io/v1/namespaces/default";

let server: TestServer;
let models: FakeModelServer;
let http: TestHttpServer;

/** Pids of live processes whose environment holds MARK=<marker>. */
function procsWith(marker: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/environ`, "latin1").includes(`MARK=${marker}\0`)) out.push(Number(e));
    } catch {}
  }
  return out;
}

beforeAll(async () => {
  models = startModelServer();
  http = startStreamableServer({ token: "t0ken" });
  // Without bubblewrap the stdio server may only run unsandboxed if the operator allows it.
  // The stdio fixture lives in the checkout, which may be under /tmp (the sandbox's /tmp is its own).
  const args = existsSync("/usr/bin/bwrap") ? ["--sandbox-read-only", ROOT] : ["--allow-unsandboxed-tools"];
  server = await startServer({ args, env: { ANTHROPIC_API_KEY: "sk-ant-test", ANTHROPIC_BASE_URL: models.anthropicBaseUrl } });
});
afterAll(async () => {
  await server.stop();
  await models.stop();
  await http.close();
});

describe("an agent with MCP servers", () => {
  test("the model calls stdio and HTTP MCP tools; a server that cannot start is reported and the run goes on", async () => {
    const marker = crypto.randomUUID();
    const secret = await server.api("/api/v1/namespaces/default/secrets/mcp-auth", {
      method: "PUT",
      json: { apiVersion: "v1", kind: "Secret", metadata: { name: "mcp-auth" }, stringData: { header: "Bearer t0ken" } },
    });
    expect(secret.status).toBeLessThan(300);
    const agent = {
      apiVersion: "pai.io/v1",
      kind: "Agent",
      metadata: { name: "mcp-user" },
      spec: {
        models: ["anthropic/claude-mcp"],
        env: [
          { name: "SPEC_VAR", value: "from the spec" },
          { name: "MARK", value: marker },
        ],
        mcpServers: [
          { name: "local", command: process.execPath, args: [STDIO], env: [{ name: "OWN", value: "its own" }], tools: ["add", "echo_env"] },
          { name: "remote", url: http.url, headers: [{ name: "Authorization", valueFrom: { secretKeyRef: { name: "mcp-auth", key: "header" } } }], tools: ["headers"] },
          { name: "broken", command: "/nonexistent/mcp-server" },
        ],
      },
    };
    const put = await server.api(`${NS}/agents/mcp-user`, { method: "PUT", json: agent });
    expect(put.status).toBeLessThan(300);

    models.script((_model, req) => {
      const results = toolResultsOf(req);
      if (results) return { text: results.map((r) => `${r.isError ? "ERR " : ""}${r.content}`).join(" | ") };
      return callTools([
        { name: "mcp__local__add", input: { a: 2, b: 3 } },
        { name: "mcp__local__echo_env", input: { name: "SPEC_VAR" } },
        { name: "mcp__local__echo_env", input: { name: "OWN" } },
        { name: "mcp__remote__headers", input: {} },
      ]);
    });
    const res = await server.api(`${NS}/sessions`, { method: "POST", json: { agentDefinition: "mcp-user", title: "use your tools" } });
    expect(res.status).toBe(201);
    const name = ((await res.json()) as { session: string }).session;

    const read = (path: string) => server.api(path).then((r) => r.json() as Promise<any>);
    const done = await eventually(async () => {
      const s = await read(`/agents/${name}?namespace=default`);
      return ["Complete", "Error"].includes(s.phase) ? s : undefined;
    }, 20_000, "the session to end");
    expect(done.error).toBeNull();
    expect(done).toMatchObject({ phase: "Complete", response: "5 | from the spec | its own | Bearer t0ken" });

    // The model was offered the allowed MCP tools, with the servers' schemas.
    const offered = models.requestsFor("claude-mcp")[0]!.tools;
    expect(offered.map((t) => t.name).sort()).toEqual(["mcp__local__add", "mcp__local__echo_env", "mcp__remote__headers"]);
    expect(offered.find((t) => t.name === "mcp__local__add")!.inputSchema).toMatchObject({ type: "object", required: ["a", "b"] });

    const events = (await read(`/agents/${name}/events?namespace=default`)).events as { type: string; content: any }[];
    const mcp = events.filter((e) => e.type === "session.mcp_server").map((e) => e.content);
    expect(mcp).toContainEqual({ server: "local", tools: ["add", "echo_env"] });
    expect(mcp).toContainEqual({ server: "remote", tools: ["headers"] });
    const errors = events.filter((e) => e.type === "session.error").map((e) => e.content);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ server: "broken" });
    expect(errors[0].message).toStartWith("MCP server broken failed to start: ");
    expect(events.filter((e) => e.type === "agent.tool_result").map((e) => e.content.isError)).toEqual([false, false, false, false]);
    // The secret header never shows up in the events.
    expect(JSON.stringify(events.filter((e) => e.type !== "agent.tool_result" && e.type !== "agent.message"))).not.toContain("t0ken");

    // The stdio server's stderr log sits in the session's folder; the server is gone with the session.
    expect(existsSync(join(server.dataDir, "sessions", "default", name, ".pai", "mcp-local.log"))).toBe(true);
    await eventually(() => procsWith(marker).length === 0, 5000, "the stdio server to be gone");
  }, 40_000);

  test("an agent that reuses its process starts its stdio MCP server for each session and stops it at the session's end", async () => {
    const marker = crypto.randomUUID();
    const agent = {
      apiVersion: "pai.io/v1",
      kind: "Agent",
      metadata: { name: "mcp-keeper" },
      spec: {
        models: ["anthropic/claude-mcp-keeper"],
        harness: { reuse: true },
        env: [{ name: "MARK", value: marker }],
        mcpServers: [{ name: "local", command: process.execPath, args: [STDIO], tools: ["echo_env"] }],
      },
    };
    expect((await server.api(`${NS}/agents/mcp-keeper`, { method: "PUT", json: agent })).status).toBeLessThan(300);
    models.script((model, req) => {
      if (model !== "claude-mcp-keeper") return undefined;
      const results = toolResultsOf(req);
      if (results) return { text: results.map((r) => r.content).join(" | ") };
      return callTools([{ name: "mcp__local__echo_env", input: { name: "RUN" } }]);
    });
    const read = (path: string) => server.api(path).then((r) => r.json() as Promise<any>);
    const pids: number[] = [];
    for (const run of ["first", "second"]) {
      const res = await server.api(`${NS}/sessions`, { method: "POST", json: { agentDefinition: "mcp-keeper", title: "which run?", env: [{ name: "RUN", value: run }] } });
      expect(res.status).toBe(201);
      const name = ((await res.json()) as { session: string }).session;
      // The server runs while the session does; its process is the harness's child.
      const [mcpPid] = await eventually(() => (procsWith(marker).length ? procsWith(marker) : undefined), 10_000, "the stdio server running");
      pids.push(mcpPid!);
      const done = await eventually(async () => {
        const s = await read(`/agents/${name}?namespace=default`);
        return ["Complete", "Error"].includes(s.phase) ? s : undefined;
      }, 20_000, "the session to end");
      // Each session's server saw that session's env, not the one before.
      expect(done).toMatchObject({ phase: "Complete", response: run });
      // Gone with the session, although the harness process stays for the agent's next one.
      await eventually(() => procsWith(marker).length === 0, 5000, "the stdio server to be gone");
    }
    expect(pids[0]).not.toBe(pids[1]);
    const metrics = await (await server.api("/metrics")).text();
    expect(Number(/^pai_session_processes_total\{start="reused"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
  }, 40_000);
});
