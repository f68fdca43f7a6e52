/**
 * The server process itself: a second server on the same data dir fails fast, a restart keeps
 * agents, secrets and tokens (no token changes), bad flags are usage errors, files are private.
 */
import { describe, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import { agentYaml, eventually, ROOT, runCli, startServer, tempDir, WEBHOOK_LINE } from "../helpers";

describe("one data dir, one server", () => {
  test("a second server on the same data dir fails fast with a message; the first is unharmed", async () => {
    const first = await startServer();
    try {
      const started = Date.now();
      const second = await runCli(["serve", "--port", "0", "--host", "127.0.0.1", "--data-dir", first.dataDir]);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(second.code).toBe(1);
      expect(second.stderr).toBe(`error: data dir ${first.dataDir} is in use by another pai server (stop it, or pass a different --data-dir)\n`);
      const apply = await first.cli(["apply", "-f", "-"], { stdin: agentYaml("still-fine") });
      expect(apply.code).toBe(0);
      const db = await first.api("/apis/pai.io/v1/namespaces/default/agents/still-fine");
      expect(db.status).toBe(200);
    } finally {
      await first.stop();
    }
  });

  test("after the first server stops, the data dir can be served again", async () => {
    const dataDir = tempDir("pai-data-");
    const a = await startServer({ dataDir });
    expect(await a.stop()).toBe(0);
    const b = await startServer({ dataDir });
    expect((await fetch(`${b.url}/readyz`)).status).toBe(200);
    await b.stop();
  });

  test("a server killed with SIGKILL leaves no stale lock", async () => {
    const dataDir = tempDir("pai-data-");
    const a = await startServer({ dataDir });
    a.proc.kill("SIGKILL");
    await a.proc.exited;
    const b = await startServer({ dataDir });
    expect((await fetch(`${b.url}/readyz`)).status).toBe(200);
    await b.stop();
  });
});

describe("restart", () => {
  test("agents, secrets, access tokens and the admin token survive; no token changes", async () => {
    const dataDir = tempDir("pai-data-");
    const a = await startServer({ dataDir });
    await a.cli(["apply", "-f", "-"], { stdin: agentYaml("durable") });
    await a.cli(["create", "secret", "linear", "--from-literal", "signing=s3cret"]);
    const nsToken = (await a.cli(["create", "token", "-n", "team"])).stdout.trim();
    const before = await eventually(async () => WEBHOOK_LINE("default", "durable").exec((await a.cli(["get", "agent-def", "durable"])).stdout), 5000, "url");
    const yamlBefore = (await a.cli(["get", "agent-def", "durable", "-o", "json"])).stdout;
    expect(await a.stop()).toBe(0);

    const b = await startServer({ dataDir });
    try {
      expect(b.token).toBe(a.token);
      expect(b.logs()).not.toContain("created admin token");
      const after = WEBHOOK_LINE("default", "durable").exec((await b.cli(["get", "agent-def", "durable"])).stdout);
      expect(after![2]).toBe(before[2]!);
      const json = JSON.parse((await b.cli(["get", "agent-def", "durable", "-o", "json"])).stdout);
      const old = JSON.parse(yamlBefore);
      expect(json.metadata).toEqual({ ...old.metadata, resourceVersion: json.metadata.resourceVersion });
      expect(json.status.webhookUrl).toBe(old.status.webhookUrl.replace(`:${a.port}/`, `:${b.port}/`));
      const secret = JSON.parse((await b.cli(["get", "secret", "linear", "-o", "json"])).stdout);
      expect(Buffer.from(secret.data.signing, "base64").toString()).toBe("s3cret");
      const tokens = JSON.parse((await b.cli(["get", "tokens", "-n", "team", "-o", "json"])).stdout);
      expect(tokens.items).toHaveLength(1);
      // The namespace token still authenticates (it gets 403 on the admin API, not 401).
      const res = await fetch(`${b.url}/apis/pai.io/v1/agents`, { headers: { authorization: `Bearer ${nsToken}` } });
      expect(res.status).toBe(403);
    } finally {
      await b.stop();
    }
  });

  test("--public-url sets the base of webhook URLs without changing the token", async () => {
    const dataDir = tempDir("pai-data-");
    const a = await startServer({ dataDir });
    await a.cli(["apply", "-f", "-"], { stdin: agentYaml("public") });
    const before = await eventually(async () => WEBHOOK_LINE("default", "public").exec((await a.cli(["get", "agent-def", "public"])).stdout), 5000, "url");
    await a.stop();
    const b = await startServer({ dataDir, args: ["--public-url", "https://agents.example.com/"] });
    try {
      const line = (await b.cli(["get", "agent-def", "public"])).stdout.split("\n").find((l) => l.startsWith("Webhook URL"));
      expect(line).toBe(`Webhook URL https://agents.example.com/webhooks/default/public/${before[2]}`);
    } finally {
      await b.stop();
    }
  });

  test("the admin token file and the database are readable by the owner only", async () => {
    const s = await startServer();
    try {
      expect(statSync(join(s.dataDir, "admin-token")).mode & 0o777).toBe(0o600);
      expect(statSync(join(s.dataDir, "pai.db")).mode & 0o777).toBe(0o600);
    } finally {
      await s.stop();
    }
  });
});

describe("configuration errors", () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [["--port", "http"], {}, /--port must be a number from 0 to 65535 \(got "http"\)/],
    [[], { PAI_PORT: "99999" }, /--port must be a number from 0 to 65535 \(got "99999"\)/],
    [["--public-url", "agents.example.com"], {}, /--public-url must be an absolute http\(s\) URL/],
    [["--trusted-proxies", "10.0.0.0/8,nonsense"], {}, /--trusted-proxies: "nonsense" is not an IP address or CIDR range/],
    [["--bogus"], {}, /unknown flag --bogus/],
  ];
  for (const [args, env, message] of cases) {
    test(`serve ${args.join(" ") || JSON.stringify(env)} exits 2 with a message`, async () => {
      const r = await runCli(["serve", "--data-dir", tempDir(), ...args], { env });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
    });
  }

  test("unknown CLI command and resource are usage errors", async () => {
    expect(await runCli(["frobnicate"])).toMatchObject({ code: 2, stderr: 'error: unknown command "frobnicate" (see pai help)\n' });
    const r = await runCli(["get", "pods"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown resource "pods"');
  });

  test("the CLI says so when no server is running", async () => {
    const r = await runCli(["get", "agent-defs"], { env: { PAI_SERVER: "http://127.0.0.1:9", PAI_TOKEN: "x" } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("cannot reach the pai server at http://127.0.0.1:9");
  });
});

describe("npx pai", () => {
  test("the package's bin runs the CLI with the Bun that npm installed, from Node", async () => {
    const proc = Bun.spawn(["node", "bin/pai.cjs", "version"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    expect(code).toBe(0);
    expect(out).toBe(`pai ${(await Bun.file(`${ROOT}/package.json`).json()).version}\n`);
    const bad = Bun.spawn(["node", "bin/pai.cjs", "frobnicate"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    expect(await bad.exited).toBe(2);
  });
});

describe("one port, one server", () => {
  test("a second server on a port in use fails fast with a message instead of sharing it", async () => {
    const first = await startServer();
    try {
      const r = await runCli(["serve", "--port", String(first.port), "--host", "127.0.0.1", "--data-dir", tempDir()]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`error: port ${first.port} is already in use (pass --port or set PAI_PORT)`);
    } finally {
      await first.stop();
    }
  });
});

describe("the Quick start", () => {
  test("the example agents are served and the README's curl call answers as shown", async () => {
    const pkg = await Bun.file(`${ROOT}/package.json`).json();
    expect(pkg.scripts.start).toBe("bun src/main.ts serve --manifests manifests/examples --no-write-status");
    const before = await Bun.file(`${ROOT}/manifests/examples/echo.yaml`).text();
    const s = await startServer({ manifests: `${ROOT}/manifests/examples`, args: ["--no-write-status"] });
    try {
      const list = await s.cli(["get", "agent-defs"]);
      expect(list.stdout).toMatch(/^echo\s+pai\/echo\s+yes\s+True/m);
      expect(list.stdout).toMatch(/^my-agent\s+anthropic\/claude-sonnet-4-6,pai\/echo\s+yes\s+True/m);
      const url = JSON.parse((await s.cli(["get", "agent-def", "echo", "-o", "json"])).stdout).status.webhookUrl.replace(/^http:\/\/localhost:\d+/, s.url);
      const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: '{"title": "what sound does a cow make?", "wait": 30}' });
      expect(await res.json()).toEqual({ session: expect.stringMatching(/^echo-wh-[0-9a-f]{8}$/), agentDefinition: "echo", response: "what sound does a cow make?", phase: "Complete" });
      // With no model key, my-agent falls back to pai/echo, so it answers too.
      const mine = JSON.parse((await s.cli(["get", "agent-def", "my-agent", "-o", "json"])).stdout).status.webhookUrl.replace(/^http:\/\/localhost:\d+/, s.url);
      const reply = await fetch(mine, { method: "POST", headers: { "Content-Type": "application/json" }, body: '{"title": "hello", "wait": 30}' });
      expect(await reply.json()).toMatchObject({ agentDefinition: "my-agent", response: "hello", phase: "Complete" });
    } finally {
      await s.stop();
    }
    // The tracked example files are left as they were: no token written into them.
    expect(await Bun.file(`${ROOT}/manifests/examples/echo.yaml`).text()).toBe(before);
  });
});
