/**
 * allowCIDRs and X-Forwarded-For through real sockets: IPv4, IPv6 and IPv4-mapped peers, trusted
 * proxies, and a client that is not behind a trusted proxy trying to spoof its address.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { eventually, startServer, type TestServer } from "../helpers";

const servers: TestServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

async function serverWith(args: string[]): Promise<TestServer> {
  const s = await startServer({ args });
  servers.push(s);
  return s;
}

async function hook(s: TestServer, name: string, allowCIDRs: string[]): Promise<string> {
  const res = await s.api(`/apis/pai.io/v1/namespaces/default/agents/${name}`, {
    method: "PUT",
    json: { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name }, spec: { models: ["pai/echo"], triggers: [{ webhook: { allowCIDRs } }] } },
  });
  expect(res.status).toBe(201);
  const url = await eventually(async () => ((await (await s.api(`/apis/pai.io/v1/namespaces/default/agents/${name}`)).json()) as { status: { webhookUrl?: string } }).status.webhookUrl, 5000, "url");
  return url.replace(/^http:\/\/localhost:\d+/, s.url);
}

const call = (url: string, xff?: string, method = "POST") =>
  fetch(url, {
    method,
    headers: { "content-type": "application/json", ...(xff ? { "x-forwarded-for": xff } : {}) },
    ...(method === "POST" ? { body: '{"title":"hi"}' } : {}),
  }).then((r) => r.status);

describe("behind trusted proxies (the default: loopback only)", () => {
  test("the client is the right-most address that is not a trusted proxy", async () => {
    const s = await serverWith([]);
    const url = await hook(s, "linear-only", ["35.231.147.226/32", "35.243.134.228/32", "2001:db8::/32"]);
    expect(await call(url)).toBe(403); // the loopback peer itself is not allowed
    expect(await call(url, "", "GET")).toBe(403); // pings too
    expect(await call(url, "35.231.147.226")).toBe(200);
    expect(await call(url, "35.231.147.226", "GET")).toBe(200);
    // 10.0.0.5 is not trusted by default: a LAN host could otherwise forge the header.
    expect(await call(url, "35.243.134.228, 10.0.0.5")).toBe(403);
    expect(await call(url, "2001:db8::7")).toBe(200);
    // 8.8.8.8 prepended an allowed address to its own header: the proxy appended the real one.
    expect(await call(url, "35.231.147.226, 8.8.8.8")).toBe(403);
    expect(await call(url, "garbage, 35.231.147.226")).toBe(200);
    expect(await call(url, "35.231.147.226, garbage")).toBe(403);
  });

  test("a load balancer's range is trusted once added; the start-up log warns that a broad trust list meets allowCIDRs", async () => {
    const s = await serverWith(["--trusted-proxies", "127.0.0.0/8,10.0.0.0/8"]);
    const url = await hook(s, "behind-lb", ["35.231.147.226/32"]);
    expect(await call(url, "35.231.147.226, 10.0.0.5")).toBe(200);
    expect(await call(url, "35.231.147.226, 10.0.0.5, 8.8.8.8")).toBe(403);
    // The warning is given at start for agents that exist then: restart on the same data dir.
    await s.stop();
    const again = await startServer({ dataDir: s.dataDir, args: ["--trusted-proxies", "127.0.0.0/8,10.0.0.0/8"] });
    servers.push(again);
    await eventually(() => /allowCIDRs.*10\.0\.0\.0\/8/.test(again.logs()), 5000, "warning in the log");
    const quiet = servers[0]!;
    expect(quiet.logs()).not.toContain("trusted proxies");
  });

  test("the 403 says which address was refused", async () => {
    const s = servers[0]!;
    const url = await hook(s, "named", ["35.231.147.226/32"]);
    const res = await fetch(url, { method: "POST", headers: { "x-forwarded-for": "203.0.113.9" }, body: "{}" });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { message: string }).message).toBe("requests from 203.0.113.9 are not allowed by this agent's allowCIDRs");
  });
});

describe("a client that is not behind a trusted proxy", () => {
  test("cannot spoof its address with X-Forwarded-For", async () => {
    const s = await serverWith(["--trusted-proxies", "192.0.2.1/32"]);
    const url = await hook(s, "guarded", ["35.231.147.226/32"]);
    expect(await call(url, "35.231.147.226")).toBe(403);
    const local = await hook(s, "local", ["127.0.0.1/32"]);
    expect(await call(local, "35.231.147.226")).toBe(200); // the header is ignored, the peer counts
  });
});

describe("IPv6 and IPv4-mapped peers", () => {
  test("an IPv6 peer matches an IPv6 range", async () => {
    const s = await serverWith(["--host", "::1", "--trusted-proxies", "192.0.2.1/32"]);
    expect(await call(await hook(s, "v6", ["::1/128"]))).toBe(200);
    expect(await call(await hook(s, "v4only", ["127.0.0.1/32"]))).toBe(403);
  });

  test("an IPv4 client of a dual-stack listener (::ffff:127.0.0.1) matches an IPv4 range", async () => {
    const s = await serverWith(["--host", "::", "--trusted-proxies", "192.0.2.1/32"]);
    expect(await call(await hook(s, "mapped", ["127.0.0.0/8"]))).toBe(200);
    expect(await call(await hook(s, "mapped-no", ["10.0.0.0/8"]))).toBe(403);
  });
});
