/**
 * The web console in a real headless Chromium (Debian's /usr/bin/chromium, driven by
 * playwright-core; no browser download) against a real `pai serve` and the fake model server:
 * sign in, the overview, agents, copying an agent's URL, "Try it" and the session streaming to
 * Complete, Re-run, a refused delivery with its reason, rotating a token, cancelling a running
 * session, downloading a file, a namespace token seeing its namespace only, hostile model output
 * rendered inert, and the Content-Security-Policy enforced with no violation by the console itself.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { callTools, hang, startModelServer, toolResultsOf, type FakeModelServer } from "../fakes/model-server";
import { eventually, startServer, type TestServer } from "../helpers";

const CHROMIUM = "/usr/bin/chromium";
const HAVE_CHROMIUM = (() => {
  try {
    return readFileSync(CHROMIUM).length > 0;
  } catch {
    return false;
  }
})();
if (!HAVE_CHROMIUM)
  console.warn(
    `\n${"!".repeat(78)}\nSKIPPED: test/e2e/console.test.ts: the web console in a real browser\n  chromium is not installed (apt-get install chromium; .ci/run does this in CI), so these tests did not run.\n${"!".repeat(78)}\n`,
  );

const BASE = "/apis/pai.io/v1";
const XSS_FILE = "<img src=x onerror=window.__xss=5>.md";
let server: TestServer;
let models: FakeModelServer;
let browser: Browser;
let admin: BrowserContext;
let page: Page;
let teamToken = "";
const cspErrors: string[] = [];
const pageErrors: string[] = [];
const WAIT = { timeout: 10_000 };

const xssText = (port: number) =>
  [
    "# Report",
    '<img src=x onerror="window.__xss=1">',
    "<script>window.__xss=2</script>",
    "[click me](javascript:window.__xss=3)",
    `![tracker](http://127.0.0.1:${port}/tracker.png)`,
    '<a href="javascript:window.__xss=4">raw link</a>',
  ].join("\n\n");

async function putAgent(namespace: string, name: string, spec: Record<string, unknown>): Promise<string> {
  const res = await server.api(`${BASE}/namespaces/${namespace}/agents/${name}`, { method: "PUT", json: { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name, namespace }, spec } });
  expect(res.status).toBeLessThan(300);
  return webhookUrl(namespace, name);
}
const webhookUrl = (namespace: string, name: string) =>
  eventually(async () => ((await (await server.api(`${BASE}/namespaces/${namespace}/agents/${name}`)).json()) as { status?: { webhookUrl?: string } }).status?.webhookUrl, 10_000, `${name}'s webhook URL`);
const session = async (name: string, namespace = "default") => (await (await server.api(`/agents/${name}?namespace=${namespace}`)).json()) as { phase: string; session: string; env: { name: string }[] };
/** The webhook URL's path on the test server (the URL names localhost; the browser is on 127.0.0.1). */
const onServer = (url: string) => `${server.url}${new URL(url).pathname}`;

function watch(p: Page) {
  p.on("console", (m) => {
    if (/Content.Security.Policy|Refused to (load|execute|apply|connect|frame|run)/i.test(m.text())) cspErrors.push(m.text());
  });
  p.on("pageerror", (e) => pageErrors.push(e.message));
}

async function signIn(p: Page, token: string) {
  await p.goto(`${server.url}/console`);
  await p.fill("#token", token);
  await p.click("#signin button[type=submit]");
  await p.waitForSelector("#who", WAIT);
}

/** The phase badge in a session page's header. */
const phaseOf = (p: Page) => p.locator(".page-head .badge[data-phase]").getAttribute("data-phase");
const waitPhase = (p: Page, phase: string) => p.waitForSelector(`.page-head .badge[data-phase="${phase}"]`, WAIT);

describe.skipIf(!HAVE_CHROMIUM)("the web console in a real browser", () => {
  beforeAll(async () => {
    models = startModelServer();
    models.script((model, req) => {
      if (model === "claude-hang") return hang;
      if (model === "claude-slow") return { text: `**Done**: ${req.messages.at(-1)?.content ?? ""}`, delayMs: 600 };
      if (model === "claude-xss") return toolResultsOf(req) ? { text: xssText(models.url ? Number(new URL(models.url).port) : 0), thinking: "Thinking about <b>bold</b> things" } : callTools([{ name: "write_file", input: { path: XSS_FILE, content: "hello from the agent" } }]);
      return undefined;
    });
    server = await startServer({ env: { ANTHROPIC_API_KEY: "sk-ant-test", ANTHROPIC_BASE_URL: models.anthropicBaseUrl } });
    await Promise.all([
      putAgent("default", "echo", { models: ["pai/echo"], triggers: [{ webhook: {} }] }),
      putAgent("default", "slow", { models: ["anthropic/claude-slow"], triggers: [{ webhook: {} }] }),
      putAgent("default", "stuck", { models: ["anthropic/claude-hang"], triggers: [{ webhook: {} }] }),
      putAgent("default", "writer", { models: ["anthropic/claude-xss"], tools: ["write_file"], triggers: [{ webhook: {} }] }),
      putAgent("team", "guarded", { models: ["pai/echo"], triggers: [{ webhook: { allowCIDRs: ["10.0.0.0/8"], githubSignatureSecret: { secretRef: { name: "gh", key: "secret" } } } }] }),
    ]);
    const created = await server.api(`${BASE}/namespaces/team/accesstokens`, { method: "POST", json: { metadata: { name: "console" } } });
    teamToken = ((await created.json()) as { token: string }).token;
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    admin = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await admin.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url });
    page = await admin.newPage();
    watch(page);
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await models?.stop();
  });

  test("the page shell loads with no token, with the security headers; the API behind it still needs one", async () => {
    const res = await fetch(`${server.url}/console/agents/default/echo`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect(res.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    // Same origin only: nothing lets another site's script read the page or the API.
    const preflight = await fetch(`${server.url}${BASE}/agents`, { method: "OPTIONS", headers: { origin: "https://evil.example", "access-control-request-method": "GET", "access-control-request-headers": "authorization" } });
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
    expect((await fetch(`${server.url}${BASE}/agents`)).status).toBe(401);
  });

  test("sign in: a wrong token is refused; the right one is kept in sessionStorage only, never in the URL or a cookie", async () => {
    await page.goto(`${server.url}/console`);
    await page.fill("#token", "not-a-token");
    await page.click("#signin button[type=submit]");
    expect(await page.textContent("#signin .error", WAIT)).toContain("not valid");
    await page.fill("#token", server.token);
    await page.click("#signin button[type=submit]");
    expect(await page.textContent("#who", WAIT)).toBe("admin");
    await page.waitForSelector("#stat-running", WAIT);
    const storage = await page.evaluate(() => ({ session: JSON.stringify(sessionStorage), local: JSON.stringify(localStorage), cookie: document.cookie, url: location.href }));
    expect(storage.session).toContain(server.token);
    expect(storage.local).not.toContain(server.token);
    expect(storage.cookie).toBe("");
    expect(storage.url).not.toContain(server.token);
    // A reload keeps the session (same tab); the page asks the API again which token it is.
    await page.reload();
    expect(await page.textContent("#who", WAIT)).toBe("admin");
  });

  test("agents: the table shows every namespace's agents; an agent's URL is masked until revealed, and copies", async () => {
    await page.click("nav >> text=Agents");
    await page.waitForSelector('#agents tr[data-agent="default/echo"]', WAIT);
    const rows = await page.$$eval("#agents tbody tr", (trs) => trs.map((tr) => tr.getAttribute("data-agent")));
    expect(rows.sort()).toEqual(["default/echo", "default/slow", "default/stuck", "default/writer", "team/guarded"]);
    expect(await page.textContent('#agents tr[data-agent="team/guarded"]')).toContain("webhook (GitHub signature, CIDR)");
    await page.click('#agents tr[data-agent="default/echo"] a');
    await page.waitForSelector("#webhook-url", WAIT);
    const url = await webhookUrl("default", "echo");
    const token = url.split("/").pop()!;
    // Not revealed: the token is nowhere in the page, not even in the YAML.
    expect(await page.inputValue("#webhook-url")).not.toContain(token);
    expect(await page.content()).not.toContain(token);
    expect(await page.textContent("#agent-yaml")).toContain("webhookUrl:");
    await page.click("#copy");
    await page.waitForSelector("#webhook .notice", WAIT);
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(url);
    expect(await page.content()).not.toContain(token);
    await page.click("#reveal");
    expect(await page.inputValue("#webhook-url")).toBe(url);
  });

  test('"Try it" sends a webhook; its session streams to Complete; Re-run starts the same again', async () => {
    await page.goto(`${server.url}/console/agents/default/slow`);
    await page.fill("#try-title", "stream me");
    await page.click("#try-add-env");
    await page.fill(".env-row .env-name", "GREETING");
    await page.fill(".env-row .env-value", "hello");
    await page.uncheck("#try-wait");
    await page.click("#try-send");
    await page.waitForSelector("#try-answer a", WAIT);
    expect(await page.textContent("#try-answer")).toContain("200");
    await page.click("#try-answer a");
    // The model takes 600 ms: the page is there while it runs, and the stream is live.
    await page.waitForSelector("#stream-state", WAIT);
    const name = new URL(page.url()).pathname.split("/").pop()!;
    await waitPhase(page, "Complete");
    await page.waitForSelector('#stream-state:text("ended")', WAIT);
    const timeline = await page.textContent("#timeline");
    expect(timeline).toContain("Running");
    expect(timeline).toContain("Done: stream me");
    expect(await page.$$eval("#timeline .ev.phase", (els) => els.map((e) => e.getAttribute("data-phase")))).toEqual(["Running", "Complete"]);
    expect(await page.textContent("#response")).toContain("Done: stream me");
    expect(await page.textContent("#response strong")).toBe("Done");
    const started = await session(name);
    expect(started).toMatchObject({ phase: "Complete", env: [{ name: "GREETING" }] });
    expect(await page.textContent(".facts")).toContain("GREETING");

    await page.click("#rerun");
    await page.waitForFunction((old) => !location.pathname.endsWith(`/${old}`), name, WAIT);
    const again = new URL(page.url()).pathname.split("/").pop()!;
    expect(again).not.toBe(name);
    await waitPhase(page, "Complete");
    expect(await page.textContent("#response")).toContain("Done: stream me");
    expect(await session(again)).toMatchObject({ phase: "Complete", env: [{ name: "GREETING" }] });
  });

  test("the sessions list shows new sessions and phase changes without a reload, and filters", async () => {
    await page.goto(`${server.url}/console/sessions?agent=stuck`);
    await page.waitForSelector("#session-filters", WAIT);
    await page.evaluate(() => ((window as unknown as { __samePage: boolean }).__samePage = true));
    const hook = await fetch(onServer(await webhookUrl("default", "stuck")), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ title: "listed <b>live</b>" }) });
    const { session: name } = (await hook.json()) as { session: string };
    const row = `#sessions tr[data-session="${name}"]`;
    await page.waitForSelector(`${row} .badge[data-phase="Running"]`, WAIT);
    expect(await page.textContent(row)).toContain("listed <b>live</b>");
    expect((await server.api(`/agents/${name}/cancel?namespace=default`, { method: "POST" })).status).toBe(200);
    await page.waitForSelector(`${row} .badge[data-phase="Cancelled"]`, WAIT);
    expect(await page.evaluate(() => (window as unknown as { __samePage?: boolean }).__samePage)).toBe(true);
    // Only stuck's sessions: the filter went to the server.
    expect(await page.$$eval("#sessions tbody tr td:nth-child(3)", (tds) => [...new Set(tds.map((t) => t.textContent))])).toEqual(["stuck"]);
    await page.selectOption("#filter-phase", "Complete");
    await page.waitForFunction(() => new URLSearchParams(location.search).get("phase") === "Complete" && !document.querySelector('#sessions .badge[data-phase="Cancelled"]'), null, WAIT);
  });

  test("a refused delivery is listed with its code and reason", async () => {
    const url = await webhookUrl("team", "guarded");
    const refused = await fetch(onServer(url), { method: "POST", headers: { "content-type": "application/json", "x-github-delivery": "d-refused-1" }, body: "{}" });
    expect(refused.status).toBe(403);
    await page.goto(`${server.url}/console/agents/team/guarded`);
    const row = await page.waitForSelector('#deliveries tr[data-code="403"]', WAIT);
    expect(await row.textContent()).toContain("allowCIDRs");
    expect(await page.textContent("#webhook-checks")).toContain("10.0.0.0/8");
    expect(await page.textContent("#webhook-checks")).toContain("Secret gh, key secret");
  });

  test("rotating the token (after a confirmation) changes the URL; the old one answers 401", async () => {
    await page.goto(`${server.url}/console/agents/default/echo`);
    await page.waitForSelector("#webhook-url", WAIT);
    const before = await webhookUrl("default", "echo");
    await page.click("#reveal");
    expect(await page.inputValue("#webhook-url")).toBe(before);
    await page.click("#rotate");
    await page.waitForSelector("#rotate-confirm", WAIT);
    // Nothing happens before the confirmation.
    expect(await webhookUrl("default", "echo")).toBe(before);
    await page.click("#rotate-yes");
    await page.waitForFunction((old) => (document.querySelector("#webhook-url") as HTMLInputElement | null)?.value.startsWith("http") && (document.querySelector("#webhook-url") as HTMLInputElement).value !== old, before, WAIT);
    const after = await page.inputValue("#webhook-url");
    expect(after).toBe(await webhookUrl("default", "echo"));
    expect(after).not.toBe(before);
    expect((await fetch(onServer(before), { method: "POST", headers: { "content-type": "application/json" }, body: '{"title":"x"}' })).status).toBe(401);
  });

  test("a running session is cancelled from its page", async () => {
    const res = await server.api(`${BASE}/namespaces/default/sessions`, { method: "POST", json: { agentDefinition: "stuck", title: "hang around" } });
    const s = (await res.json()) as { session: string };
    await page.goto(`${server.url}/console/sessions/default/${s.session}`);
    await waitPhase(page, "Running");
    await page.click("#cancel");
    await waitPhase(page, "Cancelled");
    expect((await session(s.session)).phase).toBe("Cancelled");
    await page.waitForSelector('#timeline .ev.phase[data-phase="Cancelled"]', WAIT);
    expect(await page.$("#cancel")).toBeNull();
  });

  test("hostile model output and file names render as inert text; files download through fetch", async () => {
    const hook = await fetch(onServer(await webhookUrl("default", "writer")), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ title: "<script>window.__xss=6</script>", wait: 30 }) });
    const done = (await hook.json()) as { session: string; phase: string };
    expect(done.phase).toBe("Complete");
    await page.goto(`${server.url}/console/sessions/default/${done.session}`);
    await page.waitForSelector("#response", WAIT);
    await page.waitForSelector("#files .file-path", WAIT);
    await page.waitForSelector('#stream-state:text("ended")', WAIT);
    const inert = await page.evaluate(() => ({
      xss: (window as unknown as { __xss?: number }).__xss,
      imgs: document.querySelectorAll("img").length,
      scripts: [...document.querySelectorAll("script")].map((s) => s.getAttribute("src")),
      jsLinks: [...document.querySelectorAll("a")].filter((a) => !/^(https?:|mailto:|\/)/.test(a.getAttribute("href") ?? "/")).length,
      handlers: [...document.querySelectorAll("*")].filter((el) => [...el.attributes].some((a) => a.name.startsWith("on"))).length,
      response: document.querySelector("#response")!.textContent,
      timeline: document.querySelector("#timeline")!.textContent,
      thinking: document.querySelector("#timeline .ev.thinking details")?.hasAttribute("open"),
      files: [...document.querySelectorAll("#files .file-path")].map((e) => e.textContent),
      title: document.querySelector(".title-text")!.textContent,
    }));
    expect(inert).toMatchObject({ xss: undefined, imgs: 0, scripts: ["/console/assets/console.js"], jsLinks: 0, handlers: 0, thinking: false, files: [XSS_FILE], title: "<script>window.__xss=6</script>" });
    expect(inert.response).toContain('<img src=x onerror="window.__xss=1">');
    expect(inert.response).toContain("<script>window.__xss=2</script>");
    expect(inert.response).toContain("click me");
    expect(inert.timeline).toContain("write_file");
    // The image is a link at most: nothing was fetched from where it points.
    expect(models.requests.some((r) => r.path.includes("tracker"))).toBe(false);
    expect(await page.$$eval("#response a", (as) => as.map((a) => [a.getAttribute("href"), a.getAttribute("rel")]))).toEqual([[`http://127.0.0.1:${new URL(models.url).port}/tracker.png`, "noopener noreferrer nofollow"]]);

    const [download] = await Promise.all([page.waitForEvent("download", WAIT), page.click("#files .download")]);
    // Chromium makes the name safe for the disk (< and > become _); the bytes are the file's.
    expect(download.suggestedFilename()).toBe(XSS_FILE.replace(/[<>]/g, "_"));
    expect(download.url()).toStartWith("blob:");
    expect(readFileSync((await download.path())!, "utf8")).toBe("hello from the agent");
  });

  test("the overview counts sessions and webhook answers by code", async () => {
    await page.goto(`${server.url}/console`);
    await page.waitForSelector("#stat-running", WAIT);
    await page.waitForFunction(() => Number(document.querySelector("#stat-started .value")?.textContent) >= 5, null, WAIT);
    expect(Number(await page.textContent("#stat-webhooks .value"))).toBeGreaterThanOrEqual(4);
    expect(await page.$$("svg.chart rect.c-403")).not.toHaveLength(0);
    expect(await page.$$("svg.chart rect.s-started")).not.toHaveLength(0);
  });

  test("a namespace token sees its namespace only, and no webhook token", async () => {
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    watch(p);
    try {
      await signIn(p, teamToken);
      expect(await p.textContent("#who")).toBe("namespace team");
      await p.click("nav >> text=Agents");
      await p.waitForSelector('#agents tr[data-agent="team/guarded"]', WAIT);
      expect(await p.$$eval("#agents tbody tr", (trs) => trs.map((tr) => tr.getAttribute("data-agent")))).toEqual(["team/guarded"]);
      await p.click('#agents tr[data-agent="team/guarded"] a');
      await p.waitForSelector("#webhook-url", WAIT);
      const token = (await webhookUrl("team", "guarded")).split("/").pop()!;
      expect(await p.content()).not.toContain(token);
      expect(await p.$("#reveal")).toBeNull();
      expect(await p.$("#rotate")).toBeNull();
      expect(await p.$("#try-it")).toBeNull();
      // The refused delivery is visible to the namespace's users too.
      await p.waitForSelector('#deliveries tr[data-code="403"]', WAIT);
      await p.click("nav >> text=Sessions");
      await p.waitForSelector("#session-filters", WAIT);
      await p.waitForSelector("#sessions, .empty", WAIT);
      expect(await p.$$eval("#sessions tbody tr td:nth-child(2)", (tds) => tds.filter((t) => t.textContent !== "team").length)).toBe(0);
      // Another namespace's session: the API says no, and the page shows why.
      const other = (await (await server.api(`${BASE}/namespaces/default/sessions?limit=1`)).json()) as { items: { session: string }[] };
      await p.goto(`${server.url}/console/sessions/default/${other.items[0]!.session}`);
      expect(await p.textContent(".error", WAIT)).toContain("403");
    } finally {
      await ctx.close();
    }
  });

  test("the CSP is enforced and the console broke none of it; no token reached the server's log", async () => {
    expect(pageErrors).toEqual([]);
    expect(cspErrors).toEqual([]);
    for (const token of [server.token, teamToken]) expect(server.logs()).not.toContain(token);
    // The policy is live: an inline script and an inline style put in the page are refused (and reported).
    const ran = await page.evaluate(async () => {
      const s = document.createElement("script");
      s.textContent = "window.__inline = 1";
      document.head.append(s);
      const st = document.createElement("style");
      st.textContent = "body { display: none }";
      document.head.append(st);
      await new Promise((r) => setTimeout(r, 100));
      return { inline: (window as unknown as { __inline?: number }).__inline, hidden: getComputedStyle(document.body).display === "none" };
    });
    expect(ran).toEqual({ inline: undefined, hidden: false });
    await eventually(() => cspErrors.length >= 2, 5000, "the CSP violations to be reported");
    expect(cspErrors.some((e) => e.includes("script-src"))).toBe(true);
    expect(cspErrors.some((e) => e.includes("style-src"))).toBe(true);
  });
});
