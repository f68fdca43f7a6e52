/**
 * The compiled binary: `npm run build` makes dist/pai, and a copy of it, run from a folder far from
 * the repo, serves the API, the offline docs page with its embedded assets, and the CLI.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { buildBinary } from "../build";
import { eventually, removeDir, ROOT, tempDir } from "./helpers";

const work = tempDir("pai-build-test-");
const bin = join(work, "pai");
const dataDir = join(work, "data");
const cwd = join(work, "cwd");
const env = { ...process.env, HOME: work, XDG_CONFIG_HOME: join(work, ".config") };
let server: Subprocess<"ignore", "ignore", "pipe"> | undefined;
let url = "";
let port = 0;

/** Starts the copied binary on a free port and resolves once it logs where it listens. */
async function serve(): Promise<void> {
  mkdirSync(cwd, { recursive: true });
  const proc = (server = Bun.spawn([bin, "serve", "--port", "0", "--host", "127.0.0.1", "--data-dir", dataDir], { cwd, env, stdin: "ignore", stdout: "ignore", stderr: "pipe" }));
  let logs = "";
  const decoder = new TextDecoder();
  // Keeps reading stderr for the server's whole life: a closed pipe would kill it on its next log line.
  const listening = new Promise<number>((resolve, reject) => {
    (async () => {
      for await (const chunk of proc.stderr) {
        logs += decoder.decode(chunk, { stream: true });
        const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(logs);
        if (m) resolve(Number(m[1]));
      }
      reject(new Error(`the binary exited before listening:\n${logs}`));
    })();
  });
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`the binary did not listen in 10 s:\n${logs}`)), 10_000));
  port = await Promise.race([listening, timeout]);
  url = `http://127.0.0.1:${port}`;
}

/** Runs the copied binary as a client of the server. */
async function cli(args: string[]) {
  const token = readFileSync(join(dataDir, "admin-token"), "utf8").trim();
  const proc = Bun.spawn([bin, ...args], { cwd, env: { ...env, PAI_SERVER: url, PAI_TOKEN: token }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

beforeAll(async () => {
  const { outfile } = await buildBinary();
  copyFileSync(outfile, bin);
  chmodSync(bin, 0o755);
  await serve();
}, 120_000);

afterAll(async () => {
  if (server) {
    server.kill("SIGTERM");
    const killer = setTimeout(() => server?.kill("SIGKILL"), 3000);
    await server.exited;
    clearTimeout(killer);
  }
  removeDir(work);
});

describe("the compiled binary, copied out of the repo", () => {
  test("pai version", () => {
    const r = Bun.spawnSync([bin, "version"], { cwd, env });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toMatch(/^pai \d+\.\d+\.\d+/);
  });

  test("GET /readyz is 200", async () => {
    const res = await fetch(`${url}/readyz`);
    expect(res.status).toBe(200);
  });

  test("GET /openapi/json lists the agents API", async () => {
    const res = await fetch(`${url}/openapi/json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toContain("/apis/pai.io/v1/namespaces/{namespace}/agents/{name}");
  });

  test("GET /openapi is an offline page whose script is embedded in the binary", async () => {
    const res = await fetch(`${url}/openapi`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    const html = await res.text();
    expect(html).toContain("/openapi/assets/swagger-ui-bundle.js");
    expect(html).not.toMatch(/<script[^>]*\ssrc\s*=\s*["']?https?:\/\//i);
    expect(html).not.toMatch(/<link[^>]*\shref\s*=\s*["']?https?:\/\//i);

    const asset = await fetch(`${url}/openapi/assets/swagger-ui-bundle.js`);
    expect(asset.status).toBe(200);
    expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
  });

  test("pai apply -f, then pai get agent-def prints the Webhook URL", async () => {
    const name = "binary-echo";
    const file = join(work, "echo.yaml");
    const example = readFileSync(join(ROOT, "manifests", "examples", "echo.yaml"), "utf8");
    writeFileSync(file, example.replace(/^  name: echo$/m, `  name: ${name}`));

    const applied = await cli(["apply", "-f", file]);
    expect(applied).toMatchObject({ code: 0, stdout: `agent-def/${name} created\n` });

    const line = new RegExp(`^Webhook URL http:\\/\\/localhost:\\d+\\/webhooks\\/default\\/${name}\\/[0-9a-f]{64}$`, "m");
    const got = await eventually(async () => {
      const r = await cli(["get", "agent-def", name]);
      return r.code === 0 && line.test(r.stdout) ? r : undefined;
    }, 5000, "Webhook URL line");
    expect(got.stdout).toMatch(line);
    expect(got.stdout).toContain(`localhost:${port}/`);
  });

  test("a webhook POST with wait runs a session in a child of the binary itself and returns the reply", async () => {
    const got = await cli(["get", "agent-def", "binary-echo", "-o", "json"]);
    expect(got).toMatchObject({ code: 0, stderr: "" });
    const agent = JSON.parse(got.stdout) as { status: { webhookUrl: string } };
    const hook = agent.status.webhookUrl.replace(/^http:\/\/localhost:\d+/, url);
    const res = await fetch(hook, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ title: "hello from the binary", wait: 30 }) });
    expect(await res.json()).toMatchObject({ agentDefinition: "binary-echo", response: "hello from the binary", phase: "Complete" });
    const run = await cli(["run", "binary-echo", "and", "from", "pai", "run", "--wait"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("and from pai run\n");
  });
});
