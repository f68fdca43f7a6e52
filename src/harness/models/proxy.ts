/**
 * How the model clients reach their endpoint: through the operator's proxy settings (the
 * environment of `pai serve`, handed over in the start message), never through proxy variables of
 * this process's environment. That environment holds the agent's spec.env and a caller's env, and
 * Bun's fetch would otherwise read HTTP_PROXY, http_proxy, ALL_PROXY and NO_PROXY from it on every
 * call, sending the API key through whatever proxy they name.
 */
import { cidrContains, parseCidr, parseIp } from "../../lib/cidr";
import type { ProxySettings } from "./types";

/** The fetch the SDK clients get: every call states its proxy (or `false`), so Bun never falls back to the environment. */
export function modelFetch(settings: ProxySettings = {}) {
  return (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const proxy = proxyFor(new URL(input instanceof Request ? input.url : input), settings);
    // respectNoProxy: false, because Bun would otherwise check this process's NO_PROXY too, and a
    // caller's NO_PROXY=* would take model calls around the operator's proxy. NO_PROXY from the
    // settings is already applied by proxyFor.
    return fetch(input, { ...init, proxy: proxy === false ? false : { url: proxy, respectNoProxy: false } });
  };
}

/**
 * The proxy for `url`, or false to connect directly. Follows what Bun does with the same
 * variables: the scheme's own variable first, then ALL_PROXY (only an http(s) one), a value without
 * a scheme is an http:// proxy, and a NO_PROXY match (see `noProxyMatches`) connects directly.
 */
export function proxyFor(url: URL, settings: ProxySettings): string | false {
  const own = url.protocol === "https:" ? settings.HTTPS_PROXY : url.protocol === "http:" ? settings.HTTP_PROXY : undefined;
  const all = withScheme(settings.ALL_PROXY);
  const proxy = withScheme(own) ?? (all && /^https?:\/\//i.test(all) ? all : undefined);
  if (!proxy || noProxyMatches(url, settings.NO_PROXY ?? "")) return false;
  return proxy;
}

function withScheme(value: string | undefined): string | undefined {
  const v = value?.trim();
  if (!v) return undefined;
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? v : `http://${v}`;
}

/**
 * Whether NO_PROXY exempts `url`. Entries are separated by commas or spaces: `*` (everything), a
 * host name (itself and its subdomains; a leading `.` or `*.` means the same), an IP address,
 * a CIDR range (`10.0.0.0/8`, `fd00::/8`), each optionally with `:port`. Case does not matter.
 */
export function noProxyMatches(url: URL, noProxy: string): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, "").replace(/\.$/, "").toLowerCase();
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  const ip = parseIp(host);
  for (const raw of noProxy.toLowerCase().split(/[\s,]+/)) {
    if (!raw) continue;
    if (raw === "*") return true;
    const { name, port: only } = splitPort(raw);
    if (only && only !== port) continue;
    if (name.includes("/")) {
      const range = parseCidr(name);
      if (range && ip !== null && cidrContains(range, ip)) return true;
      continue;
    }
    const entryIp = parseIp(name);
    if (entryIp !== null || ip !== null) {
      if (entryIp !== null && entryIp === ip) return true;
      continue;
    }
    const domain = name.replace(/^\*?\./, "").replace(/\.$/, "");
    if (domain && (host === domain || host.endsWith(`.${domain}`))) return true;
  }
  return false;
}

/** `host:port`, `[v6]:port`, `[v6]`, a bare IPv6 address, or a CIDR range, into name and port. */
function splitPort(entry: string): { name: string; port?: string } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed) return { name: bracketed[1]!, port: bracketed[2] };
  const colons = entry.split(":").length - 1;
  if (colons === 1) {
    const [name, port] = entry.split(":") as [string, string];
    if (/^\d+$/.test(port)) return { name, port };
  }
  return { name: entry };
}
