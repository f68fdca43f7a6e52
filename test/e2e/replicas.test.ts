/**
 * Replicas sharing Postgres (`pai serve --kubernetes --database postgres://…`): a real Postgres
 * (test/pg.ts), the fake cluster of test/cluster.ts for Agents, and two, then three, `pai serve`
 * processes. What must hold (issue 10, part 1): a webhook accepted by one replica may run on
 * another, and its `wait` caller still gets the answer; SSE readers follow a session running
 * elsewhere; a cancel reaches the replica running the session; a replica killed with SIGKILL leaves
 * no session Running (another ends them "replica lost"); an access token revoked on one replica is
 * refused by all; and 1,000 webhooks spread over three replicas, retried deliveries among them, run
 * each exactly once with nothing lost.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { agentYaml, eventually, removeDir, startServer, tempDir, type TestServer } from "../helpers";
import { startCluster, type Cluster } from "../cluster";
import { startModelServer, hang, type FakeModelServer } from "../fakes/model-server";
import { HAVE_POSTGRES, startPostgres, warnSkippedWithoutPostgres, type TestPostgres } from "../pg";

warnSkippedWithoutPostgres("test/e2e/replicas.test.ts (replicas sharing Postgres)");

const REPLICA_LEASE_MS = 1500;
/** Not exited and not killed (a killed process has a signal code, not an exit code). */
const alive = (r: TestServer) => r.proc.exitCode === null && r.proc.signalCode === null;

describe.skipIf(!HAVE_POSTGRES)("replicas on Postgres", () => {
  let pg: TestPostgres;
  let db: SQL;
  let cluster: Cluster;
  let models: FakeModelServer;
  const replicas: TestServer[] = [];
  let echoUrl: string;
  let slowUrl: string;

  async function replica(maxSessions: number): Promise<TestServer> {
    const r = await startServer({
      args: ["--kubernetes", "--kubeconfig", cluster.kubeconfig, "--lease-namespace", "pai-system", "--database", pg.url, "--max-sessions", String(maxSessions)],
      env: { PAI_LEASE_DURATION_MS: "1500", PAI_REPLICA_LEASE_MS: String(REPLICA_LEASE_MS), ANTHROPIC_API_KEY: "k", ANTHROPIC_BASE_URL: models.anthropicBaseUrl },
    });
    replicas.push(r);
    return r;
  }
  const on = (r: TestServer, url: string) => r.url + new URL(url).pathname;
  const post = (r: TestServer, url: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(on(r, url), { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
  /** The replicas that claimed the session (its owner names the replica's process). */
  const ranOn = async (name: string) => {
    const [row] = await db`SELECT owner FROM sessions WHERE namespace = 'default' AND name = ${name}`;
    return replicas.filter((r) => typeof row?.owner === "string" && row.owner.includes(`_${r.proc.pid}_`));
  };
  const session = async (r: TestServer, name: string) => (await (await r.api(`/agents/${name}`)).json()) as { phase: string; response: string | null; error?: string };

  let a: TestServer;
  let b: TestServer;
  /** Slow sessions started so far. */
  const slow: string[] = [];
  const runsSlow = async (r: TestServer) => {
    for (const name of slow) if ((await ranOn(name)).includes(r)) return true;
    return false;
  };

  beforeAll(async () => {
    pg = await startPostgres();
    db = new SQL(pg.url);
    models = startModelServer();
    // "slow" never answers: its sessions stay Running until cancelled or their replica dies.
    models.script((model) => (model.includes("slow") ? hang : "ok"));
    cluster = await startCluster();
    await cluster.createAgent("echo", { models: ["pai/echo"], triggers: [{ webhook: {} }] });
    await cluster.createAgent("slow", { models: ["anthropic/claude-slow"], triggers: [{ webhook: {} }] });
    a = await replica(1);
    b = await replica(4);
    echoUrl = await cluster.webhookUrlOf("echo");
    slowUrl = await cluster.webhookUrlOf("slow");
  });

  afterAll(async () => {
    for (const r of replicas) {
      r.proc.kill("SIGKILL");
      await r.proc.exited;
      removeDir(r.dataDir);
    }
    await db?.close();
    await cluster?.stop();
    await models?.stop();
    pg?.stop();
  });

  test("a webhook accepted by A runs on B when A is full, and A's wait caller gets the answer", async () => {
    // A runs one session at a time: slow sessions until one holds A's slot.
    for (let i = 0; !(await runsSlow(a)); i++) {
      expect(i).toBeLessThan(5);
      const held = (await (await post(a, slowUrl, { title: `hold ${i}` })).json()) as { session: string };
      slow.push(held.session);
      await eventually(async () => (await session(a, held.session)).phase === "Running" && (await ranOn(held.session)).length === 1, 10_000, "the slow session running");
    }
    const res = await post(a, echoUrl, { title: "across replicas", wait: 30 });
    expect(res.status).toBe(200);
    const reply = (await res.json()) as { session: string; response: string; phase: string };
    expect(reply.phase).toBe("Complete");
    expect(reply.response).toContain("across replicas");
    // Ran where there was room: B.
    expect(await ranOn(reply.session)).toEqual([b]);
    // Its working folder is on B's disk: A says so instead of listing nothing.
    const files = await a.api(`/agents/${reply.session}/files`);
    expect(files.status).toBe(409);
    expect(((await files.json()) as { message: string }).message).toContain("ran on another replica");
    expect((await b.api(`/agents/${reply.session}/files`)).status).toBe(200);
    // Every replica reads the same session and events.
    for (const r of [a, b]) {
      expect(await session(r, reply.session)).toMatchObject({ phase: "Complete", response: reply.response });
      const events = (await (await r.api(`/agents/${reply.session}/events`)).json()) as { events: { type: string }[] };
      expect(events.events.map((e) => e.type).at(-1)).toBe("session.status_closed");
    }
  });

  test("SSE on B follows a session running on A; a cancel sent to B reaches A; the stream ends with the closing event", async () => {
    const started = (await (await post(a, slowUrl, { title: "follow me" })).json()) as { session: string };
    await eventually(async () => (await session(b, started.session)).phase === "Running", 10_000, "running");
    const [where] = await ranOn(started.session);
    const other = where === a ? b : a;
    expect(where).toBeDefined();
    const stream = await fetch(`${other.url}/agents/${started.session}/stream`, { headers: { authorization: `Bearer ${other.token}` } });
    expect(stream.status).toBe(200);
    const text = stream.text();
    const cancelled = await other.api(`/agents/${started.session}/cancel`, { method: "POST" });
    expect(cancelled.status).toBe(200);
    expect(((await cancelled.json()) as { phase: string }).phase).toBe("Cancelled");
    const body = await text;
    expect(body).toContain("session.status_running");
    expect(body).toContain('"phase":"Cancelled"');
    expect(body.trim().split("\n\n").at(-1)).toContain("session.status_closed");
  });

  test("an access token made on A works on B; revoked on B, A refuses it", async () => {
    const made = await a.api("/apis/pai.io/v1/namespaces/team/accesstokens", { method: "POST", json: { metadata: { name: "ci" } } });
    expect(made.status).toBe(201);
    const { token, metadata } = (await made.json()) as { token: string; metadata: { uid: string } };
    const asTeam = (r: TestServer) => fetch(`${r.url}/apis/pai.io/v1/namespaces/team/sessions`, { headers: { authorization: `Bearer ${token}` } });
    await eventually(async () => (await asTeam(b)).status === 200, 5000, "the token accepted on B");
    expect((await b.api(`/apis/pai.io/v1/namespaces/team/accesstokens/${metadata.uid}`, { method: "DELETE" })).status).toBe(200);
    await eventually(async () => (await asTeam(a)).status === 401, 5000, "the revoked token refused on A");
  });

  test("1,000 webhooks over three replicas (retried deliveries among them): none lost, none run twice", async () => {
    const c = await replica(4);
    const targets = [a, b, c];
    // Free A's and B's slots: slow sessions are cancelled.
    const [{ names }] = await db`SELECT coalesce(array_agg(name), '{}') AS names FROM sessions WHERE phase IN ('Pending', 'Running') AND agent_definition = 'slow'`;
    for (const name of names as string[]) await a.api(`/agents/${name}/cancel`, { method: "POST" });
    const before = (await db`SELECT count(*)::int AS n FROM sessions WHERE agent_definition = 'echo'`)[0].n as number;
    const N = 1000;
    const accepted = new Map<number, string>();
    let next = 0;
    async function worker() {
      for (let i = next++; i < N; i = next++) {
        const delivery = `d-${i}`;
        const res = await post(targets[i % 3]!, echoUrl, { title: `job ${i}` }, { "x-github-delivery": delivery, "x-github-event": "push" });
        expect(res.status).toBe(200);
        accepted.set(i, ((await res.json()) as { session: string }).session);
        // Every tenth delivery is retried on another replica: it must get the same session.
        if (i % 10 === 0) {
          const again = await post(targets[(i + 1) % 3]!, echoUrl, { title: `job ${i}` }, { "x-github-delivery": delivery, "x-github-event": "push" });
          expect(((await again.json()) as { session: string }).session).toBe(accepted.get(i)!);
        }
      }
    }
    await Promise.all(Array.from({ length: 24 }, worker));
    expect(new Set(accepted.values()).size).toBe(N);
    await eventually(
      async () => (await db`SELECT count(*)::int AS n FROM sessions WHERE agent_definition = 'echo' AND phase = 'Complete'`)[0].n === before + N,
      120_000,
      "every session Complete",
    );
    const [{ n: total }] = await db`SELECT count(*)::int AS n FROM sessions WHERE agent_definition = 'echo'`;
    expect(total).toBe(before + N);
    // Run once: one running event and one closing event each.
    const twice = await db`SELECT session, count(*)::int AS n FROM session_events WHERE type = 'session.status_running' GROUP BY namespace, session HAVING count(*) > 1`;
    expect(twice).toEqual([]);
    const unclosed = await db`SELECT s.name FROM sessions s WHERE s.agent_definition = 'echo' AND (SELECT count(*) FROM session_events e WHERE e.namespace = s.namespace AND e.session = s.name AND e.type = 'session.status_closed') <> 1`;
    expect(unclosed).toEqual([]);
    // Spread: every replica ran some.
    const owners = await db`SELECT owner, count(*)::int AS n FROM sessions WHERE agent_definition = 'echo' AND name = ANY(${[...accepted.values()]}) GROUP BY owner`;
    expect(owners.length).toBe(3);
  }, 180_000);

  test("200 webhooks without delivery ids at once over the replicas (inserted in batches): 200 sessions, each run once", async () => {
    const live = replicas.filter(alive);
    const before = (await db`SELECT count(*)::int AS n FROM sessions WHERE agent_definition = 'echo'`)[0].n as number;
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => post(live[i % live.length]!, echoUrl, { title: `batch ${i}` })));
    expect(answers.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
    const names = await Promise.all(answers.map(async (r) => ((await r.json()) as { session: string }).session));
    expect(new Set(names).size).toBe(200);
    await eventually(async () => (await db`SELECT count(*)::int AS n FROM sessions WHERE agent_definition = 'echo' AND phase = 'Complete'`)[0].n === before + 200, 60_000, "all Complete");
    const [{ n }] = await db`SELECT count(*)::int AS n FROM session_events WHERE type = 'session.status_running' AND session = ANY(${names})`;
    expect(n).toBe(200);
  }, 90_000);

  test("kill -9 of the replica running sessions: another ends them Error (replica lost) after the lease", async () => {
    const started = (await (await post(b, slowUrl, { title: "orphan" })).json()) as { session: string };
    await eventually(async () => (await session(a, started.session)).phase === "Running", 10_000, "running");
    const [where] = await ranOn(started.session);
    expect(where).toBeDefined();
    const survivor = replicas.find((r) => r !== where && alive(r))!;
    where!.proc.kill("SIGKILL");
    await where!.proc.exited;
    const ended = await eventually(async () => {
      const s = await session(survivor, started.session);
      return s.phase === "Error" ? s : undefined;
    }, 10_000, "the orphaned session ended");
    expect(ended.error).toBe("replica lost");
    const events = (await (await survivor.api(`/agents/${started.session}/events`)).json()) as { events: { type: string; content: { message?: string } }[] };
    expect(events.events.at(-1)!.type).toBe("session.status_closed");
    expect(events.events.some((e) => e.type === "session.error" && e.content.message?.includes("replica lost"))).toBe(true);
    const [{ n }] = await db`SELECT count(*)::int AS n FROM sessions WHERE phase = 'Running' AND owner = (SELECT owner FROM sessions WHERE name = ${started.session})`;
    expect(n).toBe(0);
  });
});

describe.skipIf(!HAVE_POSTGRES)("replicas on Postgres alone (no cluster): agents and secrets in Postgres too", () => {
  let pg: TestPostgres;
  const replicas: TestServer[] = [];
  const AGENTS = "/apis/pai.io/v1/namespaces/default/agents";
  const echo = { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name: "echo" }, spec: { models: ["pai/echo"], triggers: [{ webhook: {} }] } };

  async function replica(): Promise<TestServer> {
    // Callbacks to loopback (the test's receiver), retried only after a minute: a kill comes first.
    const r = await startServer({ args: ["--database", pg.url, "--allow-private-callbacks"], env: { PAI_REPLICA_LEASE_MS: String(REPLICA_LEASE_MS), PAI_CALLBACK_BACKOFF_MS: "60000,60000" } });
    replicas.push(r);
    return r;
  }
  const leaders = () => replicas.filter((r) => alive(r) && r.logs().split("leading: this replica runs the controller").length - r.logs().split("no longer leading").length === 1);
  const tokenOf = async (r: TestServer, name: string) => {
    const a = (await (await r.api(`${AGENTS}/${name}`)).json()) as { status?: { webhookUrl?: string } };
    return a.status?.webhookUrl?.split("/").pop();
  };
  const hook = (r: TestServer, name: string, token: string) => fetch(`${r.url}/webhooks/default/${name}/${token}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ title: "hi", wait: 20 }) });

  beforeAll(async () => {
    pg = await startPostgres();
  });
  afterAll(async () => {
    for (const r of replicas) {
      r.proc.kill("SIGKILL");
      await r.proc.exited;
      removeDir(r.dataDir);
    }
    pg?.stop();
  });

  test("an agent applied on A is served by B; one replica runs the controller; a rotation on B is refused by A", async () => {
    const a = await replica();
    const b = await replica();
    expect((await a.api(AGENTS, { method: "POST", json: echo })).status).toBe(201);
    const token = await eventually(() => tokenOf(b, "echo"), 10_000, "the webhook URL, read on B");
    expect(leaders().length).toBe(1);
    // B runs it (from its cache), and A reads the session.
    const res = await hook(b, "echo", token);
    expect(res.status).toBe(200);
    const reply = (await res.json()) as { session: string; phase: string; response: string };
    expect(reply.phase).toBe("Complete");
    expect(((await (await a.api(`/agents/${reply.session}`)).json()) as { response: string }).response).toBe(reply.response);
    // The page's rotation, on B: every replica refuses the old token and takes the new one.
    expect((await b.api("/api/v1/namespaces/default/secrets/pai-webhook-echo", { method: "DELETE" })).status).toBe(200);
    const rotated = await eventually(async () => {
      const t = await tokenOf(a, "echo");
      return t && t !== token ? t : undefined;
    }, 10_000, "a new token, read on A");
    for (const r of [a, b]) {
      await eventually(async () => (await hook(r, "echo", token)).status === 401, 3000, `the old token refused on ${r.url}`);
      expect((await hook(r, "echo", rotated)).status).toBe(200);
    }
  });

  test("the leader is killed (kill -9): another replica takes the controller, and reconciles a new agent", async () => {
    const [leader] = leaders();
    expect(leader).toBeDefined();
    const survivor = replicas.find((r) => r !== leader && alive(r))!;
    leader!.proc.kill("SIGKILL");
    await leader!.proc.exited;
    await eventually(() => leaders().includes(survivor), 10_000, "the survivor leading");
    expect((await survivor.api(AGENTS, { method: "POST", json: { ...echo, metadata: { name: "after" } } })).status).toBe(201);
    await eventually(() => tokenOf(survivor, "after"), 10_000, "the new agent reconciled");
  });

  test("a watch on one replica (?watch=1 from a list's resourceVersion) sees an agent applied on another, then its status", async () => {
    const live = replicas.filter(alive);
    while (live.length < 2) live.push(await replica());
    const [a, b] = live as [TestServer, TestServer];
    const list = (await (await b.api(AGENTS)).json()) as { metadata: { resourceVersion: string } };
    const ctrl = new AbortController();
    const res = await fetch(`${b.url}${AGENTS}?watch=1&resourceVersion=${list.metadata.resourceVersion}`, { headers: { authorization: `Bearer ${b.token}` }, signal: ctrl.signal });
    expect(res.status).toBe(200);
    const seen: { type: string; object: { metadata: { name: string; resourceVersion: string }; status?: { webhookUrl?: string } } }[] = [];
    const reading = (async () => {
      const decoder = new TextDecoder();
      let buf = "";
      for await (const chunk of res.body!) {
        buf += decoder.decode(chunk, { stream: true });
        for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) seen.push(JSON.parse(line));
        }
      }
    })().catch(() => {});
    expect((await a.api(AGENTS, { method: "POST", json: { ...echo, metadata: { name: "watched" } } })).status).toBe(201);
    const mine = () => seen.filter((e) => e.object.metadata.name === "watched");
    await eventually(() => mine().some((e) => e.type === "MODIFIED" && e.object.status?.webhookUrl), 10_000, "ADDED, then the status with the webhook URL");
    expect(mine()[0]!.type).toBe("ADDED");
    // In the order of their resourceVersions, each newer than the list's.
    const versions = mine().map((e) => Number(e.object.metadata.resourceVersion));
    expect(versions).toEqual([...versions].sort((x, y) => x - y));
    expect(versions[0]!).toBeGreaterThan(Number(list.metadata.resourceVersion));
    ctrl.abort();
    await reading;
  });

  test("namespaces (kubectl get ns) are those of the shared agents and secrets, on every replica", async () => {
    const live = replicas.filter(alive);
    while (live.length < 2) live.push(await replica());
    const [a, b] = live as [TestServer, TestServer];
    expect((await a.api("/apis/pai.io/v1/namespaces/team-x/agents", { method: "POST", json: { ...echo, metadata: { name: "in-x" } } })).status).toBe(201);
    await eventually(async () => {
      const list = (await (await b.api("/api/v1/namespaces")).json()) as { items: { metadata: { name: string } }[] };
      return list.items.some((n) => n.metadata.name === "team-x") && list.items.some((n) => n.metadata.name === "default");
    }, 5000, "team-x listed on the other replica");
  });

  test("a callback its replica could not deliver before dying (kill -9) is delivered by another, once", async () => {
    let calls = 0;
    const receiver = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(null, { status: ++calls === 1 ? 500 : 204 }) });
    try {
      const live = replicas.filter((r) => alive(r));
      if (live.length < 2) live.push(await replica());
      const token = (await tokenOf(live[0]!, "echo"))!;
      const res = await fetch(`${live[0]!.url}/webhooks/default/echo/${token}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ title: "call me back", callbackUrl: `http://127.0.0.1:${receiver.port}/hook` }) });
      expect(res.status).toBe(200);
      const { session } = (await res.json()) as { session: string };
      // The first attempt failed (500); the next is a minute away.
      await eventually(() => calls === 1, 10_000, "the first callback attempt");
      const db = new SQL(pg.url);
      try {
        const [{ owner }] = await db`SELECT owner FROM sessions WHERE name = ${session}`;
        const finisher = live.find((r) => String(owner).includes(`_${r.proc.pid}_`))!;
        expect(finisher).toBeDefined();
        finisher.proc.kill("SIGKILL");
        await finisher.proc.exited;
        await eventually(async () => (await db`SELECT callback_state FROM sessions WHERE name = ${session}`)[0].callback_state === "delivered", 15_000, "the callback delivered by another replica");
        expect(calls).toBe(2);
        await Bun.sleep(REPLICA_LEASE_MS);
        expect(calls).toBe(2);
      } finally {
        await db.close();
      }
    } finally {
      receiver.stop(true);
    }
  });

  test("retention: a replica removes old sessions it ran and those of replicas that are gone, never a live replica's", async () => {
    const db = new SQL(pg.url);
    try {
      const live = replicas.filter(alive);
      const owners = async () => (await db`SELECT DISTINCT owner FROM sessions WHERE finished_at IS NOT NULL`).map((r: { owner: string }) => r.owner);
      const liveOwned = (o: string) => live.some((r) => o.includes(`_${r.proc.pid}_`));
      const before = await owners();
      // Earlier tests killed replicas that had run sessions.
      expect(before.some((o: string) => !liveOwned(o))).toBe(true);
      const [{ n: liveBefore }] = await db`SELECT count(*)::int AS n FROM sessions WHERE owner = ANY(${before.filter(liveOwned)})`;
      const r = await startServer({ args: ["--database", pg.url, "--session-retention", "1s"], env: { PAI_REPLICA_LEASE_MS: String(REPLICA_LEASE_MS), PAI_RETENTION_INTERVAL_MS: "200" } });
      replicas.push(r);
      await eventually(async () => (await owners()).every(liveOwned), 10_000, "the gone replicas' sessions removed");
      // The live replicas' sessions are theirs to remove (with their folders): still there.
      const [{ n: liveAfter }] = await db`SELECT count(*)::int AS n FROM sessions WHERE owner = ANY(${before.filter(liveOwned)})`;
      expect(liveAfter).toBe(liveBefore);
      const [{ n: orphans }] = await db`SELECT count(*)::int AS n FROM session_events e WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE s.namespace = e.namespace AND s.name = e.session)`;
      expect(orphans).toBe(0);
    } finally {
      await db.close();
    }
  });

  test("--manifests: the leader applies the folder (and writes status into it); when it dies, the next leader takes the folder over", async () => {
    for (const r of replicas.filter(alive)) expect(await r.stop()).toBe(0);
    const dir = tempDir("pai-replica-manifests-");
    writeFileSync(join(dir, "folder.yaml"), agentYaml("from-folder"));
    try {
      const withFolder = async () => {
        const r = await startServer({ manifests: dir, args: ["--database", pg.url], env: { PAI_REPLICA_LEASE_MS: String(REPLICA_LEASE_MS) } });
        replicas.push(r);
        return r;
      };
      const first = await withFolder();
      await eventually(() => tokenOf(first, "from-folder"), 10_000, "the folder's agent reconciled");
      await eventually(() => readFileSync(join(dir, "folder.yaml"), "utf8").includes("webhookUrl"), 10_000, "the status written into the file");
      const second = await withFolder();
      expect(second.logs()).not.toContain("leading: this replica runs the controller");
      first.proc.kill("SIGKILL");
      await first.proc.exited;
      await eventually(() => second.logs().includes("leading: this replica runs the controller"), 10_000, "the second replica leading");
      // The folder is the second's now: an edit there is applied.
      writeFileSync(join(dir, "folder.yaml"), agentYaml("from-folder", "  maxTurns: 5\n"));
      await eventually(async () => {
        const a = (await (await second.api(`${AGENTS}/from-folder`)).json()) as { metadata: { generation: number } };
        return a.metadata.generation === 2;
      }, 10_000, "the edit applied by the new leader");
    } finally {
      removeDir(dir);
    }
  });

  test("Postgres goes away: a webhook gets 503 with Retry-After (the sender retries), not a 500, and the replica stays up", async () => {
    const [r] = replicas.filter(alive);
    expect(r).toBeDefined();
    const token = (await tokenOf(r!, "from-folder"))!;
    pg.stop();
    const res = await fetch(`${r!.url}/webhooks/default/from-folder/${token}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ title: "no database" }) });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("10");
    expect(((await res.json()) as { message: string }).message).toContain("retry later");
    expect((await fetch(`${r!.url}/healthz`)).status).toBe(200);
  });
});
