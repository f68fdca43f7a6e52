/**
 * Screenshots of the web console for the README, from a real run: a `pai serve` with the example
 * agents (manifests/examples, status not written back), the fake model server standing in for
 * Claude and the local OpenAI-compatible model, a few webhook deliveries (two of them refused),
 * then headless Chromium signed in as admin takes the overview, agents, an agent and a session.
 *
 *   bun scripts/console-screenshots.ts        # writes docs/console/*.png
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { callTools, startModelServer, toolResultsOf } from "../test/fakes/model-server";
import { eventually, ROOT, startServer, removeDir } from "../test/helpers";

const OUT = join(ROOT, "docs", "console");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

const models = startModelServer();
models.script((model, req) => {
  if (model === "claude-sonnet-4-6")
    return {
      thinking: "The diff renames a config key; check the callers and the docs.",
      text: "**Looks good**, with one thing to fix:\n\n- `retries` was renamed to `maxRetries` in `config.ts`, but `worker.ts` still reads the old key.\n- The README example uses the new name. ✅\n\nSuggested change: read `maxRetries` in `worker.ts` (line 42).",
      chunkDelayMs: 5,
    };
  if (model === "qwen2.5") {
    const results = toolResultsOf(req);
    if (!results) return callTools([{ name: "write_file", input: { path: "report/summary.md", content: "# Nightly batch\n\n3 files, 1,204 rows, 0 errors.\n" } }, { name: "read_file", input: { path: "missing.csv" } }]);
    return { text: "I wrote **report/summary.md** with the batch figures. `missing.csv` was not there, so it was skipped.\n\n| file | rows |\n|---|---:|\n| a.csv | 402 |\n| b.csv | 802 |" };
  }
  return undefined;
});

const server = await startServer({
  manifests: join(ROOT, "manifests", "examples"),
  args: ["--no-write-status"],
  env: { ANTHROPIC_API_KEY: "sk-ant-demo", ANTHROPIC_BASE_URL: models.anthropicBaseUrl, OPENAI_API_KEY: "ollama", OPENAI_BASE_URL: models.openaiBaseUrl },
});

try {
  const url = (name: string) =>
    eventually(async () => ((await (await server.api(`/apis/pai.io/v1/namespaces/default/agents/${name}`)).json()) as { status?: { webhookUrl?: string } }).status?.webhookUrl, 10_000, `${name}'s URL`);
  const local = async (name: string) => `${server.url}${new URL(await url(name)).pathname}`;
  const post = (to: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(to, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: typeof body === "string" ? body : JSON.stringify(body) });

  const reviewer = await local("my-agent");
  const echo = await local("echo");
  const worker = await local("worker");
  for (const [i, title] of ["Review PR #118: rename retries to maxRetries", "Review PR #121: add a health check", "Review PR #122: docs typo"].entries())
    await post(reviewer, { title, wait: 30 }, { "x-github-delivery": `7f3c9a10-0000-4000-8000-00000000000${i}` });
  for (const title of ["ping", "hello", "what sound does a cow make?"]) await post(echo, { title });
  const work = (await (await post(worker, { title: "Summarise last night's batch", env: [{ name: "BATCH_DATE", value: "2026-11-26" }], wait: 30 })).json()) as { session: string };
  // Refused deliveries, as a misconfigured sender makes them: a wrong token, then a body that is not JSON.
  await post(reviewer.replace(/[^/]+$/, "0".repeat(64)), { title: "old URL" }, { "x-github-delivery": "7f3c9a10-0000-4000-8000-0000000000a1" });
  await post(reviewer, "{not json", { "x-github-delivery": "7f3c9a10-0000-4000-8000-0000000000a2" });
  await eventually(async () => ((await (await server.api("/apis/pai.io/v1/overview")).json()) as { running: number; pending: number }).running === 0, 10_000, "sessions to end");

  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 820 }, colorScheme: "light" })).newPage();
  mkdirSync(OUT, { recursive: true });
  const shot = async (name: string, full = false) => {
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: full });
    console.log(`docs/console/${name}.png`);
  };
  await page.goto(`${server.url}/console`);
  await page.fill("#token", server.token);
  await page.click("#signin button[type=submit]");
  await page.waitForSelector("#stat-running");
  await shot("overview");
  await page.click("nav >> text=Agents");
  await page.waitForSelector("#agents td.num a");
  await shot("agents");
  await page.goto(`${server.url}/console/agents/default/my-agent`);
  await page.waitForSelector("#deliveries tr[data-code]");
  await shot("agent", true);
  await page.goto(`${server.url}/console/sessions/default/${work.session}`);
  await page.waitForSelector('#stream-state:text("ended")');
  await page.waitForSelector("#files .file-path");
  await shot("session", true);
  await page.goto(`${server.url}/console/sessions`);
  await page.waitForSelector("#sessions");
  await shot("sessions");
  await browser.close();
} finally {
  await server.stop();
  await models.stop();
  removeDir(server.dataDir);
}
