/**
 * Agents that act, end to end: a real server, real webhooks, harness children running the agent
 * loop against the fake model server (tool calls in the real wire formats), tools running inside
 * bubblewrap. The env a webhook caller sets reaches the commands; files a tool writes stay; a
 * cancelled or timed-out session leaves no process; a tool cannot read the data dir or write
 * outside its folder; token usage adds up on the session.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { callTools, startModelServer, toolScript, type FakeModelServer } from "../fakes/model-server";
import { eventually, startServer, type TestServer } from "../helpers";

const HAVE_BWRAP = Bun.which("bwrap") !== null;
if (!HAVE_BWRAP) console.warn("\n*** SKIPPED: test/e2e/tools.test.ts needs bubblewrap (apt-get install bubblewrap); .ci/run installs it ***\n");

let server: TestServer;
let models: FakeModelServer;
const AGENTS = "/apis/pai.io/v1/namespaces/default/agents";

type Event = { id: number; type: string; content: any };

async function apply(name: string, spec: Record<string, unknown>): Promise<string> {
  const res = await server.api(`${AGENTS}/${name}`, {
    method: "PUT",
    json: { apiVersion: "pai.io/v1", kind: "Agent", metadata: { name }, spec: { models: ["anthropic/claude-tools"], ...spec } },
  });
  expect(res.status).toBeLessThan(300);
  return eventually(async () => ((await (await server.api(`${AGENTS}/${name}`)).json()) as { status?: { webhookUrl?: string } }).status?.webhookUrl, 5000, "webhook URL");
}

async function hook(url: string, body: Record<string, unknown>) {
  const res = await fetch(url.replace(/^http:\/\/localhost:\d+/, server.url), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
  return (await res.json()) as { session: string; response?: string | null; phase?: string };
}

const session = async (name: string) => (await (await server.api(`/agents/${name}?namespace=default`)).json()) as Record<string, any>;
const events = async (name: string) => ((await (await server.api(`/agents/${name}/events?namespace=default`)).json()) as { events: Event[] }).events;
const ended = (name: string, ms = 15_000) =>
  eventually(async () => {
    const s = await session(name);
    return ["Complete", "Error", "Cancelled"].includes(s.phase) ? s : undefined;
  }, ms, `session ${name} ended`);

/** Processes whose command line contains `marker` (from /proc, so nothing is missed that ps would show). */
function processesWith(marker: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      if (cmd.includes(marker) && !cmd.includes("bun test")) found.push(`${pid}: ${cmd}`);
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

describe.skipIf(!HAVE_BWRAP)("agents that act", () => {
  let worker: string;

  beforeAll(async () => {
    models = startModelServer();
    server = await startServer({ env: { ANTHROPIC_API_KEY: "sk-ant-test", ANTHROPIC_BASE_URL: models.anthropicBaseUrl, OPENAI_API_KEY: "sk-openai-test", OPENAI_BASE_URL: models.openaiBaseUrl } });
    worker = await apply("worker", {
      tools: ["bash", "read_file", "write_file"],
      triggers: [{ webhook: { allowedEnv: ["BATCH_DATE"] } }],
    });
  });
  afterAll(async () => {
    await server?.stop();
    await models?.stop();
  });
  beforeEach(() => {
    models.reset();
    models.script(toolScript());
  });

  test("a webhook's env override reaches a bash command, and the reply quotes its result (wait mode)", async () => {
    const res = await hook(worker, { title: "run: echo batch=$BATCH_DATE", env: [{ name: "BATCH_DATE", value: "2026-04-12" }], wait: 30 });
    expect(res.phase).toBe("Complete");
    // bash answers the exit code and the output; the fake quotes what it got.
    expect(res.response).toStartWith("tool said: exit code: 0");
    expect(res.response).toEndWith("\nbatch=2026-04-12");
    const evs = await events(res.session);
    expect(evs.map((e) => e.type)).toEqual([
      "session.status_running",
      "session.usage",
      "agent.tool_use",
      "agent.tool_result",
      "session.usage",
      "agent.message",
      "session.status_closed",
    ]);
    const use = evs.find((e) => e.type === "agent.tool_use")!.content;
    const result = evs.find((e) => e.type === "agent.tool_result")!.content;
    expect(use).toMatchObject({ name: "bash", input: { command: "echo batch=$BATCH_DATE" } });
    expect(result).toMatchObject({ id: use.id, name: "bash", isError: false });
    expect(result.output).toContain("batch=2026-04-12");
    // The model saw the tools and got the result back as a tool_result of its call.
    const second = models.requests.at(-1)!;
    expect(second.tools?.map((t) => t.name).sort()).toEqual(["bash", "read_file", "write_file"]);
    expect(JSON.stringify(second.conversation)).toContain(use.id);
  });

  test("token usage adds up on the session, per model", async () => {
    const res = await hook(worker, { title: "run: echo counted", wait: 30 });
    const usageEvents = (await events(res.session)).filter((e) => e.type === "session.usage").map((e) => e.content);
    expect(usageEvents).toHaveLength(2);
    const total = usageEvents.reduce((sum, u) => ({ i: sum.i + u.inputTokens, o: sum.o + u.outputTokens }), { i: 0, o: 0 });
    expect(total.i).toBeGreaterThan(0);
    const s = await session(res.session);
    expect(s.usage).toEqual({ inputTokens: total.i, outputTokens: total.o, byModel: { "anthropic/claude-tools": { inputTokens: total.i, outputTokens: total.o } } });
    const yaml = await server.cli(["get", "session", res.session, "-o", "yaml"]);
    expect(yaml.stdout).toContain(`inputTokens: ${total.i}`);
  });

  test("files a tool writes stay in the session's folder after the run", async () => {
    const res = await hook(worker, { title: "run: mkdir -p out && echo 'weekly report' > out/report.txt && echo written", wait: 30 });
    expect(res.response).toEndWith("\nwritten");
    const file = join(server.dataDir, "sessions", "default", res.session, "out", "report.txt");
    expect(readFileSync(file, "utf8")).toBe("weekly report\n");
    // And anyone with a token of the namespace can pick it up: the files API, and pai cp.
    const list = (await (await server.api(`/agents/${res.session}/files?namespace=default`)).json()) as { files: { path: string }[] };
    expect(list.files.map((f) => f.path)).toContain("out/report.txt");
    const download = await server.api(`/agents/${res.session}/files/out/report.txt?namespace=default`);
    expect(download.status).toBe(200);
    expect(await download.text()).toBe("weekly report\n");
    const cp = await server.cli(["cp", `${res.session}:out/report.txt`, "-"]);
    expect(cp.stdout).toBe("weekly report\n");
  });

  test("a tool cannot read the data dir or write outside its folder", async () => {
    const token = readFileSync(join(server.dataDir, "admin-token"), "utf8").trim();
    const outside = join(server.dataDir, "pwned");
    const res = await hook(worker, {
      title: [`run: cat ${join(server.dataDir, "admin-token")}; ls ${server.dataDir}; head -c 16 ${join(server.dataDir, "pai.db")} | od -c | head -1`, `run: echo x > ${outside}; echo x > /etc/pai-pwned; echo done`].join("\n"),
      wait: 30,
    });
    const results = (await events(res.session)).filter((e) => e.type === "agent.tool_result").map((e) => e.content.output as string);
    expect(results).toHaveLength(2);
    expect(results.join("\n")).not.toContain(token);
    expect(results.join("\n")).not.toContain("SQLite format");
    expect(existsSync(outside)).toBe(false);
    expect(existsSync("/etc/pai-pwned")).toBe(false);
    expect(results[1]).toMatch(/Read-only file system|No such file or directory|Permission denied/);
  });

  test("cancel stops the loop and every process a tool started", async () => {
    const marker = `pai-cancel-${Date.now()}`;
    const { session: name } = await hook(worker, { title: `run: (sleep 300; echo ${marker}) & sleep 301 # ${marker}` });
    await eventually(async () => (await events(name)).some((e) => e.type === "agent.tool_use"), 10_000, "the tool call");
    await eventually(() => processesWith("sleep 30").length > 0 || undefined, 10_000, "the tool's processes");
    const cancel = await server.cli(["cancel", name]);
    expect(cancel.code).toBe(0);
    const s = await ended(name);
    expect(s.phase).toBe("Cancelled");
    // Both sleeps (the backgrounded one too) are gone with the session.
    await eventually(() => (processesWith("sleep 300").length === 0 && processesWith("sleep 301").length === 0) || undefined, 10_000, "no sleep left");
    expect(processesWith(marker)).toEqual([]);
  });

  test("the deadline stops a tool that runs too long, and nothing is left running", async () => {
    const slow = await apply("slow-worker", { tools: ["bash"], timeoutSeconds: 2, triggers: [{ webhook: {} }] });
    const { session: name } = await hook(slow, { title: "run: sleep 302" });
    const s = await ended(name, 20_000);
    expect(s.phase).toBe("Error");
    expect(s.error).toContain("deadline exceeded");
    await eventually(() => processesWith("sleep 302").length === 0 || undefined, 10_000, "no sleep left");
  });

  test("maxTurns ends a session that keeps calling tools, Error with a reason that says so", async () => {
    const loop = await apply("looper", { tools: ["bash"], maxTurns: 3, triggers: [{ webhook: {} }] });
    models.script(() => callTools([{ name: "bash", input: { command: "echo again" } }]));
    const res = await hook(loop, { title: "never stop", wait: 30 });
    expect(res.phase).toBe("Error");
    const s = await session(res.session);
    expect(s.error).toContain("reached maxTurns (3)");
    expect(models.requests).toHaveLength(3);
  });

  test("a tool the agent was not given is refused as an error result, and the run goes on", async () => {
    const reader = await apply("reader", { tools: ["read_file"], triggers: [{ webhook: {} }] });
    const res = await hook(reader, { title: "run: rm -rf /", wait: 30 });
    expect(res.phase).toBe("Complete");
    const result = (await events(res.session)).find((e) => e.type === "agent.tool_result")!.content;
    expect(result.isError).toBe(true);
    expect(result.output).toContain("there is no tool named bash");
  });

  test("the OpenAI wire format runs tools too", async () => {
    const oa = await apply("oa-worker", { models: ["openai/gpt-4o"], tools: ["bash"], triggers: [{ webhook: {} }] });
    const res = await hook(oa, { title: "run: echo from-openai", wait: 30 });
    expect(res.response).toEndWith("\nfrom-openai");
    expect(models.requests.every((r) => r.provider === "openai")).toBe(true);
  });
});

describe.skipIf(!HAVE_BWRAP)("the tool agent of manifests/examples", () => {
  test("works offline against a local OpenAI-compatible server (here the fake): a webhook's env reaches its bash", async () => {
    const fake = startModelServer();
    fake.script(toolScript());
    const { ROOT } = await import("../helpers");
    const s = await startServer({ manifests: `${ROOT}/manifests/examples`, args: ["--no-write-status"], env: { OPENAI_API_KEY: "ollama", OPENAI_BASE_URL: fake.openaiBaseUrl } });
    try {
      const url = JSON.parse((await s.cli(["get", "agent-def", "worker", "-o", "json"])).stdout).status.webhookUrl.replace(/^http:\/\/localhost:\d+/, s.url);
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ title: "run: echo batch $BATCH_DATE", env: [{ name: "BATCH_DATE", value: "2026-04-12" }], wait: 30 }),
      });
      const body = (await res.json()) as { phase: string; response: string };
      expect(body.phase).toBe("Complete");
      expect(body.response).toEndWith("\nbatch 2026-04-12");
      expect(fake.requests[0]!.model).toBe("qwen2.5");
      expect(fake.requests[0]!.tools?.map((t) => t.name)).toEqual(["bash", "read_file", "write_file", "edit_file", "glob", "grep"]);
    } finally {
      await s.stop();
      await fake.stop();
    }
  });
});
