/**
 * The console's server side that is not the delivery log: the overview (the last hour per minute
 * from the /metrics counters) and re-running a session with the same input.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { eventually, removeDir, startServer, tempDir, WEBHOOK_LINE, type TestServer } from "../helpers";

const ECHO = `apiVersion: pai.io/v1
kind: Agent
metadata:
  name: echo
spec:
  models: [pai/echo]
  triggers:
    - webhook: {}
`;

let server: TestServer;
let dir: string;
let url: string;

beforeAll(async () => {
  dir = tempDir("pai-overview-");
  mkdirSync(join(dir, "agents"));
  writeFileSync(join(dir, "agents", "echo.yaml"), ECHO);
  server = await startServer({ manifests: join(dir, "agents") });
  const shown = await server.cli(["get", "agent-def", "echo"]);
  url = WEBHOOK_LINE("default", "echo").exec(shown.stdout)![1]!.replace(/^http:\/\/localhost:\d+/, server.url);
});
afterAll(async () => {
  await server?.stop();
  removeDir(server?.dataDir ?? "");
  removeDir(dir);
});

interface Overview {
  running: number;
  pending: number;
  minutes: { start: string; sessionsStarted: number; sessionsFinished: number; answers: Record<string, number> }[];
}

describe("GET /apis/pai.io/v1/overview", () => {
  test("the current minute counts the webhook answers by code and the sessions started and finished", async () => {
    const before = (await (await server.api("/apis/pai.io/v1/overview")).json()) as Overview;
    for (let i = 0; i < 2; i++) expect((await fetch(url, { method: "POST", body: JSON.stringify({ title: "hi", wait: 10 }) })).status).toBe(200);
    expect((await fetch(url.replace(/[0-9a-f]{64}$/, "0".repeat(64)), { method: "POST", body: "{}" })).status).toBe(401);
    const now = (await (await server.api("/apis/pai.io/v1/overview")).json()) as Overview;
    expect(now.minutes).toHaveLength(60);
    const starts = now.minutes.map((m) => Date.parse(m.start));
    expect(starts.every((t, i) => i === 0 || t - starts[i - 1]! === 60_000)).toBe(true);
    expect(starts.at(-1)!).toBeLessThanOrEqual(Date.now());
    expect(Date.now() - starts.at(-1)!).toBeLessThan(60_000);
    // Summed over the hour (the minute may have turned between the two reads).
    const total = (o: Overview, f: (m: Overview["minutes"][number]) => number) => o.minutes.reduce((n, m) => n + f(m), 0);
    expect(total(now, (m) => m.answers["200"] ?? 0) - total(before, (m) => m.answers["200"] ?? 0)).toBe(2);
    expect(total(now, (m) => m.answers["401"] ?? 0) - total(before, (m) => m.answers["401"] ?? 0)).toBe(1);
    expect(total(now, (m) => m.sessionsStarted) - total(before, (m) => m.sessionsStarted)).toBe(2);
    expect(total(now, (m) => m.sessionsFinished) - total(before, (m) => m.sessionsFinished)).toBe(2);
    expect(now).toMatchObject({ running: 0, pending: 0 });
  });

  test("needs a token (any valid one, as /metrics)", async () => {
    expect((await fetch(`${server.url}/apis/pai.io/v1/overview`)).status).toBe(401);
    const ns = await server.cli(["create", "token", "-n", "team"]);
    expect((await fetch(`${server.url}/apis/pai.io/v1/overview`, { headers: { authorization: `Bearer ${ns.stdout.trim()}` } })).status).toBe(200);
  });
});

describe("POST /agents/{session}/rerun", () => {
  test("a new session of the same agent with the same title and env; the first is unchanged", async () => {
    const first = await server.api("/apis/pai.io/v1/namespaces/default/sessions", { method: "POST", json: { agentDefinition: "echo", title: "say it again", env: [{ name: "COLOR", value: "blue" }] } });
    expect(first.status).toBe(201);
    const { metadata } = (await first.json()) as { metadata: { name: string } };
    const done = await eventually(async () => {
      const s = (await (await server.api(`/agents/${metadata.name}`)).json()) as { phase: string; response: string };
      return s.phase === "Complete" ? s : undefined;
    }, 10_000, "the first session Complete");
    const again = await server.api(`/agents/${metadata.name}/rerun`, { method: "POST" });
    expect(again.status).toBe(201);
    const rerun = (await again.json()) as { metadata: { name: string }; spec?: unknown; title?: string };
    expect(rerun.metadata.name).not.toBe(metadata.name);
    const second = await eventually(async () => {
      const s = (await (await server.api(`/agents/${rerun.metadata.name}`)).json()) as { phase: string; response: string; title: string };
      return s.phase === "Complete" ? s : undefined;
    }, 10_000, "the re-run Complete");
    expect(second.response).toBe(done.response);
    expect(second.title).toBe("say it again");
    // The API never shows env values: the store says the re-run has the same env.
    const db = new Database(join(server.dataDir, "pai.db"), { readonly: true });
    try {
      const envOf = (name: string) => (db.query("SELECT env FROM sessions WHERE name = ?").get(name) as { env: string }).env;
      expect(JSON.parse(envOf(rerun.metadata.name))).toEqual([{ name: "COLOR", value: "blue" }]);
      expect(envOf(rerun.metadata.name)).toBe(envOf(metadata.name));
    } finally {
      db.close();
    }
  });

  test("another namespace's token may not re-run it (403); an unknown session is 404", async () => {
    const list = (await (await server.api("/apis/pai.io/v1/namespaces/default/sessions")).json()) as { items: { metadata: { name: string } }[] };
    const name = list.items[0]!.metadata.name;
    const other = (await server.cli(["create", "token", "-n", "other"])).stdout.trim();
    expect((await fetch(`${server.url}/agents/${name}/rerun?namespace=default`, { method: "POST", headers: { authorization: `Bearer ${other}` } })).status).toBe(403);
    expect((await server.api("/agents/echo-run-ffffffff/rerun", { method: "POST" })).status).toBe(404);
  });
});
