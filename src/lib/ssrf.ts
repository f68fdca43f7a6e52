/**
 * Is an address somewhere a server-side request may go? Callback URLs come from anonymous webhook
 * callers, so by default they may not reach loopback, private, link-local or other special ranges
 * (the cloud metadata service at 169.254.169.254 among them).
 */
import { lookup } from "node:dns/promises";
import { cidrContains, parseCidr, parseIp, type Cidr } from "./cidr";

const BLOCKED: Cidr[] = [
  "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
  "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4", "::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8",
  "64:ff9b::/96", "2001:db8::/32",
].map((c) => parseCidr(c)!);

export function isPublicIp(ip: string): boolean {
  const n = parseIp(ip);
  return n !== null && !BLOCKED.some((c) => cidrContains(c, n));
}

/** Why `url` may not be called, or null. Resolves the host name; every address must be public. */
export async function callbackUrlProblem(url: string, allowPrivate: boolean): Promise<string | null> {
  const syntax = callbackUrlSyntaxProblem(url);
  if (syntax || allowPrivate) return syntax;
  const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  if (parseIp(host) !== null) return isPublicIp(host) ? null : `callbackUrl host ${host} is a loopback or private address`;
  let addresses: { address: string }[];
  try {
    addresses = await lookup(host, { all: true });
  } catch (err) {
    return `callbackUrl host ${host} does not resolve (${(err as NodeJS.ErrnoException).code ?? "error"})`;
  }
  const bad = addresses.find((a) => !isPublicIp(a.address));
  return bad ? `callbackUrl host ${host} resolves to ${bad.address}, a loopback or private address` : null;
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
