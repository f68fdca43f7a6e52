/**
 * The delivery log's route and the agents' read permission for namespace tokens, in the middle:
 * the real core (SQLite in a temp folder) behind `createApi`, driven with `app.handle`. Who may
 * read an agent's log (the admin token, a token of its namespace; 403 elsewhere, 404 for an
 * unknown agent), its pages, and what a namespace token sees of agents: its own namespace's,
 * in every form (list, Table, get, status, watch), with the webhook URL's token hidden, and no write.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createApi } from "../../src/api/app";
import { HIDDEN_WEBHOOK_TOKEN } from "../../src/api/agents";
import { encodeDeliveryContinue } from "../../src/api/deliveries";
import { createCore, type Core } from "../../src/core";
import { createLogger } from "../../src/lib/log";
import { removeDir, tempDir } from "../helpers";

let dir: string;
let core: Core;
let app: ReturnType<typeof createApi>;
let admin: string;
let teamToken: string;
let otherToken: string;

const TOKEN = "ab".repeat(32);
const URL_OF = (ns: string, name: string) => `http://localhost:8080/webhooks/${ns}/${name}/${TOKEN}`;
const TEAM = "/apis/pai.io/v1/namespaces/team/agents";
const DEFAULT = "/apis/pai.io/v1/namespaces/default/agents";
const TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

async function call(method: string, path: string, opts: { token?: string | null; body?: unknown; type?: string; accept?: string } = {}) {
  const headers: Record<string, string> = {};
  if (opts.token !== null) headers.authorization = `Bearer ${opts.token ?? admin}`;
  if (opts.accept) headers.accept = opts.accept;
  if (opts.body !== undefined) headers["content-type"] = opts.type ?? "application/json";
  const res = await app.handle(new Request(`http://localhost${path}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) }));
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, any>, text };
}

beforeAll(async () => {
  dir = tempDir("pai-deliveries-api-");
  core = createCore({ dataDir: dir, maxSessions: 1, trustedProxies: [], allowPrivateCallbacks: false }, createLogger("error"));
  admin = (await core.tokens.ensureAdminToken(join(dir, "admin-token"))).token;
  teamToken = (await core.tokens.create("team", "console")).token;
  otherToken = (await core.tokens.create("other", "console")).token;
  app = createApi({ ...core, log: createLogger("error"), ready: () => true, version: "1.2.3", maxBodyBytes: 256 * 1024 });
  for (const [ns, name] of [["team", "hook"], ["team", "quiet"], ["default", "web"]] as const) {
    core.agents.apply({ name, namespace: ns, spec: { models: ["pai/echo"], triggers: [{ webhook: {} }] } }, "api");
    core.agents.setStatus(ns, name, { webhookUrl: URL_OF(ns, name), observedGeneration: 1 });
  }
  for (let i = 0; i < 5; i++) core.deliveries.record({ namespace: "team", agent: "hook", sender: "github", event: "push", delivery: `d${i}`, code: 200, session: `hook-wh-0000000${i}` });
  core.deliveries.record({ namespace: "team", agent: "hook", sender: "generic", code: 401, reason: "invalid webhook token" });
});
afterAll(async () => {
  await core.stop();
  removeDir(dir);
});

describe("GET …/agents/{name}/deliveries", () => {
  test("a DeliveryList, newest first, for the admin token and a token of the namespace", async () => {
    for (const token of [admin, teamToken]) {
      const { status, body } = await call("GET", `${TEAM}/hook/deliveries`, { token });
      expect(status).toBe(200);
      expect(body.apiVersion).toBe("pai.io/v1");
      expect(body.kind).toBe("DeliveryList");
      expect(body.metadata).toEqual({});
      expect(body.items.map((d: { code: number }) => d.code)).toEqual([401, 200, 200, 200, 200, 200]);
      expect(body.items[0]).toEqual({ time: expect.any(String), sender: "generic", code: 401, reason: "invalid webhook token" });
      expect(body.items[1]).toEqual({ time: expect.any(String), sender: "github", event: "push", delivery: "d4", code: 200, session: "hook-wh-00000004" });
    }
    expect((await call("GET", `${TEAM}/quiet/deliveries`, { token: teamToken })).body.items).toEqual([]);
  });

  test("401 without a token, 403 for another namespace's token, 404 for an unknown agent, 400 for a bad name", async () => {
    expect((await call("GET", `${TEAM}/hook/deliveries`, { token: null })).status).toBe(401);
    expect((await call("GET", `${TEAM}/hook/deliveries`, { token: "pai_nope" })).status).toBe(401);
    expect((await call("GET", `${TEAM}/hook/deliveries`, { token: otherToken })).body).toMatchObject({ code: 403, reason: "Forbidden" });
    expect((await call("GET", `${DEFAULT}/web/deliveries`, { token: teamToken })).status).toBe(403);
    expect((await call("GET", `${TEAM}/ghost/deliveries`, { token: teamToken })).body).toMatchObject({ code: 404, message: 'agents.pai.io "ghost" not found' });
    expect((await call("GET", `${TEAM}/Bad_Name/deliveries`)).status).toBe(400);
  });

  test("pages with limit and continue; a bad limit or another list's continue is 400", async () => {
    const seen: string[] = [];
    let path = `${TEAM}/hook/deliveries?limit=4`;
    for (let pages = 0; pages < 5; pages++) {
      const { status, body } = await call("GET", path, { token: teamToken });
      expect(status).toBe(200);
      seen.push(...body.items.map((d: { code: number; delivery?: string }) => d.delivery ?? String(d.code)));
      if (!body.metadata.continue) break;
      expect(body.metadata.continue).toMatch(/^[A-Za-z0-9_-]+$/);
      path = `${TEAM}/hook/deliveries?limit=4&continue=${body.metadata.continue}`;
    }
    expect(seen).toEqual(["401", "d4", "d3", "d2", "d1", "d0"]);
    for (const q of ["limit=0", "limit=1001", "limit=ten", "continue=***", "continue=e30"]) expect({ q, status: (await call("GET", `${TEAM}/hook/deliveries?${q}`)).status }).toEqual({ q, status: 400 });
    const elsewhere = encodeDeliveryContinue("team", "quiet", 10);
    expect((await call("GET", `${TEAM}/hook/deliveries?continue=${elsewhere}`)).body.message).toContain("not a continue token of this list");
  });
});

describe("agents: a namespace token reads its own namespace's", () => {
  test("list, get and the status subresource: 200, with the webhook URL's token hidden; the admin token sees it", async () => {
    const hidden = `http://localhost:8080/webhooks/team/hook/${HIDDEN_WEBHOOK_TOKEN}`;
    const list = await call("GET", TEAM, { token: teamToken });
    expect(list.status).toBe(200);
    expect(list.body.items.map((a: { metadata: { name: string } }) => a.metadata.name).sort()).toEqual(["hook", "quiet"]);
    expect(list.body.items.find((a: { metadata: { name: string } }) => a.metadata.name === "hook").status.webhookUrl).toBe(hidden);
    for (const path of [`${TEAM}/hook`, `${TEAM}/hook/status`]) {
      const { status, body, text } = await call("GET", path, { token: teamToken });
      expect(status).toBe(200);
      expect(body.status.webhookUrl).toBe(hidden);
      expect(text).not.toContain(TOKEN);
    }
    const table = await call("GET", TEAM, { token: teamToken, accept: TABLE });
    expect(table.body.kind).toBe("Table");
    expect(table.text).toContain(HIDDEN_WEBHOOK_TOKEN);
    expect(table.text).not.toContain(TOKEN);
    // The admin token reads the URL itself (and may rotate it).
    expect((await call("GET", `${TEAM}/hook`)).body.status.webhookUrl).toBe(URL_OF("team", "hook"));
    // The agent itself is unchanged by what a reader was shown.
    expect(core.agents.get("team", "hook").agent.status.webhookUrl).toBe(URL_OF("team", "hook"));
  });

  test("values written into the spec that may be credentials are hidden too; references and names stay", async () => {
    const spec = {
      models: ["pai/echo"],
      env: [{ name: "API_KEY", value: "sk-inline-1" }],
      triggers: [{ webhook: { linearSignatureSecret: "lin-inline-2", githubSignatureSecret: { secretRef: { name: "gh", key: "secret" } }, allowCIDRs: ["10.0.0.0/8"] } }],
      mcpServers: [
        { name: "local", command: "mcp-server", env: [{ name: "TOKEN", value: "tok-inline-3" }, { name: "REF", valueFrom: { secretKeyRef: { name: "s", key: "k" } } }] },
        { name: "remote", url: "https://mcp.example.com/mcp", headers: [{ name: "Authorization", value: "Bearer inline-4" }] },
      ],
    };
    core.agents.apply({ name: "secretive", namespace: "team", spec, annotations: { [LAST_APPLIED]: JSON.stringify({ spec }), note: "kept" } }, "api");
    const { status, body, text } = await call("GET", `${TEAM}/secretive`, { token: teamToken });
    expect(status).toBe(200);
    for (const inline of ["sk-inline-1", "lin-inline-2", "tok-inline-3", "inline-4"]) expect(text).not.toContain(inline);
    expect(body.spec.env).toEqual([{ name: "API_KEY", value: HIDDEN_WEBHOOK_TOKEN }]);
    expect(body.spec.triggers[0].webhook).toEqual({ linearSignatureSecret: HIDDEN_WEBHOOK_TOKEN, githubSignatureSecret: { secretRef: { name: "gh", key: "secret" } }, allowCIDRs: ["10.0.0.0/8"] });
    expect(body.spec.mcpServers[0].env).toEqual([{ name: "TOKEN", value: HIDDEN_WEBHOOK_TOKEN }, { name: "REF", valueFrom: { secretKeyRef: { name: "s", key: "k" } } }]);
    expect(body.spec.mcpServers[1].headers).toEqual([{ name: "Authorization", value: HIDDEN_WEBHOOK_TOKEN }]);
    expect(body.metadata.annotations).toEqual({ [LAST_APPLIED]: HIDDEN_WEBHOOK_TOKEN, note: "kept" });
    // The admin token reads them, and the stored agent is as applied.
    const whole = await call("GET", `${TEAM}/secretive`);
    for (const inline of ["sk-inline-1", "lin-inline-2", "tok-inline-3", "inline-4"]) expect(whole.text).toContain(inline);
    expect(core.agents.get("team", "secretive").agent.spec.env).toEqual([{ name: "API_KEY", value: "sk-inline-1" }]);
    core.agents.remove("team", "secretive");
  });

  test("a watch shows the hidden URL too", async () => {
    const abort = new AbortController();
    const res = await app.handle(new Request(`http://localhost${TEAM}?watch=true&fieldSelector=metadata.name%3Dhook`, { headers: { authorization: `Bearer ${teamToken}` }, signal: abort.signal }));
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("the watch ended before its first event");
      text += new TextDecoder().decode(value);
    }
    abort.abort();
    const first = JSON.parse(text.slice(0, text.indexOf("\n")));
    expect(first).toMatchObject({ type: "ADDED", object: { metadata: { name: "hook" }, status: { webhookUrl: `http://localhost:8080/webhooks/team/hook/${HIDDEN_WEBHOOK_TOKEN}` } } });
  });

  test("another namespace and the all-namespaces list: 403 (the message names the token's own list); no token: 401; a bad name: 400", async () => {
    for (const path of [DEFAULT, `${DEFAULT}/web`, `${DEFAULT}/web/status`]) expect({ path, status: (await call("GET", path, { token: teamToken })).status }).toEqual({ path, status: 403 });
    const all = await call("GET", "/apis/pai.io/v1/agents", { token: teamToken });
    expect(all.body).toMatchObject({ code: 403, reason: "Forbidden" });
    expect(all.body.message).toContain("/apis/pai.io/v1/namespaces/team/agents");
    expect((await call("GET", "/apis/pai.io/v1/agents")).status).toBe(200);
    expect((await call("GET", TEAM, { token: null })).status).toBe(401);
    // A name that cannot be a namespace is a bad request, whoever asks (as for sessions).
    for (const token of [teamToken, admin]) expect((await call("GET", `/apis/pai.io/v1/namespaces/Bad_NS/agents`, { token })).status).toBe(400);
  });

  test("every write stays the admin's: 403, and nothing changes", async () => {
    const manifest = { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name: "hook" }, spec: { models: ["pai/echo"], system: "changed" } };
    const writes: [string, string, unknown, string?][] = [
      ["POST", TEAM, { ...manifest, metadata: { name: "new" } }],
      ["PUT", `${TEAM}/hook`, manifest],
      ["PATCH", `${TEAM}/hook`, { spec: { system: "changed" } }, "application/merge-patch+json"],
      ["PUT", `${TEAM}/hook/status`, { ...manifest, status: { webhookUrl: "x" } }],
      ["PATCH", `${TEAM}/hook/status`, { status: { webhookUrl: "x" } }, "application/merge-patch+json"],
      ["DELETE", `${TEAM}/hook`, undefined],
    ];
    for (const [method, path, body, type] of writes) expect({ method, path, status: (await call(method, path, { token: teamToken, body, type })).status }).toEqual({ method, path, status: 403 });
    const a = core.agents.get("team", "hook").agent;
    expect(a.spec.system).toBeUndefined();
    expect(a.status.webhookUrl).toBe(URL_OF("team", "hook"));
    expect(core.agents.find("team", "new")).toBeUndefined();
  });
});
