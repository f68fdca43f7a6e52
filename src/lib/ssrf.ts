/**
 * May a server-side request go to this address? Callback URLs come from anonymous webhook callers
 * (and web pages an agent fetches come from anyone), so by default a request may only reach public
 * unicast addresses: never loopback, private, link-local (the cloud metadata service at
 * 169.254.169.254), multicast or other special ranges, however the address is spelled.
 *
 * The decision is made on the resolved address. IPv6 forms that carry an IPv4 address are judged by
 * what the packet reaches: IPv4-mapped (::ffff:a.b.c.d) and well-known NAT64 (64:ff9b::a.b.c.d)
 * addresses by their IPv4 address; deprecated transition forms (IPv4-compatible ::a.b.c.d,
 * IPv4-translated, 6to4, Teredo) and local-use NAT64 are refused whole.
 */
import { lookup } from "node:dns/promises";
import { cidrContains, parseCidr, parseIp, type Cidr } from "./cidr";

interface Range {
  cidr: Cidr;
  why: string;
  /** Where the range carries an IPv4 address, so the message can name it. */
  v4?: (n: bigint) => bigint;
}

const low32 = (n: bigint) => n & 0xffffffffn;
const range = (text: string, why: string, v4?: (n: bigint) => bigint): Range => ({ cidr: parseCidr(text)!, why, v4 });

// IANA's special-purpose registry, less the few globally reachable anycast entries in 192.0.0.0/24,
// which no callback receiver uses.
const V4: Range[] = [
  range("0.0.0.0/8", "a 'this network' address"),
  range("10.0.0.0/8", "a private address"),
  range("100.64.0.0/10", "a carrier-grade NAT address"),
  range("127.0.0.0/8", "a loopback address"),
  range("169.254.0.0/16", "a link-local address"),
  range("172.16.0.0/12", "a private address"),
  range("192.0.0.0/24", "an IETF protocol address"),
  range("192.0.2.0/24", "a documentation address"),
  range("192.88.99.0/24", "a 6to4 relay address"),
  range("192.168.0.0/16", "a private address"),
  range("198.18.0.0/15", "a benchmarking address"),
  range("198.51.100.0/24", "a documentation address"),
  range("203.0.113.0/24", "a documentation address"),
  range("224.0.0.0/4", "a multicast address"),
  range("240.0.0.0/4", "a reserved or broadcast address"),
];

const V4_MAPPED = range("::ffff:0:0/96", "an IPv4-mapped address");
// On an IPv6-only host behind DNS64 every IPv4-only site resolves into this prefix, so refusing it
// whole would cut such a server off from most of the internet; RFC 6052 forbids it for non-global
// IPv4 addresses, which is the rule applied to the embedded address here.
const NAT64 = range("64:ff9b::/96", "a NAT64 address");
const GLOBAL_UNICAST = range("2000::/3", "global unicast");

// First match wins, so the narrow ranges come before the ones that contain them. The deprecated
// transition forms are refused whole: real hosts do not publish them, and whether a kernel or a
// relay turns them into IPv4 traffic (possibly to 127.0.0.1) differs from system to system.
const V6: Range[] = [
  range("::/128", "the unspecified address"),
  range("::1/128", "a loopback address"),
  range("::/96", "an IPv4-compatible address (deprecated)", low32),
  range("::ffff:0:0:0/96", "an IPv4-translated address (obsolete)", low32),
  // The embedded IPv4 address sits where the operator's prefix length puts it, so it cannot be read.
  range("64:ff9b:1::/48", "a local-use NAT64 address"),
  range("100::/64", "a discard-only address"),
  range("2001::/32", "a Teredo address (deprecated)"),
  range("2001::/23", "an IETF protocol address"),
  range("2001:db8::/32", "a documentation address"),
  range("2002::/16", "a 6to4 address (deprecated)", (n) => (n >> 80n) & 0xffffffffn),
  range("3fff::/20", "a documentation address"),
  range("5f00::/16", "an SRv6 segment identifier"),
  range("fc00::/7", "a unique local (private) address"),
  range("fe80::/10", "a link-local address"),
  range("fec0::/10", "a site-local address (deprecated)"),
  range("ff00::/8", "a multicast address"),
];

const v4Text = (n: bigint) => [24n, 16n, 8n, 0n].map((s) => Number((n >> s) & 0xffn)).join(".");

function v4Problem(n: bigint): string | null {
  const hit = V4.find((r) => cidrContains(r.cidr, (0xffffn << 32n) | n));
  return hit ? hit.why : null;
}

/** Why a request may not go to `ip`, or null when it is a public address. */
export function addressProblem(ip: string): string | null {
  const n = parseIp(ip);
  if (n === null) return "not an IP address";
  if (cidrContains(V4_MAPPED.cidr, n)) return v4Problem(low32(n));
  if (cidrContains(NAT64.cidr, n)) {
    const inner = v4Problem(low32(n));
    return inner && `${NAT64.why} of ${v4Text(low32(n))}, ${inner}`;
  }
  const hit = V6.find((r) => cidrContains(r.cidr, n));
  if (hit) return hit.v4 ? `${hit.why} of ${v4Text(hit.v4(n))}` : hit.why;
  return cidrContains(GLOBAL_UNICAST.cidr, n) ? null : "not a global unicast address";
}

export function isPublicIp(ip: string): boolean {
  return addressProblem(ip) === null;
}

/** Host name → its addresses, all of them. */
export type Resolver = (host: string) => Promise<string[]>;

export interface AddressPolicy {
  /** Skip the address rule (`--allow-private-callbacks`); the name is still resolved once. */
  allowPrivate?: boolean;
  /** Defaults to the system resolver (getaddrinfo, so /etc/hosts counts), as fetch() would use. */
  resolve?: Resolver;
  /** Why an address is forbidden, or null; defaults to `addressProblem`. Tests stand a loopback address in for a public one. */
  addressProblem?: (ip: string) => string | null;
}

/** The target is forbidden by the address rule; retrying cannot help. */
export class SsrfError extends Error {
  override name = "SsrfError";
}

/** The host name did not resolve (a network error, worth retrying). */
export class ResolveError extends Error {
  override name = "ResolveError";
  constructor(message: string, readonly code?: string) {
    super(message);
  }
}

export const systemResolver: Resolver = async (host) => (await lookup(host, { all: true })).map((a) => a.address);

/**
 * Resolves `host` (a URL's hostname) once and checks every address it has: one forbidden address
 * refuses the host, since which one a client would pick is not ours to know. Returns the addresses
 * to connect to, in the resolver's order. Throws `SsrfError` or `ResolveError`.
 */
export async function resolveAllowed(host: string, policy: AddressPolicy = {}): Promise<string[]> {
  host = host.replace(/^\[|\]$/g, "");
  const problem = policy.allowPrivate ? () => null : (policy.addressProblem ?? addressProblem);
  if (parseIp(host) !== null) {
    const why = problem(host);
    if (why) throw new SsrfError(`host ${host} is ${why}`);
    return [host];
  }
  let addresses: string[];
  try {
    addresses = await (policy.resolve ?? systemResolver)(host);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ResolveError(`host ${host} does not resolve (${code ?? (err as Error).message})`, code);
  }
  if (!addresses.length) throw new ResolveError(`host ${host} does not resolve (no addresses)`);
  for (const a of addresses) {
    // A resolver that answers something other than an address must not turn into a second lookup.
    const why = parseIp(a) === null ? "not an IP address" : problem(a);
    if (why) throw new SsrfError(`host ${host} resolves to ${a}, ${why}`);
  }
  return addresses;
}

/**
 * Why `url` may not be called back, or null: the request-time check (a 400 for the webhook caller).
 * Resolves the host name; every address must be public unless `allowPrivate`. Delivery does not
 * rely on this answer: `safeFetch` resolves and checks again and connects to what it checked.
 */
export async function callbackUrlProblem(url: string, allowPrivate: boolean, policy: Omit<AddressPolicy, "allowPrivate"> = {}): Promise<string | null> {
  const syntax = callbackUrlSyntaxProblem(url);
  if (syntax || allowPrivate) return syntax;
  try {
    await resolveAllowed(new URL(url).hostname, policy);
    return null;
  } catch (err) {
    return `callbackUrl ${(err as Error).message}`;
  }
}

/** Checks that need no network: an absolute http(s) URL without credentials. */
export function callbackUrlSyntaxProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return "callbackUrl must be an absolute http:// or https:// URL";
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") return "callbackUrl must be an absolute http:// or https:// URL";
  if (u.username || u.password) return "callbackUrl may not contain a user name or password";
  return null;
}
