// Covers src/lib/client-ip.ts: clientIp (X-Forwarded-For behind trusted proxies, the safe way) and ipAllowed.
import { describe, expect, test } from "bun:test";
import { parseCidr, type Cidr } from "../../src/lib/cidr";
import { clientIp, ipAllowed } from "../../src/lib/client-ip";

function cidrs(...texts: string[]): Cidr[] {
  return texts.map((t) => {
    const c = parseCidr(t);
    if (!c) throw new Error(`test bug: ${t} did not parse`);
    return c;
  });
}

const LOOPBACK = cidrs("127.0.0.0/8", "::1/128");
const PROXIES = cidrs("10.0.0.0/8", "127.0.0.0/8", "::1/128", "fd00::/8");

describe("clientIp", () => {
  const cases: { name: string; peer: string; xff?: string | null; trusted: Cidr[]; expected: string }[] = [
    { name: "no proxies trusted: the peer", peer: "203.0.113.7", xff: null, trusted: [], expected: "203.0.113.7" },
    { name: "spoofed XFF from an untrusted peer is ignored", peer: "203.0.113.7", xff: "127.0.0.1", trusted: LOOPBACK, expected: "203.0.113.7" },
    { name: "spoofed XFF, nothing trusted", peer: "203.0.113.7", xff: "10.1.1.1, 127.0.0.1", trusted: [], expected: "203.0.113.7" },
    { name: "one trusted proxy", peer: "127.0.0.1", xff: "198.51.100.4", trusted: LOOPBACK, expected: "198.51.100.4" },
    { name: "two trusted proxies", peer: "10.0.0.2", xff: "198.51.100.4, 10.0.0.1", trusted: PROXIES, expected: "198.51.100.4" },
    {
      name: "client-sent XFF left of the real client is not believed",
      peer: "10.0.0.2",
      xff: "127.0.0.1, 6.6.6.6, 198.51.100.4, 10.0.0.1",
      trusted: PROXIES,
      expected: "198.51.100.4",
    },
    { name: "multiple XFF headers joined", peer: "127.0.0.1", xff: "6.6.6.6, 198.51.100.4, 10.0.0.1", trusted: PROXIES, expected: "198.51.100.4" },
    { name: "trusted peer, no XFF", peer: "127.0.0.1", xff: null, trusted: LOOPBACK, expected: "127.0.0.1" },
    { name: "trusted peer, empty XFF", peer: "127.0.0.1", xff: " ", trusted: LOOPBACK, expected: "127.0.0.1" },
    { name: "all hops trusted: the left-most", peer: "10.0.0.3", xff: "10.0.0.1, 10.0.0.2", trusted: PROXIES, expected: "10.0.0.1" },
    { name: "empty entries are skipped", peer: "10.0.0.3", xff: "198.51.100.4, , 10.0.0.1,", trusted: PROXIES, expected: "198.51.100.4" },
    { name: "garbage right after a trusted peer: the peer", peer: "127.0.0.1", xff: "198.51.100.4, unknown", trusted: LOOPBACK, expected: "127.0.0.1" },
    { name: "garbage stops the walk at the last good hop", peer: "10.0.0.3", xff: "198.51.100.4, not-an-ip, 10.0.0.1", trusted: PROXIES, expected: "10.0.0.1" },
    { name: "garbage left of the client is irrelevant", peer: "10.0.0.3", xff: "<script>, 198.51.100.4, 10.0.0.1", trusted: PROXIES, expected: "198.51.100.4" },
    { name: "IPv4 with a port", peer: "127.0.0.1", xff: "198.51.100.4:5678", trusted: LOOPBACK, expected: "198.51.100.4" },
    { name: "bracketed IPv6 with a port", peer: "::1", xff: "[2001:db8::1]:443", trusted: LOOPBACK, expected: "2001:db8::1" },
    { name: "bracketed IPv6 without a port", peer: "::1", xff: "[2001:db8::1]", trusted: LOOPBACK, expected: "2001:db8::1" },
    { name: "bare IPv6 hop", peer: "::1", xff: "2001:db8::42", trusted: LOOPBACK, expected: "2001:db8::42" },
    { name: "IPv6 proxy chain", peer: "fd00::2", xff: "2001:db8::42, fd00::1", trusted: PROXIES, expected: "2001:db8::42" },
    { name: "IPv4-mapped loopback peer is trusted by 127.0.0.0/8", peer: "::ffff:127.0.0.1", xff: "198.51.100.4", trusted: LOOPBACK, expected: "198.51.100.4" },
    { name: "IPv4-mapped untrusted peer", peer: "::ffff:203.0.113.7", xff: "198.51.100.4", trusted: LOOPBACK, expected: "::ffff:203.0.113.7" },
    { name: "IPv4-mapped trusted hop in XFF", peer: "127.0.0.1", xff: "198.51.100.4, ::ffff:10.0.0.1", trusted: PROXIES, expected: "198.51.100.4" },
    { name: "bad port is garbage", peer: "127.0.0.1", xff: "198.51.100.4:http", trusted: LOOPBACK, expected: "127.0.0.1" },
    { name: "unclosed bracket is garbage", peer: "127.0.0.1", xff: "[2001:db8::1", trusted: LOOPBACK, expected: "127.0.0.1" },
    { name: "unparseable peer is returned as is", peer: "unix-socket", xff: "198.51.100.4", trusted: LOOPBACK, expected: "unix-socket" },
  ];
  for (const c of cases) test(c.name, () => expect(clientIp(c.peer, c.xff, c.trusted)).toBe(c.expected));

  test("undefined XFF", () => expect(clientIp("127.0.0.1", undefined, LOOPBACK)).toBe("127.0.0.1"));
});

describe("ipAllowed", () => {
  const allow = cidrs("10.0.0.0/8", "2001:db8::/32");
  const cases: { ip: string; expected: boolean }[] = [
    { ip: "10.1.2.3", expected: true },
    { ip: "::ffff:10.1.2.3", expected: true },
    { ip: "[::ffff:10.1.2.3]:80", expected: true },
    { ip: "10.1.2.3:8080", expected: true },
    { ip: "11.0.0.1", expected: false },
    { ip: "2001:db8::1", expected: true },
    { ip: "[2001:db8::1]:443", expected: true },
    { ip: "2001:db9::1", expected: false },
    { ip: "garbage", expected: false },
    { ip: "", expected: false },
  ];
  for (const c of cases) test(`${c.ip || "(empty)"} → ${c.expected}`, () => expect(ipAllowed(c.ip, allow)).toBe(c.expected));

  test("an empty allow list allows nothing", () => expect(ipAllowed("10.1.2.3", [])).toBe(false));
  test("0.0.0.0/0 allows IPv4 but not IPv6", () => {
    expect(ipAllowed("203.0.113.7", cidrs("0.0.0.0/0"))).toBe(true);
    expect(ipAllowed("2001:db8::1", cidrs("0.0.0.0/0"))).toBe(false);
  });
});
