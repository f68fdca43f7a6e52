// Covers src/harness/loop.ts: runLoop over createFallbackClient and the real model clients (both
// SDKs) against test/fakes/model-server.ts, with a real ToolRegistry of small test tools.
import { afterAll, afterEach, beforeEach, describe, expect, test } from "bun:test";
import { EventType } from "../../src/domain/session";
import { runLoop } from "../../src/harness/loop";
import { createFallbackClient } from "../../src/harness/models/fallback";
import type { ModelCredentials } from "../../src/harness/models/types";
import type { Emit, HarnessEvent, HarnessSpec } from "../../src/harness/protocol";
import { ToolRegistry } from "../../src/harness/tools/registry";
import { MAX_OUTPUT_CHARS, toolError, type Tool, type ToolContext } from "../../src/harness/tools/types";
import { callTools, fail, hang, startModelServer, toolResultsOf } from "../fakes/model-server";
import { eventually, removeDir, tempDir } from "../helpers";

const fake = startModelServer();
afterAll(() => fake.stop());

const creds: ModelCredentials = {
  ANTHROPIC_API_KEY: "sk-ant-test-0123456789",
  ANTHROPIC_BASE_URL: fake.anthropicBaseUrl,
  OPENAI_API_KEY: "sk-openai-test-9876543210",
  OPENAI_BASE_URL: fake.openaiBaseUrl,
};

const schema = (props: Record<string, unknown> = {}) => ({ type: "object", properties: props });

/** Repeats its text back. */
const echoTool: Tool = {
  name: "echo",
  description: "Says the text back.",
  inputSchema: schema({ text: { type: "string" } }),
  run: async (input) => (typeof input.text === "string" ? { output: `echo: ${input.text}` } : toolError("text must be a string")),
};

/** Returns a long output. */
const bigTool: Tool = {
  name: "big",
  description: "Prints a lot.",
  inputSchema: schema(),
  run: async () => ({ output: "x".repeat(MAX_OUTPUT_CHARS + 12_345) }),
};

/** A bug in a tool. */
const throwingTool: Tool = {
  name: "broken",
  description: "Always throws.",
  inputSchema: schema(),
  run: async () => {
    throw new Error("kaput");
  },
};

/**
 * Two calls that each wait for the other to have started: run one after the other, the first
 * would never see the second, and gives up (after 3 s, within the test timeout) saying so.
 */
function rendezvousTool() {
  let started = 0;
  let release!: () => void;
  const both = new Promise<void>((r) => (release = r));
  const tool: Tool = {
    name: "meet",
    description: "Waits for its twin.",
    inputSchema: schema({ who: { type: "string" } }),
    run: async (input) => {
      if (++started === 2) release();
      const alone = await Promise.race([both.then(() => false), Bun.sleep(3_000).then(() => true)]);
      return { output: alone ? `${input.who} ran alone` : `${input.who} met its twin` };
    },
  };
  return tool;
}

/** Waits until the session is aborted; `entered` resolves when it starts. */
function waitingTool() {
  let entered!: () => void;
  const started = new Promise<void>((r) => (entered = r));
  const tool: Tool = {
    name: "wait",
    description: "Waits for the end.",
    inputSchema: schema(),
    run: (_input, ctx) =>
      new Promise((resolve) => {
        entered();
        ctx.signal.addEventListener("abort", () => resolve(toolError("stopped: the session was aborted")), { once: true });
      }),
  };
  return { tool, started };
}

let cwd: string;
beforeEach(() => {
  fake.reset();
  cwd = tempDir("pai-loop-");
});
afterEach(() => removeDir(cwd));

interface RunOptions {
  models: string[];
  tools?: Tool[];
  spec?: Partial<HarnessSpec>;
  signal?: AbortSignal;
  prompt?: string;
}

async function run(o: RunOptions) {
  const events: HarnessEvent[] = [];
  const emit: Emit = (type, content) => void events.push({ type, content } as HarnessEvent);
  const tools = new ToolRegistry();
  for (const t of o.tools ?? [echoTool]) tools.add(t);
  const context: ToolContext = { cwd, env: {}, signal: o.signal ?? new AbortController().signal, sandbox: { kind: "none", wrap: (a) => a }, allowPrivateFetch: false };
  const spec: HarnessSpec = { models: o.models, ...o.spec };
  const client = createFallbackClient(o.models, creds, emit);
  const result = await runLoop({ prompt: o.prompt ?? "do the thing", spec, client, tools, context, emit });
  return { result, events, types: events.map((e) => e.type) };
}

const contentOf = <T extends HarnessEvent["type"]>(events: HarnessEvent[], type: T) =>
  events.filter((e) => e.type === type).map((e) => e.content) as Extract<HarnessEvent, { type: T }>["content"][];

const providers = [
  { provider: "anthropic", model: "claude-loop" },
  { provider: "openai", model: "gpt-loop" },
] as const;

for (const { provider, model } of providers) {
  const id = `${provider}/${model}`;
  describe(`runLoop with ${provider}`, () => {
    test("turns until one has no tool calls; events in order; the response is the last turn's text", async () => {
      fake.enqueue(
        model,
        callTools([{ id: "c1", name: "echo", input: { text: "hello" } }], { text: "Let me check.", thinking: "Use echo." }),
        callTools([{ id: "c2", name: "echo", input: { text: "again" } }]),
        "All done: hello, again.",
      );
      const { result, events, types } = await run({ models: [id], spec: { system: "be useful", maxTokens: 321 } });
      expect(result).toEqual({ type: "result", phase: "Complete", response: "All done: hello, again." });
      expect(types).toEqual([
        EventType.Usage,
        EventType.AgentThinking,
        EventType.AgentMessage,
        EventType.AgentToolUse,
        EventType.AgentToolResult,
        EventType.Usage,
        EventType.AgentToolUse,
        EventType.AgentToolResult,
        EventType.Usage,
        EventType.AgentMessage,
      ]);
      expect(contentOf(events, EventType.AgentThinking)).toEqual([{ text: "Use echo.", model: id }]);
      expect(contentOf(events, EventType.AgentMessage)).toEqual([
        { text: "Let me check.", model: id, stopReason: "tool_use" },
        { text: "All done: hello, again.", model: id, stopReason: "end_turn" },
      ]);
      expect(contentOf(events, EventType.AgentToolUse)).toEqual([
        { id: "c1", name: "echo", input: { text: "hello" } },
        { id: "c2", name: "echo", input: { text: "again" } },
      ]);
      expect(contentOf(events, EventType.AgentToolResult)).toEqual([
        { id: "c1", name: "echo", output: "echo: hello", isError: false },
        { id: "c2", name: "echo", output: "echo: again", isError: false },
      ]);
      for (const u of contentOf(events, EventType.Usage)) {
        expect(u.model).toBe(id);
        expect(u.inputTokens).toBeGreaterThan(0);
        expect(u.outputTokens).toBeGreaterThan(0);
      }

      const reqs = fake.requestsFor(model);
      expect(reqs).toHaveLength(3);
      for (const r of reqs) {
        expect(r.system).toBe("be useful");
        expect(r.body.max_tokens).toBe(321);
        expect(r.tools.map((t) => t.name)).toEqual(["echo"]);
      }
      // The third call carries the whole conversation, results matched to their calls.
      expect(reqs[2]!.conversation).toEqual([
        { role: "user", content: [{ type: "text", text: "do the thing" }] },
        {
          role: "assistant",
          content: [
            ...(provider === "anthropic" ? [{ type: "thinking" as const, thinking: "Use echo.", signature: "fake-signature" }] : []),
            { type: "text", text: "Let me check." },
            { type: "tool_use", id: "c1", name: "echo", input: { text: "hello" } },
          ],
        },
        { role: "user", content: [{ type: "tool_result", toolUseId: "c1", content: "echo: hello", isError: false }] },
        { role: "assistant", content: [{ type: "tool_use", id: "c2", name: "echo", input: { text: "again" } }] },
        { role: "user", content: [{ type: "tool_result", toolUseId: "c2", content: "echo: again", isError: false }] },
      ]);
    });

    test("the calls of one turn run together, and their results go back in call order", async () => {
      fake.enqueue(
        model,
        callTools([
          { id: "m1", name: "meet", input: { who: "first" } },
          { id: "m2", name: "meet", input: { who: "second" } },
        ]),
        "met",
      );
      const { result, events, types } = await run({ models: [id], tools: [rendezvousTool()] });
      expect(result).toMatchObject({ phase: "Complete", response: "met" });
      const results = contentOf(events, EventType.AgentToolResult);
      expect(results.map((r) => r.output).sort()).toEqual(["first met its twin", "second met its twin"]);
      // Both calls are announced before either result.
      expect(types.indexOf(EventType.AgentToolResult)).toBeGreaterThan(types.lastIndexOf(EventType.AgentToolUse));
      const sent = toolResultsOf(fake.requestsFor(model)[1]!)!;
      expect(sent.map((b) => [b.toolUseId, b.content])).toEqual([
        ["m1", "first met its twin"],
        ["m2", "second met its twin"],
      ]);
    });

    test("an unknown tool, a tool that throws and input that is not an object are error results, and the loop goes on", async () => {
      fake.enqueue(
        model,
        callTools([
          { id: "u1", name: "rm_rf", input: { path: "/" } },
          { id: "u2", name: "broken", input: {} },
          { id: "u3", name: "echo", input: null, json: '["not", "an", "object"]' },
        ]),
        "recovered",
      );
      const { result, events } = await run({ models: [id], tools: [echoTool, throwingTool] });
      expect(result).toEqual({ type: "result", phase: "Complete", response: "recovered" });
      const byId = Object.fromEntries(contentOf(events, EventType.AgentToolResult).map((r) => [r.id, r]));
      expect(byId.u1).toEqual({ id: "u1", name: "rm_rf", output: "there is no tool named rm_rf; the tools are: echo, broken", isError: true });
      expect(byId.u2).toEqual({ id: "u2", name: "broken", output: "broken failed: kaput", isError: true });
      expect(byId.u3).toEqual({ id: "u3", name: "echo", output: "the input of echo must be a JSON object", isError: true });
      const sent = toolResultsOf(fake.requestsFor(model)[1]!)!;
      expect(sent.map((b) => b.toolUseId)).toEqual(["u1", "u2", "u3"]);
      if (provider === "anthropic") expect(sent.every((b) => b.isError)).toBe(true);
    });

    test("output over the cap is cut with a note, in the event and in what the model gets", async () => {
      fake.enqueue(model, callTools([{ id: "b1", name: "big", input: {} }]), "ok");
      const { events } = await run({ models: [id], tools: [bigTool] });
      const [r] = contentOf(events, EventType.AgentToolResult);
      expect(r!.truncated).toBe(true);
      expect(r!.isError).toBe(false);
      expect(r!.output).toStartWith("x".repeat(MAX_OUTPUT_CHARS));
      expect(r!.output.slice(MAX_OUTPUT_CHARS)).toBe("\n[output cut: 12345 more characters not shown]");
      expect(toolResultsOf(fake.requestsFor(model)[1]!)![0]!.content).toBe(r!.output);
    });

    test("maxTurns reached ends the run with an Error naming maxTurns", async () => {
      fake.script(() => callTools([{ name: "echo", input: { text: "more" } }], { text: "still going" }));
      const { result, events } = await run({ models: [id], spec: { maxTurns: 3 } });
      expect(result.phase).toBe("Error");
      expect(result).toMatchObject({ response: "still going" });
      expect(result.phase === "Error" && result.error).toContain("maxTurns (3)");
      expect(fake.requestsFor(model)).toHaveLength(3);
      // The calls of the last turn are not run: no model call would see their results.
      expect(contentOf(events, EventType.AgentToolResult)).toHaveLength(2);
      expect(contentOf(events, EventType.AgentToolUse)).toHaveLength(2);
      expect(contentOf(events, EventType.Error).map((e) => e.message)).toEqual([(result as { error: string }).error]);
    });

    test("a model error that does not fall back ends the run with it", async () => {
      fake.enqueue(model, callTools([{ name: "echo", input: { text: "a" } }], { text: "first" }), fail(400));
      const { result, events } = await run({ models: [id] });
      expect(result).toMatchObject({ phase: "Error", response: "first" });
      expect(result.phase === "Error" && result.error).toStartWith(`${id}: 400`);
      expect(contentOf(events, EventType.Error)).toEqual([{ message: (result as { error: string }).error, model: id }]);
    });
  });
}

describe("runLoop: fallback inside the loop", () => {
  test("turn 2 overloaded on model A goes to model B with the whole conversation; later turns stay on B", async () => {
    const a = "anthropic/claude-a";
    const b = "openai/gpt-b";
    fake.enqueue("claude-a", callTools([{ id: "toolu_a1", name: "echo", input: { text: "one" } }], { text: "First.", thinking: "plan" }), fail(529));
    fake.enqueue("gpt-b", callTools([{ id: "call_b1", name: "echo", input: { text: "two" } }]), "Finished on B.");
    const { result, events, types } = await run({ models: [a, b] });
    expect(result).toEqual({ type: "result", phase: "Complete", response: "Finished on B." });
    expect(contentOf(events, EventType.ModelFallback)).toEqual([{ from: a, to: b, error: `${a}: 529 overloaded_error: Overloaded` }]);
    // The fallback is reported after turn 1's result and before turn 2's usage.
    const at = types.indexOf(EventType.ModelFallback);
    expect(types.slice(0, at)).toContain(EventType.AgentToolResult);
    expect(contentOf(events, EventType.Usage).map((u) => u.model)).toEqual([a, b, b]);
    expect(contentOf(events, EventType.AgentMessage).map((m) => [m.model, m.text])).toEqual([
      [a, "First."],
      [b, "Finished on B."],
    ]);

    expect(fake.requestsFor("claude-a")).toHaveLength(2);
    const bReqs = fake.requestsFor("gpt-b");
    expect(bReqs).toHaveLength(2);
    // B got A's turn in its own format: the call as tool_calls, the result as a tool message, no thinking.
    expect(bReqs[0]!.body.messages).toEqual([
      { role: "user", content: "do the thing" },
      { role: "assistant", content: "First.", tool_calls: [{ id: "toolu_a1", type: "function", function: { name: "echo", arguments: '{"text":"one"}' } }] },
      { role: "tool", tool_call_id: "toolu_a1", content: "echo: one" },
    ]);
    expect(bReqs[1]!.conversation).toHaveLength(5);
  });

  test("when every model fails the run ends with the last error", async () => {
    fake.enqueue("claude-x", fail(529));
    fake.enqueue("gpt-y", fail(503));
    const { result, events } = await run({ models: ["anthropic/claude-x", "openai/gpt-y"] });
    expect(result).toMatchObject({ phase: "Error", response: null });
    expect(result.phase === "Error" && result.error).toStartWith("openai/gpt-y: 503");
    expect(contentOf(events, EventType.ModelFallback)).toHaveLength(1);
  });
});

describe("runLoop: abort", () => {
  test("aborting while tools run ends the loop without another model call", async () => {
    const model = "claude-abort";
    const ac = new AbortController();
    const waiting = waitingTool();
    fake.enqueue(model, callTools([{ id: "w1", name: "wait", input: {} }]), "never asked");
    waiting.started.then(() => ac.abort());
    const { result, events } = await run({ models: [`anthropic/${model}`], tools: [waiting.tool], signal: ac.signal });
    expect(result).toMatchObject({ phase: "Error", error: "aborted" });
    expect(contentOf(events, EventType.AgentToolResult)).toEqual([{ id: "w1", name: "wait", output: "stopped: the session was aborted", isError: true }]);
    expect(fake.requestsFor(model)).toHaveLength(1);
  });

  test("aborting while the model is answering ends the loop and drops the request", async () => {
    const model = "gpt-abort";
    fake.enqueue(model, hang);
    const ac = new AbortController();
    const done = run({ models: [`openai/${model}`, "anthropic/never-used"], signal: ac.signal });
    await eventually(() => fake.requestsFor(model).length === 1);
    ac.abort();
    const { result, events } = await done;
    expect(result).toMatchObject({ phase: "Error", error: `openai/${model}: aborted` });
    // An abort is not a reason to try the next model.
    expect(contentOf(events, EventType.ModelFallback)).toEqual([]);
    expect(fake.requestsFor("never-used")).toEqual([]);
    await eventually(() => fake.requestsFor(model)[0]!.disconnected);
  });
});

describe("runLoop: no tools", () => {
  test("a registry without tools offers none, and one turn ends the run", async () => {
    const { result } = await run({ models: ["anthropic/claude-plain"], tools: [], prompt: "just say hi" });
    expect(result).toEqual({ type: "result", phase: "Complete", response: "just say hi" });
    expect(fake.requests[0]!.body.tools).toBeUndefined();
  });
});
