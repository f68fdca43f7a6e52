/**
 * The read-only namespaces resource (src/api/namespaces.ts), in the middle: the real core (SQLite
 * in a temp folder) behind `createApi`, driven with `app.handle(new Request(…))`. Which namespaces
 * exist (agents, secrets, sessions, tokens, and default always), their objects, list options,
 * Tables, what a namespace token sees, and the Status of each refusal. Then the agents/status
 * subresource (src/api/agents.ts) in the same core: only status changes, and its refusals.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createApi } from "../../src/api/app";
import { createCore, type Core } from "../../src/core";
import { createLogger } from "../../src/lib/log";
import { SESSION_QUERIES } from "../../src/store/namespaces";
import { removeDir, tempDir } from "../helpers";

let dir: string;
let core: Core;
let app: ReturnType<typeof createApi>;
let admin: string;
let teamToken: string;
let startedBefore: string;
let startedAfter: string;

const TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
const NS = "/api/v1/namespaces";

async function call(method: string, path: string, opts: { accept?: string; token?: string | null; body?: string } = {}) {
  const headers: Record<string, string> = {};
  if (opts.token !== null) headers.authorization = `Bearer ${opts.token ?? admin}`;
  if (opts.accept) headers.accept = opts.accept;
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  const res = await app.handle(new Request(`http://localhost${path}`, { method, headers, body: opts.body }));
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, any> };
}

const names = (body: Record<string, any>) => (body.items as { metadata: { name: string } }[]).map((i) => i.metadata.name);

beforeAll(async () => {
  dir = tempDir("pai-kube-ns-");
  startedBefore = new Date().toISOString();
  core = createCore({ dataDir: dir, maxSessions: 1, trustedProxies: [], allowPrivateCallbacks: false }, createLogger("error"));
  startedAfter = new Date().toISOString();
  admin = (await core.tokens.ensureAdminToken(join(dir, "admin-token"))).token;
  app = createApi({ ...core, log: createLogger("error"), ready: () => true, version: "1.2.3", maxBodyBytes: 256 * 1024 });
  // team-a: an agent, then a token (later): its creation time is the agent's.
  core.agents.apply({ name: "helper", namespace: "team-a", spec: { models: ["pai/echo"] } }, "api");
  await Bun.sleep(5);
  teamToken = (await core.tokens.create("team-a", "team-token")).token;
  // vault: a secret only; tok-only: a token only.
  core.secrets.put({ namespace: "vault", name: "plain", data: { k: "v" } });
  await core.tokens.create("tok-only", "ci");
  // runs: sessions only (their agent is gone; sessions are kept).
  const runner = (await core.agents.apply({ name: "runner", namespace: "runs", spec: { models: ["pai/echo"] } }, "api")).agent;
  await core.sessions.start(runner, { title: "a task", origin: { kind: "api" }, kind: "run" });
  core.agents.remove("runs", "runner");
});
afterAll(async () => {
  await core.stop();
  removeDir(dir);
});

describe("which namespaces exist", () => {
  test("the admin token lists every namespace something lives in, and default (empty here)", async () => {
    const { status, body } = await call("GET", NS);
    expect(status).toBe(200);
    expect(body).toMatchObject({ apiVersion: "v1", kind: "NamespaceList", metadata: { resourceVersion: String(core.watch.current()) } });
    expect(names(body)).toEqual(["default", "runs", "team-a", "tok-only", "vault"]);
  });

  test("a namespace is the Kubernetes object: label, finalizer, Active, the store's revision", async () => {
    const { status, body } = await call("GET", `${NS}/team-a`);
    expect(status).toBe(200);
    const agent = core.agents.get("team-a", "helper").agent;
    expect(body).toEqual({
      apiVersion: "v1",
      kind: "Namespace",
      metadata: {
        name: "team-a",
        resourceVersion: String(core.watch.current()),
        // The earliest thing in it: the agent, not the token made after it.
        creationTimestamp: agent.metadata.creationTimestamp,
        labels: { "kubernetes.io/metadata.name": "team-a" },
      },
      spec: { finalizers: ["kubernetes"] },
      status: { phase: "Active" },
    });
  });

  test("an empty default was created when the server started; sessions alone make a namespace", async () => {
    const def = (await call("GET", `${NS}/default`)).body;
    expect(def.metadata.creationTimestamp >= startedBefore && def.metadata.creationTimestamp <= startedAfter).toBe(true);
    const runs = await call("GET", `${NS}/runs`);
    expect(runs.status).toBe(200);
    expect(core.agents.find("runs", "runner")).toBeUndefined();
    expect(runs.body.metadata.creationTimestamp).toBe((await core.sessions.list("runs", 10))[0]!.createdAt);
    expect((await call("GET", `${NS}/tok-only`)).status).toBe(200);
    expect((await call("GET", `${NS}/vault`)).status).toBe(200);
  });

  test("a namespace appears with its first object and goes with its last", async () => {
    expect((await call("GET", `${NS}/later`)).status).toBe(404);
    core.secrets.put({ namespace: "later", name: "s", data: {} });
    expect((await call("GET", `${NS}/later`)).status).toBe(200);
    expect(names((await call("GET", NS)).body)).toContain("later");
    core.secrets.remove("later", "s");
    expect((await call("GET", `${NS}/later`)).status).toBe(404);
    expect(names((await call("GET", NS)).body)).not.toContain("later");
  });

  test("finding the namespaces of sessions walks the (namespace, seq) index, one step each, never the table", () => {
    const sqlite = core.store.db.$client;
    for (const sql of Object.values(SESSION_QUERIES)) {
      const plan = sqlite
        .prepare<{ detail: string }, [string]>(`EXPLAIN QUERY PLAN ${sql}`)
        .all("x")
        .map((r) => r.detail)
        .join("\n");
      expect(plan).toContain("USING INDEX sessions_namespace_seq_idx");
      expect(plan).not.toContain("TEMP B-TREE");
      expect(plan).not.toMatch(/^SCAN/m);
    }
  });
});

describe("list options and output", () => {
  test("kubectl get ns: a Table of Name, Status, Age", async () => {
    const { body } = await call("GET", NS, { accept: TABLE });
    expect(body.kind).toBe("Table");
    expect(body.columnDefinitions.map((c: { name: string }) => c.name)).toEqual(["Name", "Status", "Age"]);
    expect(body.rows.map((r: { cells: unknown[] }) => r.cells.slice(0, 2))).toEqual([
      ["default", "Active"],
      ["runs", "Active"],
      ["team-a", "Active"],
      ["tok-only", "Active"],
      ["vault", "Active"],
    ]);
    expect(body.rows[0].cells[2]).toMatch(/^\d+s$/);
    expect(body.rows[2].object).toMatchObject({ kind: "PartialObjectMetadata", metadata: { name: "team-a" } });
    const one = (await call("GET", `${NS}/vault`, { accept: TABLE })).body;
    expect(one.rows.map((r: { cells: unknown[] }) => r.cells.slice(0, 2))).toEqual([["vault", "Active"]]);
  });

  test("label and field selectors", async () => {
    expect(names((await call("GET", `${NS}?labelSelector=${encodeURIComponent("kubernetes.io/metadata.name=vault")}`)).body)).toEqual(["vault"]);
    expect(names((await call("GET", `${NS}?labelSelector=${encodeURIComponent("kubernetes.io/metadata.name notin (default,vault)")}`)).body)).toEqual(["runs", "team-a", "tok-only"]);
    expect(names((await call("GET", `${NS}?fieldSelector=metadata.name%3Dteam-a`)).body)).toEqual(["team-a"]);
    expect(names((await call("GET", `${NS}?fieldSelector=status.phase%3DTerminating`)).body)).toEqual([]);
    const bad = await call("GET", `${NS}?fieldSelector=spec.nodeName%3Dx`);
    expect(bad).toMatchObject({ status: 400, body: { kind: "Status", reason: "BadRequest" } });
  });

  test("limit and continue page through every namespace once", async () => {
    const seen: string[] = [];
    let token = "";
    for (let i = 0; i < 10; i++) {
      const { status, body } = await call("GET", `${NS}?limit=2${token ? `&continue=${encodeURIComponent(token)}` : ""}`);
      expect(status).toBe(200);
      expect(body.items.length).toBeLessThanOrEqual(2);
      seen.push(...names(body));
      token = body.metadata.continue ?? "";
      if (!token) break;
    }
    expect(seen).toEqual(["default", "runs", "team-a", "tok-only", "vault"]);
    const forged = await call("GET", `${NS}?limit=2&continue=AAAA`);
    expect(forged).toMatchObject({ status: 400, body: { kind: "Status" } });
  });

  test("metadata-only lists (metadata informers)", async () => {
    const { body } = await call("GET", NS, { accept: "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io" });
    expect(body.kind).toBe("PartialObjectMetadataList");
    expect(body.items.map((i: { metadata: { name: string } }) => i.metadata.name)).toContain("team-a");
  });
});

describe("refusals and namespace tokens", () => {
  test("an unknown namespace, or a name no namespace can have, is NotFound as kubectl prints it", async () => {
    for (const name of ["nope", "Not_A_Name"]) {
      const { status, body } = await call("GET", `${NS}/${name}`);
      expect(status).toBe(404);
      expect(body).toMatchObject({ kind: "Status", apiVersion: "v1", status: "Failure", reason: "NotFound", code: 404, message: `namespaces "${name}" not found`, details: { name, kind: "namespaces" } });
    }
  });

  test("a namespace token lists its own namespace only and reads no other, existing or not", async () => {
    const list = await call("GET", NS, { token: teamToken });
    expect(list.status).toBe(200);
    expect(names(list.body)).toEqual(["team-a"]);
    expect((await call("GET", `${NS}/team-a`, { token: teamToken })).status).toBe(200);
    for (const other of ["vault", "default", "nope"]) {
      const { status, body } = await call("GET", `${NS}/${other}`, { token: teamToken });
      expect(status).toBe(403);
      expect(body).toMatchObject({ kind: "Status", reason: "Forbidden" });
    }
  });

  test("no token: 401", async () => {
    expect((await call("GET", NS, { token: null })).status).toBe(401);
    expect((await call("GET", `${NS}/default`, { token: null })).status).toBe(401);
  });

  test("namespaces are not watched, created, changed or deleted (405, after the token is checked)", async () => {
    const watch = await call("GET", `${NS}?watch=true`);
    expect(watch).toMatchObject({ status: 405, body: { kind: "Status", reason: "MethodNotAllowed" } });
    for (const [method, path] of [["POST", NS], ["PUT", `${NS}/team-a`], ["PATCH", `${NS}/team-a`], ["DELETE", `${NS}/team-a`]] as const) {
      const r = await call(method, path, { body: JSON.stringify({ metadata: { name: "x" } }) });
      expect({ method, status: r.status, reason: r.body.reason }).toEqual({ method, status: 405, reason: "MethodNotAllowed" });
      expect(r.body.message).toContain("read-only");
      expect((await call(method, path, { token: null, body: "{}" })).status).toBe(401);
    }
    // Nothing was made or removed.
    expect(names((await call("GET", NS)).body)).toEqual(["default", "runs", "team-a", "tok-only", "vault"]);
  });

  test("the namespaced routes under the same path still answer (secrets of a namespace)", async () => {
    const { status, body } = await call("GET", `${NS}/vault/secrets`);
    expect(status).toBe(200);
    expect(names(body)).toEqual(["plain"]);
  });
});

/** The agents/status subresource (src/api/agents.ts), in the same core. */
describe("agents/status", () => {
  const STATUS = "/apis/pai.io/v1/namespaces/team-a/agents/helper/status";
  const send = (method: string, path: string, body: unknown, type = "application/json", token?: string) =>
    app.handle(
      new Request(`http://localhost${path}`, { method, headers: { authorization: `Bearer ${token ?? admin}`, "content-type": type }, body: typeof body === "string" ? body : JSON.stringify(body) }),
    ).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, any>, headers: r.headers }));
  const condition = (type: string, status: "True" | "False" = "True") => ({ type, status, reason: "Test", message: "set by a test", lastTransitionTime: "2025-01-01T00:00:00Z" });

  test("discovery lists agents/status with get, patch, update", async () => {
    const pai = (await call("GET", "/apis/pai.io/v1")).body;
    expect(pai.resources.find((r: { name: string }) => r.name === "agents/status")).toEqual({ name: "agents/status", singularName: "", namespaced: true, kind: "Agent", verbs: ["get", "patch", "update"] });
  });

  test("GET answers the agent", async () => {
    const { status, body } = await call("GET", STATUS);
    expect(status).toBe(200);
    expect(body).toEqual(core.agents.get("team-a", "helper").agent as unknown as Record<string, any>);
  });

  test("a merge patch changes only status: spec and labels in the body are ignored; the resourceVersion moves, the generation does not", async () => {
    const before = core.agents.get("team-a", "helper").agent;
    const { status, body } = await send("PATCH", STATUS, { metadata: { labels: { sneaky: "yes" } }, spec: { models: ["anthropic/claude-x"] }, status: { conditions: [condition("Tested")] } }, "application/merge-patch+json");
    expect(status).toBe(200);
    expect(body.status.conditions).toEqual([condition("Tested")]);
    expect(body.status.webhookUrl).toBe(before.status.webhookUrl);
    expect(body.spec).toEqual(before.spec);
    expect(body.metadata.labels).toEqual(before.metadata.labels);
    expect(body.metadata.generation).toBe(before.metadata.generation);
    expect(Number(body.metadata.resourceVersion)).toBeGreaterThan(Number(before.metadata.resourceVersion));
    expect(core.agents.get("team-a", "helper").agent.status.conditions).toEqual([condition("Tested")]);
    // The write is in the revision log, as watches replay it.
    expect(body.metadata.resourceVersion).toBe(String(core.watch.current()));
  });

  test("PUT replaces the status; a JSON patch edits it; dryRun changes nothing", async () => {
    const current = core.agents.get("team-a", "helper").agent;
    const put = await send("PUT", STATUS, { ...current, spec: { models: ["x/y"] }, status: { observedGeneration: 7 } });
    expect(put.status).toBe(200);
    expect(put.body.status).toEqual({ observedGeneration: 7 });
    expect(put.body.spec).toEqual(current.spec);
    const json = await send("PATCH", STATUS, [{ op: "add", path: "/status/conditions", value: [condition("Patched", "False")] }], "application/json-patch+json");
    expect(json.status).toBe(200);
    expect(json.body.status).toEqual({ observedGeneration: 7, conditions: [condition("Patched", "False")] });
    const rv = json.body.metadata.resourceVersion;
    const dry = await send("PATCH", `${STATUS}?dryRun=All`, { status: { observedGeneration: 9 } }, "application/merge-patch+json");
    expect(dry.body.status.observedGeneration).toBe(9);
    const after = core.agents.get("team-a", "helper").agent;
    expect(after.status.observedGeneration).toBe(7);
    expect(after.metadata.resourceVersion).toBe(rv);
  });

  test("bad statuses are Invalid (422) naming the field; unknown fields follow fieldValidation; a stale resourceVersion is a Conflict", async () => {
    const bad = await send("PATCH", STATUS, { status: { conditions: [{ type: "X", status: "Maybe" }] } }, "application/merge-patch+json");
    expect(bad).toMatchObject({ status: 422, body: { kind: "Status", reason: "Invalid", details: { name: "helper", kind: "Agent" } } });
    expect(bad.body.details.causes.map((c: { field: string }) => c.field)).toContain("status.conditions[0].status");
    const notObject = await send("PATCH", STATUS, { status: "ready" }, "application/merge-patch+json");
    expect(notObject).toMatchObject({ status: 422, body: { reason: "Invalid" } });
    const unknown = await send("PATCH", STATUS, { status: { mood: "happy" } }, "application/merge-patch+json");
    expect(unknown).toMatchObject({ status: 422, body: { reason: "Invalid" } });
    expect(unknown.body.message).toContain("status.mood");
    const warned = await send("PATCH", `${STATUS}?fieldValidation=Warn`, { status: { mood: "happy", observedGeneration: 8 } }, "application/merge-patch+json");
    expect(warned.status).toBe(200);
    expect(warned.body.status.mood).toBeUndefined();
    expect(warned.body.status.observedGeneration).toBe(8);
    expect(warned.headers.get("warning")).toContain('unknown field \\"status.mood\\"');
    const huge = await send("PATCH", STATUS, { status: { conditions: Array.from({ length: 40 }, (_, i) => condition(`C${i}`)) } }, "application/merge-patch+json");
    expect(huge.status).toBe(422);
    const stale = await send("PATCH", STATUS, { metadata: { resourceVersion: "1" }, status: { observedGeneration: 1 } }, "application/merge-patch+json");
    expect(stale).toMatchObject({ status: 409, body: { reason: "Conflict" } });
    const otherName = await send("PUT", STATUS, { metadata: { name: "other" }, status: {} });
    expect(otherName).toMatchObject({ status: 400, body: { reason: "BadRequest" } });
    expect(core.agents.get("team-a", "helper").agent.status.observedGeneration).toBe(8);
  });

  test("unknown agent: NotFound; a namespace token: Forbidden; wrong patch type: 415", async () => {
    const missing = await send("PATCH", "/apis/pai.io/v1/namespaces/team-a/agents/nope/status", { status: {} }, "application/merge-patch+json");
    expect(missing).toMatchObject({ status: 404, body: { message: 'agents.pai.io "nope" not found' } });
    expect((await call("GET", "/apis/pai.io/v1/namespaces/team-a/agents/nope/status")).status).toBe(404);
    const forbidden = await send("PATCH", STATUS, { status: {} }, "application/merge-patch+json", teamToken);
    expect(forbidden).toMatchObject({ status: 403, body: { reason: "Forbidden" } });
    // Its own namespace's agent may be read (the webhook token hidden), not written.
    const read = await call("GET", STATUS, { token: teamToken });
    expect(read.status).toBe(200);
    expect(JSON.stringify(read.body)).not.toMatch(/\/webhooks\/[^"]*\/[0-9a-f]{64}/);
    const wrongType = await send("PATCH", STATUS, { status: {} }, "text/plain");
    expect(wrongType.status).toBe(415);
  });

  test("server-side apply of a status (with a fieldManager) merges its fields over the current ones", async () => {
    const applied = await send("PATCH", `${STATUS}?fieldManager=test`, "apiVersion: pai.io/v1\nkind: Agent\nmetadata:\n  name: helper\nstatus:\n  observedGeneration: 11\n", "application/apply-patch+yaml");
    expect(applied.status).toBe(200);
    expect(applied.body.status.observedGeneration).toBe(11);
    const noManager = await send("PATCH", STATUS, "status: {}\n", "application/apply-patch+yaml");
    expect(noManager.status).toBe(400);
  });
});
