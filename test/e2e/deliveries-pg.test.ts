/**
 * The delivery log on Postgres (test/pg.ts): the repository's pages, caps and retention query
 * against a real Postgres, then two `pai serve --database` replicas (agents in Postgres too)
 * sharing one log: a delivery answered by either is listed by both, and the retention job of a
 * replica removes entries older than --session-retention.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { createPgRunRepo } from "../../src/store/pg/run-repo";
import { createPgDeliveryRepo } from "../../src/store/pg/deliveries";
import type { DeliveryEntry } from "../../src/store/deliveries";
import { eventually, removeDir, startServer, type TestServer } from "../helpers";
import { HAVE_POSTGRES, startPostgres, warnSkippedWithoutPostgres, type TestPostgres } from "../pg";

warnSkippedWithoutPostgres("test/e2e/deliveries-pg.test.ts (the delivery log on Postgres, shared by replicas)");

interface Delivery {
  time: string;
  sender: string;
  delivery?: string;
  code: number;
  session?: string;
  reason?: string;
}

describe.skipIf(!HAVE_POSTGRES)("the delivery log on Postgres", () => {
  let pg: TestPostgres;
  let sql: SQL;
  const replicas: TestServer[] = [];

  beforeAll(async () => {
    pg = await startPostgres();
    sql = new SQL(pg.url);
    const migrator = createPgRunRepo(new SQL(pg.url));
    await migrator.migrate();
    await migrator.close();
  });
  afterAll(async () => {
    for (const r of replicas) {
      r.proc.kill("SIGKILL");
      await r.proc.exited;
      removeDir(r.dataDir);
    }
    await sql?.close();
    pg?.stop();
  });

  test("the repository: pages newest first, caps (refused at most their share), retention among the oldest", async () => {
    const repo = createPgDeliveryRepo(sql);
    const at = (i: number) => new Date(Date.parse("2026-03-01T00:00:00.000Z") + i * 1000).toISOString();
    const e = (i: number, over: Partial<DeliveryEntry> = {}): DeliveryEntry => ({ time: at(i), namespace: "repo", agent: "a", sender: "generic", code: 200, session: `s${i}`, ...over });
    const bad = (i: number): DeliveryEntry => e(i, { code: 401, session: undefined, reason: `bad ${i}`, delivery: `d${i}` });
    const caps = { perAgent: 10, refusedPerAgent: 4 };
    await repo.append([...Array.from({ length: 6 }, (_, i) => bad(i)), ...Array.from({ length: 6 }, (_, i) => e(10 + i)), e(99, { agent: "b" })], caps);
    const all = await repo.list("repo", "a", 100);
    expect(all.map((d) => d.reason ?? d.session)).toEqual(["s15", "s14", "s13", "s12", "s11", "s10", "bad 5", "bad 4", "bad 3", "bad 2"]);
    expect(all[6]).toEqual({ id: all[6]!.id, time: at(5), namespace: "repo", agent: "a", sender: "generic", delivery: "d5", code: 401, reason: "bad 5" });
    expect(typeof all[0]!.id).toBe("number");
    const page = await repo.list("repo", "a", 3, all[2]!.id);
    expect(page.map((d) => d.session)).toEqual(["s12", "s11", "s10"]);
    // A flood of refused ones stops at their share; the accepted ones stay.
    await repo.append(Array.from({ length: 30 }, (_, i) => bad(100 + i)), caps);
    const after = await repo.list("repo", "a", 100);
    expect(after.filter((d) => d.code === 401).map((d) => d.reason)).toEqual(["bad 129", "bad 128", "bad 127", "bad 126"]);
    expect(after.filter((d) => d.code === 200)).toHaveLength(6);
    expect((await repo.list("repo", "b", 10)).map((d) => d.session)).toEqual(["s99"]);
    // Retention: entries before the cutoff among the oldest; none left: 0.
    expect(await repo.removeBefore(at(50), 2)).toBe(2);
    expect(await repo.removeBefore(at(50), 100)).toBe(4);
    expect(await repo.removeBefore(at(50), 100)).toBe(0);
    expect((await repo.list("repo", "a", 100)).map((d) => d.reason)).toEqual(["bad 129", "bad 128", "bad 127", "bad 126"]);
  });

  test("two replicas share one log: a delivery answered by either is listed by both; old entries go", async () => {
    const start = async () => {
      const r = await startServer({ args: ["--database", pg.url], env: { PAI_REPLICA_LEASE_MS: "1500", PAI_RETENTION_INTERVAL_MS: "200" } });
      replicas.push(r);
      return r;
    };
    const [a, b] = [await start(), await start()];
    const AGENT = "/apis/pai.io/v1/namespaces/default/agents/echo";
    expect((await a.api(AGENT, { method: "PUT", json: { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name: "echo" }, spec: { models: ["pai/echo"], triggers: [{ webhook: {} }] } } })).status).toBeLessThan(300);
    const token = await eventually(async () => ((await (await b.api(AGENT)).json()) as { status?: { webhookUrl?: string } }).status?.webhookUrl?.split("/").pop(), 10_000, "the webhook URL, read on B");
    const hook = (r: TestServer, t: string, key: string) =>
      fetch(`${r.url}/webhooks/default/echo/${t}`, { method: "POST", headers: { "content-type": "application/json", "idempotency-key": key }, body: JSON.stringify({ title: key }) });
    const first = (await (await hook(a, token, "on-a")).json()) as { session: string };
    expect((await hook(b, "0".repeat(64), "bad-on-b")).status).toBe(401);
    const second = (await (await hook(b, token, "on-b")).json()) as { session: string };
    // The same delivery sent again to the other replica: the session the first started.
    expect(((await (await hook(a, token, "on-b")).json()) as { session: string }).session).toBe(second.session);

    const logOf = async (r: TestServer) => ((await (await r.api(`${AGENT}/deliveries`)).json()) as { items: Delivery[] }).items;
    const expected = [
      { sender: "generic", delivery: "on-b", code: 200, session: second.session },
      { sender: "generic", delivery: "on-b", code: 200, session: second.session },
      { sender: "generic", delivery: "bad-on-b", code: 401, reason: "invalid webhook token" },
      { sender: "generic", delivery: "on-a", code: 200, session: first.session },
    ];
    const strip = (l: Delivery[]) => l.map(({ time: _t, ...rest }) => rest);
    // Each replica writes its own answers within a second; a read on one writes its own first.
    for (const r of [a, b]) {
      const seen = await eventually(async () => {
        const l = await logOf(r);
        return l.length === 4 ? l : undefined;
      }, 5000, `four entries read on ${r === a ? "A" : "B"}`);
      expect(new Set(strip(seen).map((d) => JSON.stringify(d)))).toEqual(new Set(expected.map((d) => JSON.stringify(d))));
    }
    // And the CLI reads it from either.
    const cli = await b.cli(["get", "deliveries", "echo"]);
    expect(cli.code).toBe(0);
    expect(cli.stdout.trimEnd().split("\n")).toHaveLength(5);

    // Retention (30 days by default): entries made before then go, whichever replica removes them.
    await sql`UPDATE delivery_log SET time = ${new Date(Date.now() - 31 * 86_400_000).toISOString()} WHERE namespace = 'default' AND agent = 'echo' AND delivery <> 'on-b'`;
    await eventually(async () => (await logOf(a)).length === 2, 5000, "the old entries removed");
    expect((await logOf(b)).map((d) => d.delivery)).toEqual(["on-b", "on-b"]);
  });
});
