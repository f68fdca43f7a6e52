/**
 * Covers src/harness/tools/web-fetch.ts over real HTTP on loopback: pages read as text (HTML
 * reduced, other text as it is, binary refused), redirects followed with every target checked
 * again, the size cap and the timeout, and the SSRF rule (lib/ssrf) for the first URL and for
 * every redirect, with DNS rebinding stood in for by test/fakes/rebinding.ts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import type { Server } from "bun";
import { createWebFetchTool, htmlToText, webFetchTool } from "../../src/harness/tools/web-fetch";
import { ToolRegistry } from "../../src/harness/tools/registry";
import { MAX_OUTPUT_CHARS, type ToolContext } from "../../src/harness/tools/types";
import { startFakeProxy } from "../fakes/http-proxy";
import { ALLOWED, FORBIDDEN, onlyAllowed, rebindingResolver, startPair, type Pair } from "../fakes/rebinding";

const ctx = (allowPrivateFetch: boolean, signal = new AbortController().signal): ToolContext => ({
  cwd: "/nonexistent",
  env: {},
  signal,
  sandbox: { kind: "none", wrap: (a) => a },
  allowPrivateFetch,
});
const open = ctx(true);
const strict = ctx(false);

const PAGE = `<!doctype html>
<html><head><title>Release notes</title>
<meta charset="utf-8"><style>p { color: red }</style>
<script>document.write("<p>injected</p>")</script></head>
<body>
<nav><a href="/">Home</a> | <a href="/about">About</a></nav>
<h1>Version  2.0</h1>
<p>It is <b>faster</b> &amp; smaller.
See <a href="/changes?from=1&amp;to=2">the full list</a>.</p>
<h2>Fixes</h2>
<ul><li>one&nbsp;bug</li><li>another &lt;bug&gt;</li></ul>
<noscript>enable javascript</noscript>
</body></html>`;

let hits: string[] = [];
let server: Server<undefined>;
let base: string;
beforeAll(() => {
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const u = new URL(req.url);
      hits.push(`${req.method} ${u.pathname}${u.search}`);
      const here = `http://127.0.0.1:${server.port}`;
      switch (u.pathname) {
        case "/page":
          return new Response(PAGE, { headers: { "content-type": "text/html; charset=utf-8" } });
        case "/json":
          return Response.json({ a: 1, list: ["x"] });
        case "/plain":
          return new Response("line one\n  line two\n", { headers: { "content-type": "text/plain" } });
        case "/latin1":
          return new Response(new Uint8Array([0x63, 0x61, 0x66, 0xe9]), { headers: { "content-type": "text/plain; charset=iso-8859-1" } });
        case "/png":
          return new Response(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0]), { headers: { "content-type": "image/png" } });
        case "/octet-binary":
          return new Response(new Uint8Array([1, 2, 0, 3, 0xff, 0xfe]), { headers: { "content-type": "application/octet-stream" } });
        case "/octet-text":
          return new Response(new TextEncoder().encode("just text"), { headers: { "content-type": "application/octet-stream" } });
        case "/missing":
          return new Response("<html><body><p>No such page</p></body></html>", { status: 404, headers: { "content-type": "text/html" } });
        case "/empty":
          return new Response(null, { status: 204 });
        case "/huge":
          // 6 MB of text, streamed, more than the 5 MB cap.
          return new Response(
            new ReadableStream({
              pull(c) {
                for (let i = 0; i < 6; i++) c.enqueue(new TextEncoder().encode("y".repeat(1024 * 1024)));
                c.close();
              },
            }),
            { headers: { "content-type": "text/plain" } },
          );
        case "/slow":
          await Bun.sleep(5_000);
          return new Response("late");
        case "/hop": {
          // /hop?n=3 → /hop?n=2 → … → /page
          const n = Number(u.searchParams.get("n"));
          return new Response(null, { status: 302, headers: { location: n > 1 ? `/hop?n=${n - 1}` : "/page" } });
        }
        case "/to": {
          return new Response(null, { status: 301, headers: { location: u.searchParams.get("url") ?? here } });
        }
        case "/post-only":
          return new Response(req.method, { status: req.method === "GET" ? 200 : 405 });
      }
      return new Response("not found", { status: 404 });
    },
  });
  base = `http://127.0.0.1:${server.port}`;
});
afterAll(() => server.stop(true));
afterEach(() => {
  hits = [];
  pair?.stop();
  pair = undefined;
});
let pair: Pair | undefined;

const fetchUrl = (url: string, c = open, tool = webFetchTool) => tool.run({ url }, c);

describe("reading pages (private fetches allowed)", () => {
  test("HTML is reduced to readable text", async () => {
    const r = await fetchUrl(`${base}/page`);
    expect(r.isError).toBeFalsy();
    expect(r.output).toBe(
      [
        "# Release notes",
        "",
        "# Version 2.0",
        "",
        `It is faster & smaller. See the full list (${base}/changes?from=1&to=2).`,
        "",
        "## Fixes",
        "",
        "- one bug",
        "- another <bug>",
      ].join("\n"),
    );
    expect(hits).toEqual(["GET /page"]);
  });

  test("other text types come as they are; the charset is honoured", async () => {
    expect((await fetchUrl(`${base}/json`)).output).toBe('{"a":1,"list":["x"]}');
    expect((await fetchUrl(`${base}/plain`)).output).toBe("line one\n  line two\n");
    expect((await fetchUrl(`${base}/latin1`)).output).toBe("café");
    expect((await fetchUrl(`${base}/octet-text`)).output).toBe("just text");
  });

  test("binary content is an error naming its type", async () => {
    const png = await fetchUrl(`${base}/png`);
    expect(png).toEqual({ output: `${base}/png is image/png, not text or HTML; web_fetch reads only text`, isError: true });
    const bin = await fetchUrl(`${base}/octet-binary`);
    expect(bin.isError).toBe(true);
    expect(bin.output).toContain("application/octet-stream and not text");
  });

  test("an HTTP error status is an error result with the page's text", async () => {
    const r = await fetchUrl(`${base}/missing`);
    expect(r.isError).toBe(true);
    expect(r.output).toBe(`HTTP 404 Not Found from ${base}/missing\n\nNo such page`);
    expect((await fetchUrl(`${base}/empty`)).output).toBe("(the page has no text)");
  });

  test("redirects are followed and the final URL is named", async () => {
    const r = await fetchUrl(`${base}/hop?n=3`);
    expect(r.isError).toBeFalsy();
    expect(r.output).toStartWith(`(redirected to ${base}/page)\n\n# Release notes`);
    expect(hits).toEqual(["GET /hop?n=3", "GET /hop?n=2", "GET /hop?n=1", "GET /page"]);
  });

  test("more than 5 redirects is an error", async () => {
    const r = await fetchUrl(`${base}/hop?n=9`);
    expect(r.isError).toBe(true);
    expect(r.output).toBe(`${base}/hop?n=9 redirected more than 5 times (the last one to /hop?n=3)`);
    expect(hits).toHaveLength(6);
  });

  test("a redirect to another scheme is refused", async () => {
    for (const target of ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1:6379/_INFO"]) {
      const r = await fetchUrl(`${base}/to?url=${encodeURIComponent(target)}`);
      expect(r.isError).toBe(true);
      expect(r.output).toContain(`redirected to ${target}, which is refused: web_fetch fetches only http:// and https:// URLs`);
    }
  });

  test("the body is read up to 5 MB, then cut with a note", async () => {
    const r = await fetchUrl(`${base}/huge`);
    expect(r.isError).toBeFalsy();
    const note = "\n\n[the body is larger than 5 MB; only the first 5 MB were read]";
    expect(r.output.endsWith(note)).toBe(true);
    expect(r.output.length).toBe(5 * 1024 * 1024 + note.length);
    // Through the registry, as the agent sees it, the output is capped again.
    const reg = new ToolRegistry();
    reg.add(webFetchTool);
    const capped = await reg.call("web_fetch", { url: `${base}/huge` }, open);
    expect(capped.truncated).toBe(true);
    expect(capped.output.length).toBeLessThan(MAX_OUTPUT_CHARS + 200);
  });

  test("a smaller cap can be set", async () => {
    const r = await fetchUrl(`${base}/plain`, open, createWebFetchTool({ maxBytes: 4 }));
    expect(r.output).toBe("line\n\n[the body is larger than 4 bytes; only the first 4 bytes were read]");
  });

  test("a server that does not answer times out", async () => {
    const r = await fetchUrl(`${base}/slow`, open, createWebFetchTool({ timeoutMs: 200 }));
    expect(r).toEqual({ output: `${base}/slow did not answer within 0.2 s`, isError: true });
  });

  test("the session's signal stops the fetch", async () => {
    const ac = new AbortController();
    const p = fetchUrl(`${base}/slow`, ctx(true, ac.signal));
    setTimeout(() => ac.abort(), 50);
    expect(await p).toEqual({ output: "web_fetch was stopped: the session was aborted", isError: true });
  });

  test("only GET: other input fields are refused, and the request is a GET", async () => {
    const r = await webFetchTool.run({ url: `${base}/post-only`, method: "POST", body: "x" }, open);
    expect(r).toEqual({ output: "web_fetch only GETs a URL: its input is {url} and nothing else (got method, body)", isError: true });
    expect(hits).toEqual([]);
    expect((await fetchUrl(`${base}/post-only`)).output).toBe("GET");
  });

  test("bad URLs are refused before any connection", async () => {
    const cases: [unknown, string][] = [
      [undefined, "web_fetch needs url: an absolute http:// or https:// URL"],
      [42, "web_fetch needs url: an absolute http:// or https:// URL"],
      ["", "web_fetch needs url: an absolute http:// or https:// URL"],
      ["/relative/path", "/relative/path is not an absolute URL; web_fetch needs http:// or https://"],
      ["file:///etc/passwd", "web_fetch fetches only http:// and https:// URLs, not file:"],
      ["ftp://127.0.0.1/", "web_fetch fetches only http:// and https:// URLs, not ftp:"],
      ["javascript:alert(1)", "web_fetch fetches only http:// and https:// URLs, not javascript:"],
      ["data:text/plain,hi", "web_fetch fetches only http:// and https:// URLs, not data:"],
      [`http://user:pw@127.0.0.1:${server.port}/page`, "the URL may not contain a user name or password"],
      [`${base}/${"a".repeat(9000)}`, "the url is longer than 8192 characters"],
    ];
    for (const [url, message] of cases) expect(await webFetchTool.run({ url }, open)).toEqual({ output: message, isError: true });
    expect(hits).toEqual([]);
  });

  test("proxy variables in the session's environment are not used", async () => {
    const proxy = startFakeProxy();
    const saved = { HTTP_PROXY: process.env.HTTP_PROXY, http_proxy: process.env.http_proxy };
    try {
      process.env.HTTP_PROXY = proxy.url;
      process.env.http_proxy = proxy.url;
      expect((await fetchUrl(`${base}/plain`)).output).toBe("line one\n  line two\n");
      expect(proxy.requests).toEqual([]);
      expect(hits).toEqual(["GET /plain"]);
    } finally {
      for (const [k, v] of Object.entries(saved)) v === undefined ? delete process.env[k] : (process.env[k] = v);
      await proxy.stop();
    }
  });
});

describe("the address rule (private fetches not allowed)", () => {
  test("loopback, private and link-local targets are refused before any connection", async () => {
    const cases: [string, string][] = [
      [`${base}/page`, "host 127.0.0.1 is a loopback address"],
      [`http://127.0.0.1:${server.port}/page`, "host 127.0.0.1 is a loopback address"],
      [`http://2130706433:${server.port}/page`, "host 127.0.0.1 is a loopback address"],
      ["http://10.1.2.3/", "host 10.1.2.3 is a private address"],
      ["http://192.168.0.1/", "host 192.168.0.1 is a private address"],
      ["http://169.254.169.254/latest/meta-data/", "host 169.254.169.254 is a link-local address"],
      [`http://[::1]:${server.port}/page`, "host ::1 is a loopback address"],
      [`http://[::ffff:127.0.0.1]:${server.port}/page`, "host ::ffff:7f00:1 is a loopback address"],
      [`http://localhost:${server.port}/page`, "host localhost resolves to"],
    ];
    for (const [url, why] of cases) {
      const r = await fetchUrl(url, strict);
      expect(r.isError).toBe(true);
      expect(r.output).toStartWith(`web_fetch refused ${new URL(url).href}: ${why}`);
      expect(r.output).toEndWith("(loopback, private and link-local addresses may not be fetched)");
    }
    expect(hits).toEqual([]);
  });

  test("a redirect from an allowed target to a private one is refused", async () => {
    // 127.0.0.2 stands in for a public address; it redirects to 127.0.0.1 on the same port.
    pair = startPair((req) => {
      const u = new URL(req.url);
      if (u.pathname === "/go") return new Response(null, { status: 302, headers: { location: `http://${FORBIDDEN}:${u.port}/secret` } });
      if (u.pathname === "/next") return new Response(null, { status: 307, headers: { location: "/final" } });
      return new Response("public page", { headers: { "content-type": "text/plain" } });
    });
    const tool = createWebFetchTool({ addressProblem: onlyAllowed() });
    // An allowed redirect is followed.
    const ok = await tool.run({ url: `http://${ALLOWED}:${pair.port}/next` }, strict);
    expect(ok.output).toBe(`(redirected to http://${ALLOWED}:${pair.port}/final)\n\npublic page`);
    // A redirect to a forbidden address is refused, and nothing reaches it.
    const r = await tool.run({ url: `http://${ALLOWED}:${pair.port}/go` }, strict);
    expect(r.isError).toBe(true);
    expect(r.output).toStartWith(`web_fetch refused http://${FORBIDDEN}:${pair.port}/secret (redirected from http://${ALLOWED}:${pair.port}/go): host ${FORBIDDEN} is forbidden in this test`);
    expect(pair.allowed.seen.map((s) => s.path)).toEqual(["/next", "/final", "/go"]);
    expect(pair.forbidden.seen).toEqual([]);
  });

  test("a name that rebinds to a forbidden address is checked again at each redirect", async () => {
    pair = startPair((req) => {
      const u = new URL(req.url);
      return u.pathname === "/start" ? new Response(null, { status: 302, headers: { location: "/inside" } }) : new Response("inside");
    });
    const dns = rebindingResolver();
    const tool = createWebFetchTool({ resolve: dns.resolve, addressProblem: onlyAllowed() });
    const r = await tool.run({ url: `http://rebind.test:${pair.port}/start` }, strict);
    expect(r.isError).toBe(true);
    expect(r.output).toContain(`host rebind.test resolves to ${FORBIDDEN}, forbidden in this test`);
    expect(dns.calls).toEqual(["rebind.test", "rebind.test"]);
    expect(pair.allowed.seen.map((s) => s.path)).toEqual(["/start"]);
    expect(pair.forbidden.seen).toEqual([]);
  });

  test("a name that does not resolve is an error", async () => {
    const tool = createWebFetchTool({ resolve: async () => Promise.reject(Object.assign(new Error("nope"), { code: "ENOTFOUND" })) });
    const r = await tool.run({ url: "http://nowhere.invalid/" }, strict);
    expect(r).toEqual({ output: "could not fetch http://nowhere.invalid/: host nowhere.invalid does not resolve (ENOTFOUND)", isError: true });
  });
});

describe("htmlToText", () => {
  test("lists, tables, pre, breaks, images and entities", () => {
    const html = `<ol><li>a<li>b<ul><li>inner</li></ul></ol>
      <table><tr><th>k</th><th>v</th></tr><tr><td>1</td><td>2</td></tr></table>
      <pre>  keep
    this</pre><p>x<br>y<br><br>z</p><img alt="A cat"> &copy; &#x1F600; &#65; &#0; &unknown; a&nbsp;b <i>c</i>d`;
    expect(htmlToText(html)).toBe(
      ["1. a", "2. b", "  - inner", "", "k | v", "1 | 2", "", "  keep", "    this", "", "x", "y", "", "z", "", "[A cat] © 😀 A \ufffd &unknown; a b cd"].join("\n"),
    );
  });

  test("hostile markup: unclosed tags, comments and quotes end the text instead of looping", () => {
    expect(htmlToText("<p>before<!-- never closed <p>after")).toBe("before");
    expect(htmlToText('<p>before<a href="x>after')).toBe("before");
    expect(htmlToText("<script>never closed <p>text")).toBe("");
    expect(htmlToText("<nav><svg>a</nav>b")).toBe("b");
    expect(htmlToText("a < b <3 and <> c")).toBe("a < b <3 and <> c");
    expect(htmlToText('<a href="javascript:alert(1)">js</a> <a href="#x">anchor</a> <a href="mailto:a@b.c">mail</a>')).toBe("js anchor mail (mailto:a@b.c)");
  });

  test("a large page with many links, some never closed, converts whole", () => {
    const chunk = '<div><a href="/x">link</a> <p>text &amp; more</p></div><a href="/y">';
    const html = chunk.repeat(50_000);
    const text = htmlToText(html, new URL("https://e.test/"));
    expect(text.length).toBeGreaterThan(1_000_000);
    expect(text).toStartWith("link (https://e.test/x)\n\ntext & more");
  });
});
