/**
 * fetch() for URLs chosen by people we do not trust (callback URLs, pages an agent fetches).
 *
 * Checking a host name and then calling fetch(url) resolves the name twice, and a name that answers
 * a public address to the check and 127.0.0.1 to the connection (DNS rebinding) gets through. So
 * safeFetch resolves once, refuses unless every address is allowed (see ./ssrf), and connects to the
 * checked address itself: the URL is rewritten to the IP, while the Host header keeps the original
 * name and, for https, the TLS server name (SNI) and certificate check use it too.
 *
 * Redirects are never followed (a 3xx could point anywhere, 127.0.0.1 included): the 3xx response is
 * returned as it is. A caller that wants to follow one calls safeFetch again with its Location.
 * `Response.url` is the pinned, IP-based URL.
 */
import { parseIp } from "./cidr";
import { resolveAllowed, SsrfError, type AddressPolicy } from "./ssrf";

export type SafeFetchInit = Omit<BunFetchRequestInit, "redirect" | "unix">;
export type SafeFetchOptions = AddressPolicy;
export { ResolveError, SsrfError } from "./ssrf";

/** Errors that mean no connection was made, so the next address may be tried without sending twice. */
const UNREACHABLE = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL", "ConnectionRefused"]);

/**
 * Throws `SsrfError` when the URL or an address of its host is forbidden (retrying cannot help),
 * `ResolveError` when the host does not resolve, and what fetch() throws for network errors.
 */
export async function safeFetch(url: string | URL, init: SafeFetchInit = {}, opts: SafeFetchOptions = {}): Promise<Response> {
  const u = new URL(url);
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new SsrfError(`only http:// and https:// URLs may be fetched, not ${u.protocol}`);
  // Credentials would be dropped by the rewrite below, and no caller of ours needs them.
  if (u.username || u.password) throw new SsrfError("the URL may not contain a user name or password");
  const addresses = await abortable(resolveAllowed(u.hostname, opts), init.signal);

  const headers = new Headers(init.headers);
  headers.set("host", u.host);
  const named = parseIp(u.hostname) === null;
  // Without serverName, fetch() would send no SNI and check the certificate against the IP.
  const tls = u.protocol === "https:" && named ? { ...init.tls, serverName: u.hostname.replace(/\.$/, "") } : init.tls;
  const body = init.body;
  const replayable = body == null || typeof body === "string" || body instanceof ArrayBuffer || ArrayBuffer.isView(body) || body instanceof Blob || body instanceof URLSearchParams || body instanceof FormData;

  for (let i = 0; ; i++) {
    try {
      return await fetch(pinnedUrl(u, addresses[i]!), { ...init, headers, tls, redirect: "manual" });
    } catch (err) {
      const last = i === addresses.length - 1;
      if (last || !replayable || !UNREACHABLE.has((err as NodeJS.ErrnoException).code ?? "")) throw err;
    }
  }
}

/** `u` with its host replaced by `ip`; verified, since URL setters and parsing can silently keep the old host. */
function pinnedUrl(u: URL, ip: string): string {
  const host = ip.includes(":") ? `[${ip}]` : ip;
  let pinned: URL;
  try {
    pinned = new URL(`${u.protocol}//${host}${u.port ? `:${u.port}` : ""}${u.pathname}${u.search}`);
  } catch {
    throw new SsrfError(`cannot connect to ${ip} by address`);
  }
  if (parseIp(pinned.hostname) !== parseIp(ip)) throw new SsrfError(`cannot connect to ${ip} by address`);
  return pinned.href;
}

function abortable<T>(p: Promise<T>, signal: AbortSignal | null | undefined): Promise<T> {
  if (!signal) return p;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
