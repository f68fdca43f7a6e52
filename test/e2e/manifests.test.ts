/**
 * The manifests folder as a source of agents, through a real server watching a temp folder:
 * applied at start and on create/change/delete, status written back keeping comments, no
 * reconcile loop, and bad documents reported while the last good version keeps working.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { agentYaml, eventually, startServer, tempDir, type TestServer } from "../helpers";

const dir = tempDir("pai-manifests-");
let server: TestServer;

const COMMENTED = `# Team agents — keep this comment
apiVersion: pai.io/v1   # the API group
kind: Agent
metadata:
  name: planner
spec:
  models: [anthropic/claude-sonnet-4-6, pai/echo]   # fallback last
  triggers:
    - webhook: {}
  system: |
    Plan the project.
---
# second document
apiVersion: pai.io/v1
kind: Agent
metadata:
  name: reviewer
spec:
  models:
    - openai/gpt-4o
`;

async function agent(name: string) {
  const res = await server.api(`/apis/pai.io/v1/namespaces/default/agents/${name}`);
  return res.status === 200 ? ((await res.json()) as { metadata: { generation: number; resourceVersion: string }; spec: { system?: string; models: string[] }; status: { webhookUrl?: string } }) : undefined;
}

beforeAll(async () => {
  writeFileSync(join(dir, "team.yaml"), COMMENTED);
  server = await startServer({ manifests: dir });
});
afterAll(async () => {
  await server.stop();
});

describe("manifests folder", () => {
  test("files present at start are applied before the server is ready", async () => {
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    expect((await agent("planner"))?.spec.models).toEqual(["anthropic/claude-sonnet-4-6", "pai/echo"]);
    expect((await agent("reviewer"))?.spec.models).toEqual(["openai/gpt-4o"]);
  });

  test("status is written back into each document, keeping comments and layout", async () => {
    const text = await eventually(() => {
      const t = readFileSync(join(dir, "team.yaml"), "utf8");
      return (t.match(/^status:/gm)?.length ?? 0) === 2 ? t : undefined;
    }, 5000, "status in both documents");
    expect(text).toStartWith("# Team agents — keep this comment\napiVersion: pai.io/v1 # the API group\n");
    expect(text).toContain("models: [anthropic/claude-sonnet-4-6, pai/echo] # fallback last\n");
    expect(text).toContain("# second document\n");
    expect(text).toContain("  system: |\n    Plan the project.\n");
    const docs = text.split(/^---$/m).map((d) => parse(d));
    const planner = await agent("planner");
    expect(docs[0].status.webhookUrl).toBe(planner!.status.webhookUrl!);
    expect(docs[0].status.webhookUrl).toMatch(/\/webhooks\/default\/planner\/[0-9a-f]{64}$/);
    expect(docs[0].status.observedGeneration).toBe(1);
    expect(docs[1].status.webhookUrl).toBeUndefined();
    expect(docs[1].status.conditions[0]).toMatchObject({ type: "Ready", status: "True" });
  });

  test("the write-back does not trigger another reconcile", async () => {
    const before = await agent("planner");
    const text = readFileSync(join(dir, "team.yaml"), "utf8");
    await Bun.sleep(2500); // longer than the watcher's poll interval
    expect(readFileSync(join(dir, "team.yaml"), "utf8")).toBe(text);
    const after = await agent("planner");
    expect(after!.metadata.resourceVersion).toBe(before!.metadata.resourceVersion);
    expect(after!.metadata.generation).toBe(1);
  });

  test("a new file is applied; a changed file updates the agent", async () => {
    writeFileSync(join(dir, "extra.yml"), agentYaml("extra"));
    const created = await eventually(() => agent("extra"), 5000, "extra applied");
    expect(created.metadata.generation).toBe(1);
    await eventually(() => readFileSync(join(dir, "extra.yml"), "utf8").includes("webhookUrl:"), 5000, "status written");

    // Edit the spec in place, as a user would, keeping the status block the controller wrote.
    const edited = readFileSync(join(dir, "extra.yml"), "utf8").replace("You are a helpful agent. ...", "You are a changed agent.");
    writeFileSync(join(dir, "extra.yml"), edited);
    const updated = await eventually(async () => {
      const a = await agent("extra");
      return a?.metadata.generation === 2 ? a : undefined;
    }, 5000, "generation 2");
    expect(updated.spec.system).toBe("You are a changed agent.\n");
    expect(updated.status.webhookUrl).toBe(created.status.webhookUrl!); // same token
    await eventually(() => /observedGeneration: 2/.test(readFileSync(join(dir, "extra.yml"), "utf8")), 5000, "observedGeneration 2 written");
  });

  test("an invalid document is reported with file and line; the previous version keeps working", async () => {
    const good = await agent("extra");
    writeFileSync(join(dir, "extra.yml"), agentYaml("extra").replace("anthropic/claude-sonnet-4-6", "mystery/model"));
    await eventually(() => /invalid manifest \S*extra\.yml:7:7: spec\.models\[0\]: unknown model "mystery\/model"/.test(server.logs()), 5000, "error logged");
    const still = await agent("extra");
    expect(still!.spec.models).toEqual(good!.spec.models);
    expect(still!.metadata.generation).toBe(good!.metadata.generation);
    const ping = await fetch(good!.status.webhookUrl!.replace(/^http:\/\/localhost:\d+/, server.url));
    expect(ping.status).toBe(200);
    // Other agents are untouched.
    expect((await agent("planner"))?.metadata.generation).toBe(1);
    // Failure is data: the refused edit shows on the agent, and in pai get agent-def.
    const refused = await eventually(async () => {
      const a = (await agent("extra")) as unknown as { status: { conditions: { type: string; status: string; reason: string; message: string }[] } };
      return a.status.conditions.find((c) => c.type === "Accepted");
    }, 5000, "Accepted condition");
    expect(refused).toMatchObject({ status: "False", reason: "InvalidManifest" });
    expect(refused.message).toMatch(/extra\.yml:7:7: spec\.models\[0\]: unknown model "mystery\/model".*\(still running generation 2\)$/);
    expect((await server.cli(["get", "agent-def", "extra"])).stdout).toMatch(/^Problem\s+\S*extra\.yml:7:7: /m);
    // Fixing the file clears it.
    writeFileSync(join(dir, "extra.yml"), agentYaml("extra").replace("You are a helpful agent. ...", "You are a changed agent."));
    await eventually(async () => {
      const a = (await agent("extra")) as unknown as { status: { conditions: { type: string }[] } };
      return !a.status.conditions.some((c) => c.type === "Accepted");
    }, 5000, "condition cleared");
  });

  test("malformed YAML and a YAML bomb are refused, not expanded", async () => {
    writeFileSync(join(dir, "broken.yaml"), "apiVersion: pai.io/v1\nkind: Agent\nmetadata: {name: x\n");
    const bomb = ["a: &a [x,x,x,x,x,x,x,x,x]", "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]", "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]", "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]", "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]", "f: [*e,*e,*e,*e,*e,*e,*e,*e,*e]"].join("\n");
    writeFileSync(join(dir, "bomb.yaml"), bomb + "\n");
    await eventually(() => /invalid manifest \S*broken\.yaml:\d+:\d+: /.test(server.logs()), 5000, "syntax error logged");
    await eventually(() => /invalid manifest \S*bomb\.yaml:1:1: .*(alias|resource exhaustion)/i.test(server.logs()), 5000, "bomb refused");
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    rmSync(join(dir, "broken.yaml"));
    rmSync(join(dir, "bomb.yaml"));
  });

  test("deleting a file deletes the agents it defined, and their secrets", async () => {
    const url = (await agent("planner"))!.status.webhookUrl!;
    rmSync(join(dir, "team.yaml"));
    await eventually(async () => !(await agent("planner")) && !(await agent("reviewer")), 5000, "agents deleted");
    const secret = await server.api("/api/v1/namespaces/default/secrets/pai-webhook-planner");
    expect(secret.status).toBe(404);
    expect((await fetch(url.replace(/^http:\/\/localhost:\d+/, server.url))).status).toBe(404);
  });

  test("removing a document from a file deletes only that agent", async () => {
    writeFileSync(join(dir, "pair.yaml"), `${agentYaml("one")}---\n${agentYaml("two")}`);
    await eventually(async () => (await agent("one")) && (await agent("two")), 5000, "both applied");
    await eventually(() => (readFileSync(join(dir, "pair.yaml"), "utf8").match(/^status:/gm)?.length ?? 0) === 2, 5000, "status written");
    writeFileSync(join(dir, "pair.yaml"), agentYaml("one"));
    await eventually(async () => !(await agent("two")), 5000, "two deleted");
    expect(await agent("one")).toBeDefined();
  });
});

describe("manifests changed while the server was down", () => {
  test("a restart applies edits and deletes agents of removed files", async () => {
    await server.stop();
    rmSync(join(dir, "pair.yaml"));
    writeFileSync(join(dir, "late.yaml"), agentYaml("late"));
    server = await startServer({ dataDir: server.dataDir, manifests: dir });
    expect(await agent("one")).toBeUndefined();
    expect(await agent("late")).toBeDefined();
    expect(await agent("extra")).toBeDefined();
  });
});
