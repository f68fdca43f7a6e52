/**
 * Covers src/lib/ssrf.ts: which addresses a server-side request may reach (every special range,
 * IPv6 forms that carry an IPv4 address, IPv4 spellings that URL parsing rewrites), and the
 * request-time `callbackUrlProblem` with a resolver standing in for DNS.
 */
import { describe, expect, test } from "bun:test";
import { addressProblem, callbackUrlProblem, isPublicIp, resolveAllowed, ResolveError, SsrfError } from "../../src/lib/ssrf";

describe("addressProblem", () => {
  const forbidden: [string, RegExp][] = [
    ["0.0.0.0", /this network/],
    ["0.1.2.3", /this network/],
    ["10.1.2.3", /private/],
    ["100.64.0.1", /carrier-grade NAT/],
    ["100.127.255.254", /carrier-grade NAT/],
    ["127.0.0.1", /loopback/],
    ["127.255.255.254", /loopback/],
    ["169.254.169.254", /link-local/],
    ["172.16.0.1", /private/],
    ["172.31.255.255", /private/],
    ["192.0.0.8", /IETF/],
    ["192.0.2.10", /documentation/],
    ["192.88.99.1", /6to4 relay/],
    ["192.168.1.1", /private/],
    ["198.18.0.1", /benchmarking/],
    ["198.19.255.255", /benchmarking/],
    ["198.51.100.7", /documentation/],
    ["203.0.113.9", /documentation/],
    ["224.0.0.1", /multicast/],
    ["239.255.255.250", /multicast/],
    ["240.0.0.1", /reserved/],
    ["255.255.255.255", /broadcast/],
    ["::", /unspecified/],
    ["::1", /loopback/],
    // IPv4-mapped: judged by the IPv4 address, in either spelling.
    ["::ffff:127.0.0.1", /loopback/],
    ["::ffff:7f00:1", /loopback/],
    ["::ffff:a9fe:a9fe", /link-local/],
    ["::ffff:10.0.0.1", /private/],
    // IPv4-compatible ::/96 (deprecated): refused whole, even around a public IPv4 address.
    ["::127.0.0.1", /IPv4-compatible.*127\.0\.0\.1/],
    ["::7f00:1", /IPv4-compatible.*127\.0\.0\.1/],
    ["::8.8.8.8", /IPv4-compatible.*8\.8\.8\.8/],
    // IPv4-translated ::ffff:0:0:0/96 (obsolete): refused whole.
    ["::ffff:0:7f00:1", /IPv4-translated.*127\.0\.0\.1/],
    ["::ffff:0:808:808", /IPv4-translated.*8\.8\.8\.8/],
    // 6to4 2002::/16 (deprecated): refused whole.
    ["2002:7f00:1::", /6to4.*127\.0\.0\.1/],
    ["2002:a00:1::1", /6to4.*10\.0\.0\.1/],
    ["2002:808:808::1", /6to4.*8\.8\.8\.8/],
    // Well-known NAT64: judged by the IPv4 address.
    ["64:ff9b::127.0.0.1", /NAT64 address of 127\.0\.0\.1, a loopback/],
    ["64:ff9b::7f00:1", /NAT64 address of 127\.0\.0\.1, a loopback/],
    ["64:ff9b::a9fe:a9fe", /NAT64 address of 169\.254\.169\.254, a link-local/],
    // Local-use NAT64: refused whole.
    ["64:ff9b:1::7f00:1", /local-use NAT64/],
    ["64:ff9b:1:ffff::808:808", /local-use NAT64/],
    ["2001:0:4136:e378:8000:63bf:80ff:fffe", /Teredo/],
    ["2001:2::1", /IETF/],
    ["2001:db8::1", /documentation/],
    ["3fff::1", /documentation/],
    ["100::1", /discard/],
    ["5f00::1", /SRv6/],
    ["fc00::1", /unique local/],
    ["fd12:3456::1", /unique local/],
    ["fe80::1", /link-local/],
    ["fe80::1%eth0", /link-local/],
    ["febf::1", /link-local/],
    ["fec0::1", /site-local/],
    ["ff02::1", /multicast/],
    ["ff0e::1", /multicast/],
    ["4000::1", /not a global unicast/],
    ["::2", /IPv4-compatible/],
    ["localhost", /not an IP address/],
  ];
  test.each(forbidden)("%s is refused", (ip, why) => {
    expect(addressProblem(ip)).toMatch(why);
    expect(isPublicIp(ip)).toBe(false);
  });

  const allowed = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "100.63.255.255",
    "100.128.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "192.0.1.1",
    "198.17.255.255",
    "198.20.0.0",
    "223.255.255.255",
    "::ffff:8.8.8.8",
    "::ffff:808:808",
    "64:ff9b::8.8.8.8",
    "64:ff9b::808:808",
    "2001:200::1",
    "2001:4860:4860::8888",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "3ffe::1",
  ];
  test.each(allowed)("%s is public", (ip) => {
    expect(addressProblem(ip)).toBeNull();
    expect(isPublicIp(ip)).toBe(true);
  });
});

describe("callbackUrlProblem", () => {
  // Bun's URL parser rewrites these host spellings; the check must see what the connection would use.
  const refused: [string, RegExp][] = [
    ["http://2130706433/", /127\.0\.0\.1 is a loopback/],
    ["http://0x7f.1/", /127\.0\.0\.1 is a loopback/],
    ["http://0177.0.0.1/", /127\.0\.0\.1 is a loopback/],
    ["http://127.1/", /127\.0\.0\.1 is a loopback/],
    ["http://0x7f000001:8080/x", /127\.0\.0\.1 is a loopback/],
    ["http://0/", /0\.0\.0\.0 is a 'this network'/],
    ["http://%31%32%37.0.0.1/", /127\.0\.0\.1 is a loopback/],
    ["http://[::127.0.0.1]/", /IPv4-compatible/],
    ["http://[::ffff:0:7f00:1]/", /IPv4-translated/],
    ["http://[2002:7f00:1::]/", /6to4/],
    ["http://[::ffff:127.0.0.1]/", /loopback/],
    ["http://[::ffff:7f00:1]/", /loopback/],
    ["http://[0:0:0:0:0:ffff:127.0.0.1]/", /loopback/],
    ["http://[64:ff9b::127.0.0.1]/", /NAT64/],
    ["http://[64:ff9b:1::7f00:1]/", /local-use NAT64/],
    ["http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", /Teredo/],
    ["https://[fec0::1]/", /site-local/],
    ["http://255.255.255.255/", /broadcast/],
    ["http://192.0.2.1/", /documentation/],
    ["http://[::]/", /unspecified/],
  ];
  test.each(refused)("%s is refused", async (url, why) => {
    const problem = await callbackUrlProblem(url, false);
    expect(problem).toMatch(/^callbackUrl host /);
    expect(problem).toMatch(why);
  });

  test("a public address literal is accepted, and private ones too when the operator allows them", async () => {
    expect(await callbackUrlProblem("https://8.8.8.8/hook", false)).toBeNull();
    expect(await callbackUrlProblem("https://[2606:4700:4700::1111]/hook", false)).toBeNull();
    expect(await callbackUrlProblem("http://[::127.0.0.1]/", true)).toBeNull();
  });

  test("a name is refused when any one of its addresses is forbidden", async () => {
    const resolve = async (host: string) => (host === "mixed.test" ? ["8.8.8.8", "::ffff:10.0.0.1"] : ["8.8.8.8", "2606:4700:4700::1111"]);
    expect(await callbackUrlProblem("https://mixed.test/x", false, { resolve })).toBe("callbackUrl host mixed.test resolves to ::ffff:10.0.0.1, a private address");
    expect(await callbackUrlProblem("https://fine.test/x", false, { resolve })).toBeNull();
  });

  test("a name that does not resolve is refused with the resolver's code", async () => {
    const resolve = async () => {
      throw Object.assign(new Error("queryA ENOTFOUND"), { code: "ENOTFOUND" });
    };
    expect(await callbackUrlProblem("https://nowhere.test/x", false, { resolve })).toBe("callbackUrl host nowhere.test does not resolve (ENOTFOUND)");
  });

  test("syntax problems come first, even when private addresses are allowed", async () => {
    expect(await callbackUrlProblem("ftp://example.com/x", true)).toContain("http://");
    expect(await callbackUrlProblem("https://u:p@example.com/x", false)).toContain("user name or password");
  });
});

describe("resolveAllowed", () => {
  test("returns every address in the resolver's order, and tells policy refusals from resolver failures", async () => {
    expect(await resolveAllowed("two.test", { resolve: async () => ["8.8.8.8", "1.1.1.1"] })).toEqual(["8.8.8.8", "1.1.1.1"]);
    await expect(resolveAllowed("loop.test", { resolve: async () => ["127.0.0.1"] })).rejects.toBeInstanceOf(SsrfError);
    await expect(resolveAllowed("empty.test", { resolve: async () => [] })).rejects.toBeInstanceOf(ResolveError);
    // A resolver answering a name instead of an address must not lead to a second lookup.
    await expect(resolveAllowed("odd.test", { resolve: async () => ["localhost"] })).rejects.toThrow("resolves to localhost, not an IP address");
  });
});
