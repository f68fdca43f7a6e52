/**
 * Covers src/lib/safe-fetch.ts over real HTTP and HTTPS on loopback: one resolution, the connection
 * pinned to the checked address (DNS rebinding), Host and TLS server name kept, redirects not
 * followed, fallback to the next address, and refusal before any connection.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { safeFetch, ResolveError, SsrfError } from "../../src/lib/safe-fetch";
import { ALLOWED, FORBIDDEN, listen, onlyAllowed, rebindingResolver, startPair, type Pair } from "../fakes/rebinding";
import { removeDir, tempDir } from "../helpers";

let pair: Pair | undefined;
afterEach(() => {
  pair?.stop();
  pair = undefined;
});

describe("pinning", () => {
  test("a name that rebinds to a forbidden address after the check is still reached at the checked address", async () => {
    pair = startPair();
    const dns = rebindingResolver();
    const res = await safeFetch(
      `http://rebind.test:${pair.port}/hook?x=1`,
      { method: "POST", headers: { "content-type": "application/json", host: "evil.test" }, body: '{"a":1}' },
      { resolve: dns.resolve, addressProblem: onlyAllowed() },
    );
    expect(res.status).toBe(200);
    expect(dns.calls).toEqual(["rebind.test"]);
    expect(pair.forbidden.seen).toEqual([]);
    expect(pair.allowed.seen).toHaveLength(1);
    const seen = pair.allowed.seen[0]!;
    expect(seen).toMatchObject({ method: "POST", path: "/hook?x=1", host: `rebind.test:${pair.port}`, body: '{"a":1}' });
    expect(seen.headers["content-type"]).toBe("application/json");
  });

  test("the stand-in really rebinds: asked a second time it answers the forbidden address, which is refused", async () => {
    pair = startPair();
    const dns = rebindingResolver();
    const opts = { resolve: dns.resolve, addressProblem: onlyAllowed() };
    expect((await safeFetch(`http://rebind.test:${pair.port}/`, {}, opts)).status).toBe(200);
    await expect(safeFetch(`http://rebind.test:${pair.port}/`, {}, opts)).rejects.toThrow(`host rebind.test resolves to ${FORBIDDEN}, forbidden in this test`);
    expect(pair.forbidden.seen).toEqual([]);
    expect(pair.allowed.seen).toHaveLength(1);
  });

  test("one forbidden address among several refuses the host before any connection", async () => {
    pair = startPair();
    const resolve = async () => [ALLOWED, FORBIDDEN];
    const err = await safeFetch(`http://mixed.test:${pair.port}/`, {}, { resolve, addressProblem: onlyAllowed() }).catch((e) => e);
    expect(err).toBeInstanceOf(SsrfError);
    expect(pair.allowed.seen).toEqual([]);
    expect(pair.forbidden.seen).toEqual([]);
  });

  test("the default rule refuses loopback literals in any spelling; allowPrivate lets them through", async () => {
    pair = startPair();
    for (const host of [FORBIDDEN, "2130706433", "0x7f.1", "0177.0.0.1", "[::ffff:127.0.0.1]", "[::127.0.0.1]"]) {
      const err = await safeFetch(`http://${host}:${pair.port}/`).catch((e) => e);
      expect(err).toBeInstanceOf(SsrfError);
    }
    expect(pair.forbidden.seen).toEqual([]);
    expect((await safeFetch(`http://2130706433:${pair.port}/ok`, {}, { allowPrivate: true })).status).toBe(200);
    expect(pair.forbidden.seen.map((s) => s.path)).toEqual(["/ok"]);
  });

  test("with allowPrivate a name is still resolved once and pinned", async () => {
    pair = startPair();
    const dns = rebindingResolver();
    await safeFetch(`http://rebind.test:${pair.port}/`, {}, { allowPrivate: true, resolve: dns.resolve });
    expect(dns.calls).toHaveLength(1);
    expect(pair.allowed.seen).toHaveLength(1);
    expect(pair.forbidden.seen).toEqual([]);
  });

  test("an address that refuses the connection is skipped for the next one", async () => {
    pair = startPair();
    // Nothing listens on 127.0.0.3, so that connection is refused before a byte is sent.
    const resolve = async () => ["127.0.0.3", ALLOWED];
    const res = await safeFetch(`http://two.test:${pair.port}/`, { method: "POST", body: "once" }, { resolve, addressProblem: onlyAllowed("127.0.0.3") });
    expect(res.status).toBe(200);
    expect(pair.allowed.seen.map((s) => s.body)).toEqual(["once"]);
  });

  test("a name that does not resolve is a ResolveError, and a stuck resolver honours the abort signal", async () => {
    const failing = async () => {
      throw Object.assign(new Error("nope"), { code: "ENOTFOUND" });
    };
    await expect(safeFetch("http://nowhere.test/", {}, { resolve: failing })).rejects.toBeInstanceOf(ResolveError);
    const stuck = () => new Promise<string[]>(() => {});
    const started = Date.now();
    const err = await safeFetch("http://stuck.test/", { signal: AbortSignal.timeout(50) }, { resolve: stuck }).catch((e) => e);
    expect((err as Error).name).toBe("TimeoutError");
    expect(Date.now() - started).toBeLessThan(2000);
  });

  test("URLs that are not plain http(s) are refused", async () => {
    for (const url of ["file:///etc/passwd", "ftp://example.com/", "http://user:pw@example.com/"]) {
      expect(await safeFetch(url).catch((e) => e)).toBeInstanceOf(SsrfError);
    }
  });
});

describe("redirects", () => {
  test("a redirect to a forbidden address is returned as a 3xx, not followed", async () => {
    pair = startPair(() => new Response(null, { status: 302, headers: { location: `http://${FORBIDDEN}:${pair!.port}/stolen` } }));
    const res = await safeFetch(`http://redirect.test:${pair.port}/`, {}, { resolve: async () => [ALLOWED], addressProblem: onlyAllowed() });
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe(`http://${FORBIDDEN}:${pair.port}/stolen`);
    expect(pair.forbidden.seen).toEqual([]);
  });

  test("a caller asking to follow redirects gets them unfollowed all the same", async () => {
    pair = startPair(() => new Response(null, { status: 307, headers: { location: `http://${FORBIDDEN}:${pair!.port}/stolen` } }));
    const init = { redirect: "follow" } as unknown as RequestInit;
    const res = await safeFetch(`http://redirect.test:${pair.port}/`, init, { resolve: async () => [ALLOWED], addressProblem: onlyAllowed() });
    expect(res.status).toBe(307);
    expect(pair.forbidden.seen).toEqual([]);
  });
});

describe("https", () => {
  // Two self-signed certificates made at test time: the server presents callback.test's only when
  // the client's SNI asks for it, and other.test's otherwise.
  let dir: string;
  let ca: string[];
  let server: ReturnType<typeof Bun.serve>;
  const hosts: string[] = [];

  async function certificate(name: string) {
    const key = join(dir, `${name}.key`);
    const cert = join(dir, `${name}.pem`);
    const proc = Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", `/CN=${name}`, "-addext", `subjectAltName=DNS:${name}`, "-keyout", key, "-out", cert]);
    if (proc.exitCode !== 0) throw new Error(`openssl failed: ${proc.stderr.toString()}`);
    return { key: await Bun.file(key).text(), cert: await Bun.file(cert).text() };
  }

  beforeAll(async () => {
    dir = tempDir("pai-tls-");
    const other = await certificate("other.test");
    const callback = await certificate("callback.test");
    ca = [other.cert, callback.cert];
    server = Bun.serve({
      hostname: ALLOWED,
      port: 0,
      tls: [other, { ...callback, serverName: "callback.test" }],
      fetch(req) {
        hosts.push(req.headers.get("host") ?? "");
        return new Response("secret-free");
      },
    });
  });
  afterAll(() => {
    server.stop(true);
    removeDir(dir);
  });

  const opts = { resolve: async () => [ALLOWED], addressProblem: onlyAllowed() };

  test("the pinned connection sends the original name as SNI and checks the certificate against it", async () => {
    const res = await safeFetch(`https://callback.test:${server.port}/x`, { tls: { ca } }, opts);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("secret-free");
    expect(hosts.at(-1)).toBe(`callback.test:${server.port}`);
  });

  test("a certificate for another name is refused", async () => {
    // No certificate matches wrong.test, so the server presents other.test's and the name check fails.
    const before = hosts.length;
    const err = await safeFetch(`https://wrong.test:${server.port}/x`, { tls: { ca } }, opts).catch((e) => e);
    expect((err as NodeJS.ErrnoException).code).toBe("ERR_TLS_CERT_ALTNAME_INVALID");
    expect(hosts.length).toBe(before);
  });

  test("an untrusted certificate is refused even for the right name", async () => {
    const err = await safeFetch(`https://callback.test:${server.port}/x`, {}, opts).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as NodeJS.ErrnoException).code).toMatch(/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/);
  });

  test("SNI is the bare name, also for a name written with a trailing dot, as strict servers require", async () => {
    // openssl s_server with -servername_fatal ends the handshake on any SNI other than callback.test.
    const strict = Bun.spawn(
      ["openssl", "s_server", "-accept", `${ALLOWED}:0`, "-www", "-cert", join(dir, "other.test.pem"), "-key", join(dir, "other.test.key"),
        "-cert2", join(dir, "callback.test.pem"), "-key2", join(dir, "callback.test.key"), "-servername", "callback.test", "-servername_fatal"],
      { stdout: "pipe", stderr: "pipe" },
    );
    try {
      let out = "";
      const decoder = new TextDecoder();
      for await (const chunk of strict.stdout) {
        out += decoder.decode(chunk);
        if (/ACCEPT \S+:\d+/.test(out)) break;
      }
      const port = Number(/ACCEPT \S+:(\d+)/.exec(out)?.[1]);
      for (const host of ["callback.test", "callback.test."]) {
        const res = await safeFetch(`https://${host}:${port}/`, { tls: { ca } }, opts);
        expect(res.status).toBe(200);
        await res.arrayBuffer();
      }
    } finally {
      strict.kill();
      await strict.exited;
    }
  });
});
