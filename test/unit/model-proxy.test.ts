// Covers src/harness/models/proxy.ts: which proxy a model call takes under the operator's settings, NO_PROXY matching, and that modelFetch ignores this process's proxy variables.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { modelFetch, noProxyMatches, proxyFor } from "../../src/harness/models/proxy";
import { startFakeProxy } from "../fakes/http-proxy";

describe("proxyFor", () => {
  const cases: [string, Parameters<typeof proxyFor>[1], string | false][] = [
    ["http://api.example.com/v1", {}, false],
    ["http://api.example.com/v1", { HTTP_PROXY: "http://p:3128" }, "http://p:3128"],
    ["https://api.example.com/v1", { HTTP_PROXY: "http://p:3128" }, false],
    ["https://api.example.com/v1", { HTTPS_PROXY: "http://s:3128" }, "http://s:3128"],
    ["http://api.example.com/v1", { HTTPS_PROXY: "http://s:3128" }, false],
    ["https://api.example.com/v1", { ALL_PROXY: "http://all:1" }, "http://all:1"],
    ["https://api.example.com/v1", { HTTPS_PROXY: "http://s:2", ALL_PROXY: "http://all:1" }, "http://s:2"],
    // Bun ignores an ALL_PROXY it cannot speak (socks) and connects directly; so do we.
    ["https://api.example.com/v1", { ALL_PROXY: "socks5://127.0.0.1:1080" }, false],
    // A value without a scheme is an http:// proxy, as Bun reads it from the environment.
    ["http://api.example.com/v1", { HTTP_PROXY: "proxy.corp:3128" }, "http://proxy.corp:3128"],
    ["http://api.example.com/v1", { HTTP_PROXY: "  " }, false],
    ["http://api.example.com/v1", { HTTP_PROXY: "http://p:3128", NO_PROXY: "example.com" }, false],
    ["http://api.example.com/v1", { HTTP_PROXY: "http://p:3128", NO_PROXY: "other.com" }, "http://p:3128"],
  ];
  for (const [url, settings, expected] of cases) {
    test(`${url} with ${JSON.stringify(settings)} → ${expected}`, () => {
      expect(proxyFor(new URL(url), settings)).toBe(expected);
    });
  }
});

describe("noProxyMatches", () => {
  const cases: [string, string, boolean][] = [
    ["http://anything.test/", "*", true],
    ["http://api.example.com/", "example.com", true],
    ["http://example.com/", "example.com", true],
    ["http://example.com/", ".example.com", true],
    ["http://api.example.com/", "*.example.com", true],
    ["http://notexample.com/", "example.com", false],
    ["http://API.Example.COM./", "EXAMPLE.com", true],
    ["http://localhost:11434/", "other, localhost", true],
    ["http://localhost:11434/", "localhost:11434", true],
    ["http://localhost:11434/", "localhost:8080", false],
    ["http://example.com/", "example.com:80", true],
    ["https://example.com/", "example.com:80", false],
    ["http://127.0.0.1:8080/", "127.0.0.1", true],
    ["http://127.0.0.1:8080/", "127.0.0.0/8", true],
    ["http://10.1.2.3/", "127.0.0.0/8,10.0.0.0/8", true],
    ["http://192.168.1.1/", "10.0.0.0/8", false],
    // IP addresses match whole, never by suffix.
    ["http://127.0.0.1/", ".0.0.1", false],
    ["http://[::1]:8080/", "::1", true],
    ["http://[::1]:8080/", "[::1]:8080", true],
    ["http://[fd00::5]/", "fd00::/8", true],
    ["http://api.example.com/", "", false],
  ];
  for (const [url, noProxy, expected] of cases) {
    test(`${url} with NO_PROXY=${JSON.stringify(noProxy)} → ${expected}`, () => {
      expect(noProxyMatches(new URL(url), noProxy)).toBe(expected);
    });
  }
});

describe("modelFetch", () => {
  const proxy = startFakeProxy();
  const target = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("direct") });
  const url = `http://127.0.0.1:${target.port}/v1/chat/completions`;
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"]) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    proxy.reset();
  });
  afterAll(async () => {
    await proxy.stop();
    await target.stop(true);
  });

  test("this process's proxy variables steer plain fetch (what the old model clients used) …", async () => {
    process.env.http_proxy = proxy.url;
    await (await fetch(url)).text();
    expect(proxy.requests.map((r) => r.url)).toEqual([url]);
  });

  test("… but not modelFetch: without operator settings it connects directly", async () => {
    process.env.HTTP_PROXY = process.env.http_proxy = process.env.ALL_PROXY = proxy.url;
    expect(await (await modelFetch()(url, { method: "POST", body: "{}" })).text()).toBe("direct");
    expect(await (await modelFetch({})(new Request(url))).text()).toBe("direct");
    expect(proxy.requests).toEqual([]);
  });

  test("the operator's proxy is used, and this process's NO_PROXY cannot take the call around it", async () => {
    process.env.NO_PROXY = process.env.no_proxy = "*";
    const res = await modelFetch({ HTTP_PROXY: proxy.url })(url, { method: "POST", headers: { authorization: "Bearer sk-test" }, body: "{}" });
    expect(await res.text()).toBe("direct");
    expect(proxy.requests.map((r) => [r.method, r.url, r.headers.authorization])).toEqual([["POST", url, "Bearer sk-test"]]);
  });

  test("the operator's NO_PROXY connects directly", async () => {
    expect(await (await modelFetch({ HTTP_PROXY: proxy.url, NO_PROXY: "127.0.0.1" })(url)).text()).toBe("direct");
    expect(proxy.requests).toEqual([]);
  });
});
