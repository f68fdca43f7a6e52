/**
 * The console as the binary serves it: the committed bundle (src/console/dist) is what the sources
 * build to now (run `bun src/console/build.ts` after changing them), it stays small, the app code
 * never writes HTML, and the routes answer the page and its assets with the security headers.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { buildConsole, committedConsole, CONSOLE_DIR, OUTPUTS } from "../../src/console/build";
import { consoleRoutes, CONSOLE_CSP } from "../../src/api/console";

describe("the committed bundle", () => {
  test("is what the sources build to (else: bun src/console/build.ts)", async () => {
    const built = await buildConsole();
    const committed = committedConsole();
    for (const name of OUTPUTS) expect({ name, upToDate: built[name] === committed[name] }).toEqual({ name, upToDate: true });
  }, 30_000);

  test("is small: under 120 KB of script and 20 KB of style, unminified sources excluded", () => {
    const { "console.js": js, "console.css": css } = committedConsole();
    expect(js.length).toBeGreaterThan(10_000);
    expect(js.length).toBeLessThan(120 * 1024);
    expect(css.length).toBeLessThan(20 * 1024);
    // Preact's production build: no debug helpers, no dev warnings.
    expect(js).not.toContain("preact/debug");
  });

  test("the app's code never writes HTML or evaluates strings", () => {
    const files = (dir: string): string[] => readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : [join(dir, f)]));
    const sources = files(join(CONSOLE_DIR, "app")).filter((f) => f.endsWith(".ts"));
    expect(sources.length).toBeGreaterThan(5);
    for (const f of sources) {
      const src = readFileSync(f, "utf8");
      for (const banned of ["innerHTML", "outerHTML", "dangerouslySetInnerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "localStorage", "document.cookie", "console.log"])
        expect({ file: f.slice(CONSOLE_DIR.length), banned, found: src.includes(banned) }).toEqual({ file: f.slice(CONSOLE_DIR.length), banned, found: false });
    }
  });
});

describe("the console routes", () => {
  const app = consoleRoutes();
  const get = (path: string, headers: Record<string, string> = {}) => app.handle(new Request(`http://127.0.0.1${path}`, { headers }));
  const secure = (res: Response) => {
    expect(res.headers.get("content-security-policy")).toBe(CONSOLE_CSP);
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  };

  test("the CSP allows this origin only, no inline code, no plugins, no framing", () => {
    const d = Object.fromEntries(CONSOLE_CSP.split(";").map((p) => p.trim().split(/\s+/)).map(([k, ...v]) => [k, v.join(" ")]));
    expect(d).toMatchObject({ "default-src": "'self'", "script-src": "'self'", "style-src": "'self'", "connect-src": "'self'", "object-src": "'none'", "frame-ancestors": "'none'", "base-uri": "'none'" });
    expect(CONSOLE_CSP).not.toContain("unsafe");
    expect(CONSOLE_CSP).not.toMatch(/https?:|\*|data:/);
  });

  test("every console address answers the same page, with no inline script or style", async () => {
    const pages = await Promise.all(["/console", "/console/", "/console/agents", "/console/sessions/default/x-1?phase=Running"].map((p) => get(p)));
    const bodies = await Promise.all(pages.map((r) => r.text()));
    for (const [i, res] of pages.entries()) {
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
      secure(res);
      expect(bodies[i]).toBe(bodies[0]!);
    }
    const page = bodies[0]!;
    expect(page).toContain('<script type="module" src="/console/assets/console.js"></script>');
    expect(page).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(page).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    expect(page).not.toMatch(/https?:\/\//);
  });

  test("assets: the bundle with its type, ETag revalidation, 404 for anything else", async () => {
    const js = await get("/console/assets/console.js");
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    secure(js);
    expect(await js.text()).toBe(committedConsole()["console.js"]);
    const css = await get("/console/assets/console.css");
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
    expect((await get("/console/assets/icon.svg")).headers.get("content-type")).toBe("image/svg+xml");
    const again = await get("/console/assets/console.js", { "if-none-match": js.headers.get("etag")! });
    expect(again.status).toBe(304);
    for (const p of ["/console/assets/nope.js", "/console/assets/..%2Fbuild.ts", "/console/assets/__proto__", "/console/assets/constructor"]) {
      const res = await get(p);
      expect({ p, status: res.status }).toEqual({ p, status: 404 });
      secure(res);
    }
  });
});
