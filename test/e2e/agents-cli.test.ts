/**
 * The product page's "Enable the webhook" and "Rotating the token" through the real CLI and the
 * real server: apply, get (line, yaml, table), delete, token rotation, webhook trigger removal.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { agentYaml, eventually, startServer, tempDir, WEBHOOK_LINE, type TestServer } from "../helpers";

let server: TestServer;
const work = tempDir("pai-cli-");

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.stop();
});

function writeManifest(name: string, text: string): string {
  const file = join(work, name);
  writeFileSync(file, text);
  return file;
}

async function webhookUrl(name: string, ns = "default"): Promise<{ url: string; token: string }> {
  const r = await server.cli(["get", "agent-def", name, "-n", ns]);
  expect(r.stderr).toBe("");
  const m = WEBHOOK_LINE(ns, name).exec(r.stdout);
  if (!m) throw new Error(`no Webhook URL line in:\n${r.stdout}`);
  return { url: m[1]!, token: m[2]! };
}

/** The GET verification ping: 200 for the current token, 401 for any other. */
const ping = (url: string) => fetch(url.replace(/^http:\/\/localhost:\d+/, server.url)).then((r) => r.status);

describe("pai apply and get agent-def", () => {
  test("apply the product page's agent; get prints its Webhook URL with a 256-bit token", async () => {
    const file = writeManifest("agent-definition.yaml", agentYaml("my-agent"));
    const applied = await server.cli(["apply", "-f", file]);
    expect(applied).toMatchObject({ code: 0, stdout: "agent-def/my-agent created\n" });

    const { url, token } = await eventually(() => webhookUrl("my-agent"), 5000, "webhook URL");
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(url).toBe(`http://localhost:${server.port}/webhooks/default/my-agent/${token}`);
    expect(await ping(url)).toBe(200);

    // The token lives in the Secret named pai-webhook-my-agent.
    const secret = await server.cli(["get", "secret", "pai-webhook-my-agent", "-o", "json"]);
    const data = JSON.parse(secret.stdout).data;
    expect(Buffer.from(data.token, "base64").toString()).toBe(token);
  });

  test("applying the same file again changes nothing", async () => {
    const before = await webhookUrl("my-agent");
    const again = await server.cli(["apply", "-f", join(work, "agent-definition.yaml")]);
    expect(again).toMatchObject({ code: 0, stdout: "agent-def/my-agent unchanged\n" });
    expect((await webhookUrl("my-agent")).token).toBe(before.token);
  });

  test("-o yaml prints the whole object with status", async () => {
    const r = await server.cli(["get", "agent-def", "my-agent", "-o", "yaml"]);
    expect(r.code).toBe(0);
    const obj = parse(r.stdout);
    expect(obj).toMatchObject({ apiVersion: "pai.io/v1", kind: "Agent", metadata: { name: "my-agent", namespace: "default", generation: 1 } });
    expect(obj.spec.models).toEqual(["anthropic/claude-sonnet-4-6"]);
    expect(obj.status.observedGeneration).toBe(1);
    expect(obj.status.webhookUrl).toBe((await webhookUrl("my-agent")).url);
    const ready = obj.status.conditions.find((c: { type: string }) => c.type === "Ready");
    expect(ready).toMatchObject({ status: "True", reason: "Reconciled", observedGeneration: 1 });
    expect(Date.parse(ready.lastTransitionTime)).toBeGreaterThan(0);

    const json = JSON.parse((await server.cli(["get", "agent-def", "my-agent", "-o", "json"])).stdout);
    expect(json).toEqual(obj);
  });

  test("get agent-defs prints a table; -A adds the namespace column", async () => {
    const other = writeManifest("other.yaml", agentYaml("other", "", { namespace: "team-b", webhook: false }));
    expect((await server.cli(["apply", "-f", other])).code).toBe(0);
    const r = await server.cli(["get", "agent-defs"]);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^NAME\s+MODELS\s+WEBHOOK\s+READY\s+AGE$/);
    expect(lines.some((l) => /^my-agent\s+anthropic\/claude-sonnet-4-6\s+yes\s+True\s+\d+[smhd]$/.test(l))).toBe(true);
    expect(lines.some((l) => l.startsWith("other"))).toBe(false);

    const all = await server.cli(["get", "agent-defs", "-A"]);
    expect(all.stdout).toMatch(/^NAMESPACE\s+NAME/);
    expect(all.stdout).toMatch(/team-b\s+other\s+anthropic\/claude-sonnet-4-6\s+no\s+True/);
  });

  test("an agent in another namespace gets a URL with that namespace", async () => {
    const file = writeManifest("ns.yaml", agentYaml("ns-agent", "", { namespace: "team-b" }));
    expect((await server.cli(["apply", "-f", file])).code).toBe(0);
    const { url } = await eventually(() => webhookUrl("ns-agent", "team-b"));
    expect(url).toContain("/webhooks/team-b/ns-agent/");
  });
});

describe("rotating the token", () => {
  test("deleting pai-webhook-my-agent makes a new token within seconds; the old one is refused", async () => {
    const old = await webhookUrl("my-agent");
    const del = await server.cli(["delete", "secret", "pai-webhook-my-agent", "-n", "default"]);
    expect(del).toMatchObject({ code: 0, stdout: 'secret "pai-webhook-my-agent" deleted\n' });

    const fresh = await eventually(async () => {
      const now = await webhookUrl("my-agent");
      return now.token !== old.token ? now : undefined;
    }, 5000, "a new token");
    expect(fresh.token).toMatch(/^[0-9a-f]{64}$/);
    expect(await ping(old.url)).toBe(401);
    expect(await ping(fresh.url)).toBe(200);
  });
});

describe("webhook trigger removed and added back", () => {
  test("removing triggers[].webhook removes the secret and URL; adding it back makes a new token", async () => {
    const before = await webhookUrl("my-agent");
    const file = writeManifest("agent-definition.yaml", agentYaml("my-agent", "", { webhook: false }));
    expect((await server.cli(["apply", "-f", file])).stdout).toBe("agent-def/my-agent configured\n");

    await eventually(async () => (await server.cli(["get", "agent-def", "my-agent"])).stdout.includes("Webhook URL <none>"), 5000, "URL removed");
    const secret = await server.cli(["get", "secret", "pai-webhook-my-agent"]);
    expect(secret.code).toBe(1);
    expect(secret.stderr).toContain('secrets "pai-webhook-my-agent" not found');
    expect(await ping(before.url)).toBe(404);
    const yaml = parse((await server.cli(["get", "agent-def", "my-agent", "-o", "yaml"])).stdout);
    expect(yaml.metadata.generation).toBe(2);
    expect(yaml.status.webhookUrl).toBeUndefined();
    expect(yaml.status.observedGeneration).toBe(2);

    writeManifest("agent-definition.yaml", agentYaml("my-agent"));
    expect((await server.cli(["apply", "-f", file])).code).toBe(0);
    const after = await eventually(() => webhookUrl("my-agent"), 5000, "URL back");
    expect(after.token).not.toBe(before.token);
    expect(await ping(after.url)).toBe(200);
  });
});

describe("pai delete agent-def", () => {
  test("removes the agent and its secret", async () => {
    const { url } = await webhookUrl("my-agent");
    const r = await server.cli(["delete", "agent-def", "my-agent"]);
    expect(r).toMatchObject({ code: 0, stdout: 'agent-def "my-agent" deleted\n' });
    const get = await server.cli(["get", "agent-def", "my-agent"]);
    expect(get.code).toBe(1);
    expect(get.stderr).toContain('agents.pai.io "my-agent" not found');
    expect((await server.cli(["get", "secret", "pai-webhook-my-agent"])).code).toBe(1);
    expect(await ping(url)).toBe(404);
  });

  test("deleting an agent that does not exist fails with a message", async () => {
    const r = await server.cli(["delete", "agent-def", "nope"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('error: agents.pai.io "nope" not found\n');
  });
});

describe("pai apply with bad input", () => {
  test("names file, line and field; applies nothing from a file with an error", async () => {
    const file = writeManifest(
      "bad.yaml",
      `${agentYaml("good-one")}---\napiVersion: pai.io/v1\nkind: Agent\nmetadata:\n  name: Bad_Name\nspec:\n  models:\n    - foo/bar\n`,
    );
    const r = await server.cli(["apply", "-f", file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}:16:9: metadata.name: "Bad_Name" is not a DNS-1123 label`);
    expect(r.stderr).toContain(`${file}:19:7: spec.models[0]: unknown model "foo/bar"`);
    expect((await server.cli(["get", "agent-def", "good-one"])).code).toBe(1);
  });

  test("malformed YAML, wrong kind, unknown field", async () => {
    const cases: [string, string, RegExp][] = [
      ["syntax.yaml", "apiVersion: pai.io/v1\nkind: Agent\nmetadata: [unclosed\n", /syntax\.yaml:\d+:\d+: /],
      ["kind.yaml", agentYaml("k").replace("kind: Agent", "kind: Deployment"), /kind\.yaml:2:7: kind: must be "Agent", got string "Deployment"/],
      ["version.yaml", agentYaml("v").replace("pai.io/v1", "pai.io/v2"), /version\.yaml:1:13: apiVersion: must be "pai.io\/v1"/],
      ["unknown.yaml", agentYaml("u", "  modle: x\n"), /unknown\.yaml:\d+:\d+: spec\.modle: unknown field/],
    ];
    for (const [name, text, expected] of cases) {
      const r = await server.cli(["apply", "-f", writeManifest(name, text)]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(expected);
    }
  });

  test("apply from stdin", async () => {
    const r = await server.cli(["apply", "-f", "-"], { stdin: agentYaml("from-stdin") });
    expect(r).toMatchObject({ code: 0, stdout: "agent-def/from-stdin created\n" });
  });
});

describe("pai create token", () => {
  test("prints a new PaiAccessToken for the namespace, stored only as a hash", async () => {
    const r = await server.cli(["create", "token", "-n", "team-b", "--name", "ci"]);
    expect(r.code).toBe(0);
    const token = r.stdout.trim();
    expect(token).toMatch(/^pai_[0-9a-f]{64}$/);
    const list = await server.cli(["get", "tokens", "-n", "team-b", "-o", "json"]);
    const items = JSON.parse(list.stdout).items;
    expect(items).toHaveLength(1);
    expect(items[0].metadata).toMatchObject({ name: "ci", namespace: "team-b" });
    expect(list.stdout).not.toContain(token.slice(4));
    const db = await Bun.file(join(server.dataDir, "pai.db")).arrayBuffer();
    expect(Buffer.from(db).includes(token.slice(4))).toBe(false);
    // A namespace token is a credential, but not the admin's: it reads its namespace's agents, and writes none.
    const res = await fetch(`${server.url}/apis/pai.io/v1/namespaces/team-b/agents`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    const write = await fetch(`${server.url}/apis/pai.io/v1/namespaces/team-b/agents`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ apiVersion: "pai.io/v1", kind: "Agent", metadata: { name: "x" }, spec: { models: ["pai/echo"] } }),
    });
    expect(write.status).toBe(403);
  });

  test("the CLI finds the admin token by itself on the server's machine", async () => {
    // No PAI_TOKEN: the CLI reads the context `pai serve` wrote (HOME is a temp dir in tests).
    const r = await server.cli(["get", "agent-defs", "-A"], { env: { PAI_TOKEN: "" } });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("NAMESPACE");
  });

  test("a wrong token is refused with a hint", async () => {
    const r = await server.cli(["get", "agent-defs"], { env: { PAI_TOKEN: "pai_wrong" } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("invalid or revoked token");
  });
});

describe("more CLI verbs", () => {
  test("pai delete -f deletes the agents a file defines", async () => {
    const file = writeManifest("pair.yaml", `${agentYaml("first")}---\n${agentYaml("second")}`);
    expect((await server.cli(["apply", "-f", file])).stdout).toBe("agent-def/first created\nagent-def/second created\n");
    const del = await server.cli(["delete", "-f", file]);
    expect(del).toMatchObject({ code: 0, stdout: 'agent-def "first" deleted\nagent-def "second" deleted\n' });
    expect((await server.cli(["get", "agent-def", "first"])).code).toBe(1);
  });

  test("pai apply -f DIR applies every YAML file in it", async () => {
    const dir = join(work, "many");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "a.yaml"), agentYaml("dir-a"));
    writeFileSync(join(dir, "b.yml"), agentYaml("dir-b"));
    writeFileSync(join(dir, "notes.txt"), "not yaml");
    expect((await server.cli(["apply", "-f", dir])).stdout).toBe("agent-def/dir-a created\nagent-def/dir-b created\n");
  });

  test("secrets: create, list as a table, show, delete; tokens: revoke", async () => {
    expect((await server.cli(["create", "secret", "gh", "--from-literal", "secret=s3", "--from-literal", "other=x"])).stdout).toBe("secret/gh created\n");
    const table = await server.cli(["get", "secrets"]);
    expect(table.stdout).toMatch(/^NAME\s+TYPE\s+DATA\s+AGE$/m);
    expect(table.stdout).toMatch(/^gh\s+Opaque\s+2\s+\d+s$/m);
    expect((await server.cli(["create", "secret", "bad", "--from-literal", "novalue"])).stderr).toBe('error: --from-literal must be KEY=VALUE (got "novalue")\n');
    expect((await server.cli(["delete", "secret", "gh"])).stdout).toBe('secret "gh" deleted\n');

    const token = (await server.cli(["create", "token", "-n", "revoke-me"])).stdout.trim();
    const id = JSON.parse((await server.cli(["get", "tokens", "-n", "revoke-me", "-o", "json"])).stdout).items[0].metadata.uid;
    expect((await server.cli(["delete", "token", id, "-n", "revoke-me"])).stdout).toBe(`token "${id}" deleted\n`);
    const res = await fetch(`${server.url}/agents/x?namespace=revoke-me`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(401);
  });

  test("help, and usage errors exit 2", async () => {
    const help = await server.cli(["help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("pai apply -f FILE|DIR|-");
    expect((await server.cli(["apply"])).code).toBe(2);
    expect((await server.cli(["get", "agent-defs", "-o", "xml"])).stderr).toBe('error: -o must be yaml or json (got "xml")\n');
    expect((await server.cli(["get", "agent-defs", "-n", "Bad_NS"])).code).toBe(2);
  });
});
