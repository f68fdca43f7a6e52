/**
 * A fake forward HTTP proxy on 127.0.0.1 that records every request reaching it (with its headers,
 * so a test can see an API key that would leak) and forwards plain-HTTP requests to their target,
 * streaming the answer back, so a session sent through it still completes. HTTPS tunnels (CONNECT)
 * are recorded and refused: the tests only need plain-HTTP model endpoints.
 */

export interface ProxiedRequest {
  method: string;
  /** The absolute URL the client asked the proxy for. */
  url: string;
  /** Header names in lower case. */
  headers: Record<string, string>;
}

export interface FakeProxy {
  /** `http://127.0.0.1:<port>`, for HTTP_PROXY and friends. */
  url: string;
  requests: ProxiedRequest[];
  reset(): void;
  stop(): Promise<void>;
}

/** Hop-by-hop headers a proxy must not pass on (RFC 9110 §7.6.1), plus the proxy's own. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "host"]);

export function startFakeProxy(): FakeProxy {
  const requests: ProxiedRequest[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      const headers: Record<string, string> = {};
      req.headers.forEach((v, k) => (headers[k] = v));
      requests.push({ method: req.method, url: req.url, headers });
      if (req.method === "CONNECT") return new Response("tunnels are not supported by this fake", { status: 405 });
      const forward = new Headers();
      req.headers.forEach((v, k) => !HOP_BY_HOP.has(k) && forward.set(k, v));
      try {
        const res = await fetch(req.url, {
          method: req.method,
          headers: forward,
          body: req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer(),
          redirect: "manual",
          signal: req.signal,
          // The proxy itself must connect directly, whatever the test process's environment says.
          proxy: false,
        });
        const back = new Headers(res.headers);
        for (const h of HOP_BY_HOP) back.delete(h);
        back.delete("content-encoding");
        back.delete("content-length");
        return new Response(res.body, { status: res.status, headers: back });
      } catch (err) {
        return new Response(`fake proxy: ${(err as Error).message}`, { status: 502 });
      }
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    requests,
    reset: () => void (requests.length = 0),
    stop: () => server.stop(true),
  };
}
