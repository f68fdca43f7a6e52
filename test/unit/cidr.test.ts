// Covers src/lib/cidr.ts: parseIp, parseCidr and cidrContains for IPv4, IPv6 and IPv4-mapped IPv6.
import { describe, expect, test } from "bun:test";
import { cidrContains, parseCidr, parseIp } from "../../src/lib/cidr";

/** An IPv4 address as its IPv4-mapped IPv6 number (::ffff:a.b.c.d). */
const v4 = (a: number, b: number, c: number, d: number) => (0xffffn << 32n) | BigInt((((a << 24) >>> 0) + (b << 16) + (c << 8) + d) >>> 0);

function contains(cidr: string, ip: string): boolean {
  const c = parseCidr(cidr);
  const n = parseIp(ip);
  if (!c) throw new Error(`test bug: ${cidr} did not parse`);
  if (n === null) throw new Error(`test bug: ${ip} did not parse`);
  return cidrContains(c, n);
}

describe("parseIp", () => {
  const valid: { input: string; expected: bigint }[] = [
    { input: "10.1.2.3", expected: v4(10, 1, 2, 3) },
    { input: "0.0.0.0", expected: v4(0, 0, 0, 0) },
    { input: "255.255.255.255", expected: v4(255, 255, 255, 255) },
    { input: "35.231.147.226", expected: v4(35, 231, 147, 226) },
    { input: "::", expected: 0n },
    { input: "::1", expected: 1n },
    { input: "[::1]", expected: 1n },
    { input: "[10.1.2.3]", expected: v4(10, 1, 2, 3) },
    { input: "2001:db8::", expected: 0x2001_0db8n << 96n },
    { input: "2001:DB8::1", expected: (0x2001_0db8n << 96n) | 1n },
    { input: "1:2:3:4:5:6:7:8", expected: 0x0001_0002_0003_0004_0005_0006_0007_0008n },
    { input: "::1:2:3:4:5:6:7", expected: 0x0000_0001_0002_0003_0004_0005_0006_0007n },
    { input: "fe80::1%eth0", expected: (0xfe80n << 112n) | 1n },
    { input: "::ffff:10.1.2.3", expected: v4(10, 1, 2, 3) },
    { input: "::ffff:0a01:0203", expected: v4(10, 1, 2, 3) },
  ];
  test.each(valid)("$input", ({ input, expected }) => {
    expect(parseIp(input)).toBe(expected);
  });

  test("an IPv4 address and its IPv4-mapped IPv6 form are the same number", () => {
    expect(parseIp("192.168.1.1")).toBe(parseIp("::ffff:192.168.1.1")!);
  });

  const invalid = [
    "",
    "256.1.1.1",
    "1.2.3",
    "1.2.3.4.5",
    "01.2.3.4",
    "1.2.3.-4",
    "a.b.c.d",
    "1::2::3",
    "1:::2",
    "gggg::",
    "12345::",
    ":1",
    "1:",
    "1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7::8",
    "::ffff:1.2.3",
    "::ffff:256.0.0.1",
    "1.2.3.4:80",
    "localhost",
  ];
  test.each(invalid)("rejects %p", (input) => {
    expect(parseIp(input)).toBeNull();
  });
});

describe("parseCidr", () => {
  const valid: { input: string; bits: number; base: bigint }[] = [
    { input: "10.0.0.0/8", bits: 104, base: v4(10, 0, 0, 0) },
    { input: "10.1.2.3/8", bits: 104, base: v4(10, 0, 0, 0) },
    { input: "35.231.147.226/32", bits: 128, base: v4(35, 231, 147, 226) },
    { input: "35.231.147.226", bits: 128, base: v4(35, 231, 147, 226) },
    { input: "0.0.0.0/0", bits: 96, base: v4(0, 0, 0, 0) },
    { input: "::/0", bits: 0, base: 0n },
    { input: "::1", bits: 128, base: 1n },
    { input: "2001:db8::/32", bits: 32, base: 0x2001_0db8n << 96n },
    { input: "::ffff:10.0.0.0/104", bits: 104, base: v4(10, 0, 0, 0) },
  ];
  test.each(valid)("$input → /$bits in 128-bit space", ({ input, bits, base }) => {
    const c = parseCidr(input);
    expect(c).not.toBeNull();
    expect(c!.bits).toBe(bits);
    expect(c!.base).toBe(base);
    expect(c!.text).toBe(input);
  });

  const invalid = ["10.0.0.0/", "10.0.0.0/x", "10.0.0.0/-1", "10.0.0.0/33", "35.231.147.226/33", "::/129", "not-an-ip", "256.0.0.0/8", "1::2::3/64", "/8", ""];
  test.each(invalid)("rejects %p", (input) => {
    expect(parseCidr(input)).toBeNull();
  });
});

describe("cidrContains", () => {
  const cases: { name: string; cidr: string; ip: string; expected: boolean }[] = [
    { name: "/32 matches its own address", cidr: "35.231.147.226/32", ip: "35.231.147.226", expected: true },
    { name: "/32 rejects the address below", cidr: "35.231.147.226/32", ip: "35.231.147.225", expected: false },
    { name: "/32 rejects the address above", cidr: "35.231.147.226/32", ip: "35.231.147.227", expected: false },
    { name: "bare address is a /32", cidr: "35.231.147.226", ip: "35.231.147.227", expected: false },
    { name: "/16 first address", cidr: "192.168.0.0/16", ip: "192.168.0.0", expected: true },
    { name: "/16 last address", cidr: "192.168.0.0/16", ip: "192.168.255.255", expected: true },
    { name: "/16 just below", cidr: "192.168.0.0/16", ip: "192.167.255.255", expected: false },
    { name: "/16 just above", cidr: "192.168.0.0/16", ip: "192.169.0.0", expected: false },
    { name: "IPv4 range matches an IPv4-mapped client", cidr: "10.0.0.0/8", ip: "::ffff:10.1.2.3", expected: true },
    { name: "IPv4-mapped range matches a plain IPv4 client", cidr: "::ffff:10.0.0.0/104", ip: "10.1.2.3", expected: true },
    { name: "IPv4-mapped range rejects an address outside it", cidr: "::ffff:10.0.0.0/104", ip: "11.0.0.1", expected: false },
    { name: "IPv4 range does not match a plain IPv6 address", cidr: "10.0.0.0/8", ip: "::a01:203", expected: false },
    { name: "IPv4 /0 matches any IPv4", cidr: "0.0.0.0/0", ip: "203.0.113.9", expected: true },
    { name: "IPv4 /0 does not match IPv6", cidr: "0.0.0.0/0", ip: "2001:db8::1", expected: false },
    { name: "IPv6 /0 matches IPv6", cidr: "::/0", ip: "2001:db8::1", expected: true },
    { name: "IPv6 /0 matches IPv4 too", cidr: "::/0", ip: "8.8.8.8", expected: true },
    { name: "loopback ::1/128", cidr: "::1/128", ip: "[::1]", expected: true },
    { name: "::1/128 rejects ::2", cidr: "::1/128", ip: "::2", expected: false },
    { name: "2001:db8::/32 inside", cidr: "2001:db8::/32", ip: "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", expected: true },
    { name: "2001:db8::/32 outside", cidr: "2001:db8::/32", ip: "2001:db9::", expected: false },
    { name: "fc00::/7 covers fd00::", cidr: "fc00::/7", ip: "fd12:3456::1", expected: true },
    { name: "fc00::/7 excludes fe00::", cidr: "fc00::/7", ip: "fe00::1", expected: false },
  ];
  test.each(cases)("$name", ({ cidr, ip, expected }) => {
    expect(contains(cidr, ip)).toBe(expected);
  });
});

describe("IPv6 forms that carry an IPv4 address", () => {
  // The SSRF rule (src/lib/ssrf.ts) tells these apart by number, so only the IPv4-mapped form may
  // equal the plain IPv4 address; the others must stay distinct IPv6 numbers.
  const cases: { input: string; expected: bigint }[] = [
    { input: "::ffff:127.0.0.1", expected: v4(127, 0, 0, 1) },
    { input: "::ffff:7f00:1", expected: v4(127, 0, 0, 1) },
    { input: "0:0:0:0:0:ffff:127.0.0.1", expected: v4(127, 0, 0, 1) },
    { input: "::127.0.0.1", expected: 0x7f00_0001n },
    { input: "::7f00:1", expected: 0x7f00_0001n },
    { input: "::ffff:0:127.0.0.1", expected: (0xffffn << 48n) | 0x7f00_0001n },
    { input: "64:ff9b::127.0.0.1", expected: (0x64_ff9bn << 96n) | 0x7f00_0001n },
    { input: "2002:7f00:1::", expected: (0x2002n << 112n) | (0x7f00_0001n << 80n) },
  ];
  test.each(cases)("$input", ({ input, expected }) => {
    expect(parseIp(input)).toBe(expected);
  });
});
