/**
 * The CLI finds a local server without --server/--token through the context file, with several
 * servers on one machine: one entry per data dir, the live one is chosen (./.pai or PAI_DATA_DIR
 * first, else the newest), a stopped or killed server does not hide a running one, the old
 * single-entry file is still read, and with no server left the CLI says so.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { contextFile } from "../../src/config/context";
import { runCli, startServer, tempDir, type TestServer } from "../helpers";

const running: TestServer[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});

async function serve(dataDir?: string): Promise<TestServer> {
  const s = await startServer({ dataDir });
  running.push(s);
  return s;
}

async function stop(s: TestServer) {
  await s.stop();
  running.splice(running.indexOf(s), 1);
}

/** A server with one agent named after it, so a listing shows which server answered. */
async function serveNamed(name: string, dataDir?: string) {
  const s = await serve(dataDir);
  const res = await s.api(`/apis/pai.io/v1/namespaces/default/agents/${name}`, {
    method: "PUT",
    json: { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name }, spec: { models: ["pai/echo"] } },
  });
  expect(res.status).toBe(201);
  return s;
}

/** The CLI as a user runs it: no --server, no --token, no PAI_* variables, from a folder without .pai. */
const cli = (args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) => runCli(args, { cwd: opts.cwd ?? tempDir("pai-cwd-"), env: opts.env });
const listed = async (opts?: { cwd?: string; env?: Record<string, string> }) => {
  const r = await cli(["get", "agent-defs", "-o", "json"], opts);
  expect(r.stderr).toBe("");
  return (JSON.parse(r.stdout) as { items: { metadata: { name: string } }[] }).items.map((a) => a.metadata.name);
};

describe("several local servers", () => {
  test("stopping the newer server leaves the CLI talking to the older one, still running", async () => {
    await serveNamed("first");
    const second = await serveNamed("second");
    expect(await listed()).toEqual(["second"]);
    await stop(second);
    expect(await listed()).toEqual(["first"]);
  });

  test("a server killed with SIGKILL (entry left behind) does not hide the one still running", async () => {
    await serveNamed("survivor");
    const killed = await serveNamed("killed");
    killed.proc.kill("SIGKILL");
    await killed.proc.exited;
    running.splice(running.indexOf(killed), 1);
    expect(await listed()).toEqual(["survivor"]);
  });

  test("./.pai in the working folder wins over a newer server, and PAI_DATA_DIR over both", async () => {
    const project = tempDir("pai-project-");
    await serveNamed("project", join(project, ".pai"));
    const other = tempDir("pai-data-");
    await serveNamed("other", other);
    await serveNamed("newest");
    expect(await listed({ cwd: project })).toEqual(["project"]);
    expect(await listed()).toEqual(["newest"]);
    expect(await listed({ env: { PAI_DATA_DIR: other } })).toEqual(["other"]);
  });

  test("each server has its own entry, removed when it stops; with none left the CLI says no server is running", async () => {
    const a = await serve();
    const b = await serve();
    const entries = () => JSON.parse(readFileSync(contextFile(), "utf8")) as { version: number; servers: Record<string, { server: string; pid: number; tokenFile: string }> };
    const file = entries();
    expect(file.version).toBe(2);
    expect(file.servers[realpathSync(a.dataDir)]).toMatchObject({ server: a.url, pid: a.proc.pid, tokenFile: join(a.dataDir, "admin-token") });
    expect(file.servers[realpathSync(b.dataDir)]).toMatchObject({ server: b.url, pid: b.proc.pid });
    await stop(a);
    expect(Object.keys(entries().servers)).not.toContain(realpathSync(a.dataDir));
    await stop(b);
    expect(entries().servers).toEqual({});
    const r = await cli(["get", "agent-defs"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: no pai server is running: none is registered in .*context\.json, and nothing answers at http:\/\/127\.0\.0\.1:8080 .*Start one with `pai serve`, or pass --server URL \(PAI_SERVER\)/);
  });

  test("the old single-server context file is still read", async () => {
    const a = await serveNamed("legacy");
    // As an older pai wrote it: one object, no pid.
    mkdirSync(join(contextFile(), ".."), { recursive: true });
    writeFileSync(contextFile(), JSON.stringify({ server: a.url, tokenFile: join(a.dataDir, "admin-token") }));
    expect(await listed()).toEqual(["legacy"]);
  });
});
