/**
 * A stand-in for DNS rebinding on one machine. Two real HTTP servers share a port: one on
 * 127.0.0.2, which the tests' address rule treats as public, one on 127.0.0.1, which it forbids.
 * The resolver answers the allowed address first and the forbidden one afterwards, as a rebinding
 * name does; which server saw the request tells where the connection went.
 */
import type { Server } from "bun";

export const ALLOWED = "127.0.0.2";
export const FORBIDDEN = "127.0.0.1";

export interface Seen {
  method: string;
  path: string;
  host: string | null;
  headers: Record<string, string>;
  body: string;
}

export interface Listener {
  seen: Seen[];
  server: Server<undefined>;
}

export interface Pair {
  port: number;
  allowed: Listener;
  forbidden: Listener;
  stop(): void;
}

/** The tests' address rule: only ALLOWED (and `extra`) count as public. */
export const onlyAllowed =
  (...extra: string[]) =>
  (ip: string): string | null =>
    ip === ALLOWED || extra.includes(ip) ? null : "forbidden in this test";

export function listen(hostname: string, port: number, answer: (req: Request) => Response | Promise<Response> = () => new Response("ok")): Listener {
  const seen: Seen[] = [];
  const server = Bun.serve({
    hostname,
    port,
    async fetch(req) {
      const u = new URL(req.url);
      seen.push({ method: req.method, path: u.pathname + u.search, host: req.headers.get("host"), headers: Object.fromEntries(req.headers), body: await req.text() });
      return answer(req);
    },
  });
  return { seen, server };
}

/** Both servers on one port, so only the address decides which one a connection reaches. */
export function startPair(answer?: (req: Request) => Response | Promise<Response>): Pair {
  for (let tries = 0; ; tries++) {
    const allowed = listen(ALLOWED, 0, answer);
    try {
      const forbidden = listen(FORBIDDEN, allowed.server.port!);
      return {
        port: allowed.server.port!,
        allowed,
        forbidden,
        stop() {
          allowed.server.stop(true);
          forbidden.server.stop(true);
        },
      };
    } catch (err) {
      allowed.server.stop(true);
      if (tries > 20) throw err;
    }
  }
}

/** Answers ALLOWED to the first lookup and FORBIDDEN to every later one, counting lookups. */
export function rebindingResolver() {
  const calls: string[] = [];
  const resolve = async (host: string) => {
    calls.push(host);
    return [calls.length === 1 ? ALLOWED : FORBIDDEN];
  };
  return { resolve, calls };
}
