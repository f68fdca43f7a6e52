/** The client address behind trusted reverse proxies (X-Forwarded-For read right to left), and allowCIDRs matching. */
import { type Cidr, cidrContains, parseIp } from "./cidr";

interface Hop {
  /** The address without brackets or port, e.g. `2001:db8::1`. */
  text: string;
  ip: bigint;
}

/** Parses `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:443`; null when it is none of these. */
function parseHop(raw: string): Hop | null {
  let s = raw.trim();
  if (s.startsWith("[")) {
    const close = s.indexOf("]");
    if (close < 0) return null;
    const after = s.slice(close + 1);
    if (after && !/^:\d{1,5}$/.test(after)) return null;
    s = s.slice(1, close);
  } else if (s.split(":").length === 2) {
    // Exactly one colon: IPv4 with a port (a bare IPv6 address has at least two).
    const [host, port] = s.split(":") as [string, string];
    if (!/^\d{1,5}$/.test(port)) return null;
    s = host;
  }
  const ip = parseIp(s);
  return ip === null ? null : { text: s, ip };
}

const inAny = (ip: bigint, cidrs: Cidr[]): boolean => cidrs.some((c) => cidrContains(c, ip));

/**
 * The address to check against allowCIDRs. A peer that is not a trusted proxy is the client: its
 * X-Forwarded-For is ignored, so it cannot spoof one. Behind trusted proxies, X-Forwarded-For is
 * walked right to left past trusted hops; the first untrusted hop is the client. Garbage stops the
 * walk (nothing left of it is believed) and the last good hop is returned.
 */
export function clientIp(peer: string, forwardedFor: string | null | undefined, trusted: Cidr[]): string {
  const direct = parseHop(peer);
  if (!direct || !inAny(direct.ip, trusted)) return direct?.text ?? peer.trim();
  const hops = (forwardedFor ?? "")
    .split(",")
    .map((h) => h.trim())
    .filter((h) => h !== "");
  let last = direct.text;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = parseHop(hops[i]!);
    if (!hop) return last;
    if (!inAny(hop.ip, trusted)) return hop.text;
    last = hop.text;
  }
  return last;
}

/** Whether `ip` (brackets and port tolerated) lies in one of `allow`; false for an empty list or a non-address. */
export function ipAllowed(ip: string, allow: Cidr[]): boolean {
  const hop = parseHop(ip);
  return hop !== null && inAny(hop.ip, allow);
}
