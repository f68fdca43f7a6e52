// Covers tool use in src/harness/models (anthropic, openai) through the real SDKs against
// test/fakes/model-server.ts: tool specs and tool conversations in each provider's wire format,
// streamed calls assembled into tool_use blocks, and the fake's own tool-call scripting.
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { createModel } from "../../src/harness/models";
import { ModelError, type ChatMessage, type ContentBlock, type ModelCredentials, type ModelRequest, type ToolSpec } from "../../src/harness/models/types";
import { callTools, startModelServer, toolScript } from "../fakes/model-server";

const fake = startModelServer();
afterAll(() => fake.stop());
beforeEach(() => fake.reset());

const creds: ModelCredentials = {
  ANTHROPIC_API_KEY: "sk-ant-test-0123456789",
  ANTHROPIC_BASE_URL: fake.anthropicBaseUrl,
  OPENAI_API_KEY: "sk-openai-test-9876543210",
  OPENAI_BASE_URL: fake.openaiBaseUrl,
};

const BASH: ToolSpec = {
  name: "bash",
  description: "Runs a shell command.",
  inputSchema: { type: "object", properties: { command: { type: "string" } }, required: ["command"] },
};
const READ: ToolSpec = {
  name: "read_file",
  description: "Reads a file.",
  inputSchema: { type: "object", properties: { path: { type: "string" }, limit: { type: "integer" } }, required: ["path"], additionalProperties: false },
};

const user = (text: string): ChatMessage => ({ role: "user", content: [{ type: "text", text }] });
const ask = (model: string, messages: ChatMessage[], extra: Partial<ModelRequest> = {}): ModelRequest => ({ model, messages, tools: [BASH, READ], ...extra });
const toolUses = (content: ContentBlock[]) => content.filter((b) => b.type === "tool_use");

async function failure(p: Promise<unknown>): Promise<ModelError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ModelError);
    return e as ModelError;
  }
  throw new Error("expected the call to fail");
}

/** A raw streaming request to the fake, to see the wire format the SDKs parse. */
async function rawStream(provider: "anthropic" | "openai", model: string): Promise<string> {
  const path = provider === "anthropic" ? "/v1/messages" : "/v1/chat/completions";
  const body = { model, max_tokens: 10, stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "q" }] };
  const res = await fetch(`${fake.url}${path}`, { method: "POST", headers: { "content-type": "application/json", authorization: "Bearer k" }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
  return res.text();
}

const dataOf = (stream: string) =>
  [...stream.matchAll(/^data: (.+)$/gm)]
    .map((m) => m[1]!)
    .filter((d) => d !== "[DONE]")
    .map((d) => JSON.parse(d));

// A conversation with every kind of block: the model thought (signed), said something, called two
// tools; one call worked, one failed.
const history: ChatMessage[] = [
  user("list the folder and read notes.txt"),
  {
    role: "assistant",
    content: [
      { type: "thinking", thinking: "I should look first.", signature: "sig-abc" },
      { type: "text", text: "Looking." },
      { type: "tool_use", id: "call_1", name: "bash", input: { command: "ls" } },
      { type: "tool_use", id: "call_2", name: "read_file", input: { path: "notes.txt" } },
    ],
  },
  {
    role: "user",
    content: [
      { type: "tool_result", toolUseId: "call_1", content: "notes.txt\n" },
      { type: "tool_result", toolUseId: "call_2", content: "no such file", isError: true },
    ],
  },
];

const providers = [
  { provider: "anthropic", model: "claude-sonnet-4-6" },
  { provider: "openai", model: "gpt-5-mini" },
] as const;

for (const { provider, model } of providers) {
  const id = `${provider}/${model}`;
  const client = () => createModel(id, creds);

  describe(`${provider} tool use`, () => {
    test("offers the tools in the provider's format", async () => {
      await (await client()).complete(ask(model, [user("hi")]));
      const r = fake.requests[0]!;
      if (provider === "anthropic") {
        expect(r.body.tools).toEqual([
          { name: "bash", description: "Runs a shell command.", input_schema: BASH.inputSchema },
          { name: "read_file", description: "Reads a file.", input_schema: READ.inputSchema },
        ]);
      } else {
        expect(r.body.tools).toEqual([
          { type: "function", function: { name: "bash", description: "Runs a shell command.", parameters: BASH.inputSchema } },
          { type: "function", function: { name: "read_file", description: "Reads a file.", parameters: READ.inputSchema } },
        ]);
      }
      expect(r.tools).toEqual([
        { name: "bash", description: "Runs a shell command.", inputSchema: BASH.inputSchema },
        { name: "read_file", description: "Reads a file.", inputSchema: READ.inputSchema },
      ]);
    });

    test("without tools no tools field is sent", async () => {
      await (await client()).complete(ask(model, [user("hi")], { tools: [] }));
      expect(fake.requests[0]!.body.tools).toBeUndefined();
      expect(fake.requests[0]!.tools).toEqual([]);
    });

    test("the fake streams each call's arguments in several pieces", async () => {
      fake.enqueue(model, callTools([{ id: "c1", name: "bash", input: { command: "echo one two three" } }]));
      const events = dataOf(await rawStream(provider, model));
      if (provider === "anthropic") {
        expect(events.find((e) => e.type === "content_block_start")).toEqual({
          type: "content_block_start",
          index: 0,
          content_block: { type: "tool_use", id: "c1", name: "bash", input: {} },
        });
        const parts = events.filter((e) => e.delta?.type === "input_json_delta").map((e) => e.delta.partial_json);
        expect(parts.filter(Boolean).length).toBeGreaterThan(1);
        expect(parts.join("")).toBe('{"command":"echo one two three"}');
        expect(events.find((e) => e.type === "message_delta").delta.stop_reason).toBe("tool_use");
      } else {
        const deltas = events.flatMap((e) => e.choices?.[0]?.delta?.tool_calls ?? []);
        expect(deltas[0]).toEqual({ index: 0, id: "c1", type: "function", function: { name: "bash", arguments: "" } });
        const parts = deltas.map((d: any) => d.function.arguments).filter(Boolean);
        expect(parts.length).toBeGreaterThan(1);
        expect(parts.join("")).toBe('{"command":"echo one two three"}');
        expect(events.map((e) => e.choices?.[0]?.finish_reason).filter(Boolean)).toEqual(["tool_calls"]);
        expect(events.at(-1).usage).toMatchObject({ prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number) });
      }
    });

    test("streamed calls are assembled into tool_use blocks with their parsed input, after the text", async () => {
      const nested = { path: "dir/a b.txt", limit: 20, options: { tags: ["x", "y"], quote: 'say "hi"\n', unicode: "é✓" } };
      fake.enqueue(model, callTools([{ name: "bash", input: { command: "ls -la" } }, { name: "read_file", input: nested }], { text: "Let me look." }));
      const streamed: string[] = [];
      const res = await (await client()).complete(ask(model, [user("look around")]), { onText: (d) => void streamed.push(d) });
      expect(res.stopReason).toBe("tool_use");
      expect(res.content.map((b) => b.type)).toEqual(["text", "tool_use", "tool_use"]);
      expect(res.content[0]).toEqual({ type: "text", text: "Let me look." });
      expect(streamed.join("")).toBe("Let me look.");
      const [a, b] = toolUses(res.content);
      expect(a).toMatchObject({ name: "bash", input: { command: "ls -la" } });
      expect(b).toMatchObject({ name: "read_file", input: nested });
      // The ids the server gave, distinct, so results can be matched to calls.
      expect(a!.id).toStartWith(provider === "anthropic" ? "toolu_fake_" : "call_fake_");
      expect(b!.id).not.toBe(a!.id);
      expect(res.usage?.inputTokens).toBeGreaterThan(0);
      expect(res.usage?.outputTokens).toBeGreaterThan(0);
    });

    test("a call with empty arguments has an empty object as input", async () => {
      fake.enqueue(model, callTools([{ id: "e1", name: "bash", input: {}, json: "" }]));
      const res = await (await client()).complete(ask(model, [user("go")]));
      expect(res.content).toEqual([{ type: "tool_use", id: "e1", name: "bash", input: {} }]);
    });

    test("arguments that are not JSON are a ModelError naming the tool", async () => {
      fake.enqueue(model, callTools([{ name: "bash", input: null, json: '{"command": "ls' }]));
      const err = await failure((await client()).complete(ask(model, [user("go")])));
      expect(err.message).toStartWith(`${id}: the`);
      expect(err.message).toContain("call to bash");
      expect(err.message).toContain("not valid JSON");
    });

    test("a conversation with tool calls and results goes back in the provider's shape", async () => {
      await (await client()).complete(ask(model, history, { system: "be brief" }));
      const r = fake.requests[0]!;
      if (provider === "anthropic") {
        expect(r.body.messages).toEqual([
          { role: "user", content: [{ type: "text", text: "list the folder and read notes.txt" }] },
          {
            role: "assistant",
            content: [
              { type: "thinking", thinking: "I should look first.", signature: "sig-abc" },
              { type: "text", text: "Looking." },
              { type: "tool_use", id: "call_1", name: "bash", input: { command: "ls" } },
              { type: "tool_use", id: "call_2", name: "read_file", input: { path: "notes.txt" } },
            ],
          },
          {
            role: "user",
            content: [
              { type: "tool_result", tool_use_id: "call_1", content: "notes.txt\n" },
              { type: "tool_result", tool_use_id: "call_2", content: "no such file", is_error: true },
            ],
          },
        ]);
      } else {
        // Thinking is not sent back; tool results become `tool` messages, one per call.
        expect(r.body.messages).toEqual([
          { role: "system", content: "be brief" },
          { role: "user", content: "list the folder and read notes.txt" },
          {
            role: "assistant",
            content: "Looking.",
            tool_calls: [
              { id: "call_1", type: "function", function: { name: "bash", arguments: '{"command":"ls"}' } },
              { id: "call_2", type: "function", function: { name: "read_file", arguments: '{"path":"notes.txt"}' } },
            ],
          },
          { role: "tool", tool_call_id: "call_1", content: "notes.txt\n" },
          // No error flag on tool messages: a failed call says so in its text.
          { role: "tool", tool_call_id: "call_2", content: "error: no such file" },
        ]);
      }
      // The structured view is the same for both.
      expect(r.conversation).toEqual([
        { role: "user", content: [{ type: "text", text: "list the folder and read notes.txt" }] },
        {
          role: "assistant",
          content: [
            ...(provider === "anthropic" ? [{ type: "thinking" as const, thinking: "I should look first.", signature: "sig-abc" }] : []),
            { type: "text", text: "Looking." },
            { type: "tool_use", id: "call_1", name: "bash", input: { command: "ls" } },
            { type: "tool_use", id: "call_2", name: "read_file", input: { path: "notes.txt" } },
          ],
        },
        {
          role: "user",
          content: [
            { type: "tool_result", toolUseId: "call_1", content: "notes.txt\n", isError: false },
            // OpenAI has no error flag on tool messages: the text says it.
            { type: "tool_result", toolUseId: "call_2", content: provider === "anthropic" ? "no such file" : "error: no such file", isError: provider === "anthropic" },
          ],
        },
      ]);
    });

    test("an assistant turn of tool calls only, and a user turn of results and text", async () => {
      await (await client()).complete(
        ask(model, [
          user("go"),
          { role: "assistant", content: [{ type: "tool_use", id: "t1", name: "bash", input: { command: "true" } }] },
          { role: "user", content: [{ type: "tool_result", toolUseId: "t1", content: "" }, { type: "text", text: "and now?" }] },
        ]),
      );
      const msgs = fake.requests[0]!.body.messages;
      if (provider === "anthropic") {
        expect(msgs.slice(1)).toEqual([
          { role: "assistant", content: [{ type: "tool_use", id: "t1", name: "bash", input: { command: "true" } }] },
          { role: "user", content: [{ type: "tool_result", tool_use_id: "t1", content: "" }, { type: "text", text: "and now?" }] },
        ]);
      } else {
        expect(msgs.slice(1)).toEqual([
          { role: "assistant", content: null, tool_calls: [{ id: "t1", type: "function", function: { name: "bash", arguments: '{"command":"true"}' } }] },
          { role: "tool", tool_call_id: "t1", content: "" },
          { role: "user", content: "and now?" },
        ]);
      }
    });

    test("toolScript: `run:` lines become bash calls, and tool results are quoted back", async () => {
      fake.script(toolScript());
      const c = await client();
      const first = await c.complete(ask(model, [user("Please.\nrun: echo $BATCH_DATE\nrun: pwd")]));
      expect(first.stopReason).toBe("tool_use");
      const calls = toolUses(first.content);
      expect(calls.map((b) => [b.name, b.input])).toEqual([
        ["bash", { command: "echo $BATCH_DATE" }],
        ["bash", { command: "pwd" }],
      ]);
      const second = await c.complete(
        ask(model, [
          user("run: echo $BATCH_DATE"),
          { role: "assistant", content: calls },
          { role: "user", content: calls.map((b, i) => ({ type: "tool_result" as const, toolUseId: b.id, content: i ? "/work\n" : "2024-05-01\n" })) },
        ]),
      );
      expect(second.stopReason).toBe("end_turn");
      expect(second.content).toEqual([{ type: "text", text: "tool said: 2024-05-01\ntool said: /work" }]);
      // A prompt without `run:` gets the default echo.
      const plain = await c.complete(ask(model, [user("just talk")]));
      expect(plain.content).toEqual([{ type: "text", text: "just talk" }]);
    });
  });
}

describe("anthropic thinking", () => {
  const model = "claude-thinker";
  test("the signature arrives in a signature_delta and goes back unchanged with the turn", async () => {
    fake.enqueue(model, callTools([{ id: "toolu_1", name: "bash", input: { command: "date" } }], { thinking: "Check the date.", signature: "EqQBCkYIARgCKkD+/signed==" }));
    const c = await createModel(`anthropic/${model}`, creds);
    const thoughts: string[] = [];
    const first = await c.complete(ask(model, [user("what day is it?")]), { onThinking: (d) => void thoughts.push(d) });
    expect(first.content).toEqual([
      { type: "thinking", thinking: "Check the date.", signature: "EqQBCkYIARgCKkD+/signed==" },
      { type: "tool_use", id: "toolu_1", name: "bash", input: { command: "date" } },
    ]);
    expect(thoughts.join("")).toBe("Check the date.");

    await c.complete(ask(model, [user("what day is it?"), { role: "assistant", content: first.content }, { role: "user", content: [{ type: "tool_result", toolUseId: "toolu_1", content: "Fri" }] }]));
    expect(fake.requests[1]!.body.messages[1]).toEqual({
      role: "assistant",
      content: [
        { type: "thinking", thinking: "Check the date.", signature: "EqQBCkYIARgCKkD+/signed==" },
        { type: "tool_use", id: "toolu_1", name: "bash", input: { command: "date" } },
      ],
    });
  });

  test("unsigned thinking (from another provider) is not sent; an empty turn is sent as a placeholder", async () => {
    const c = await createModel(`anthropic/${model}`, creds);
    await c.complete(
      ask(model, [
        user("a"),
        { role: "assistant", content: [{ type: "thinking", thinking: "from openai" }, { type: "text", text: "b" }] },
        user("c"),
        { role: "assistant", content: [{ type: "thinking", thinking: "only this" }] },
        user("d"),
      ]),
    );
    const msgs = fake.requests[0]!.body.messages;
    expect(msgs[1]).toEqual({ role: "assistant", content: [{ type: "text", text: "b" }] });
    expect(msgs[3].content).toHaveLength(1);
    expect(msgs[3].content[0].type).toBe("text");
  });
});

describe("openai reasoning", () => {
  test("reasoning_content comes before text and calls, and is never sent back", async () => {
    const model = "deepseek-r";
    fake.enqueue(model, callTools([{ id: "c9", name: "bash", input: { command: "ls" } }], { thinking: "think first", text: "ok" }));
    const c = await createModel(`openai/${model}`, creds);
    const res = await c.complete(ask(model, [user("go")]));
    expect(res.content).toEqual([
      { type: "thinking", thinking: "think first" },
      { type: "text", text: "ok" },
      { type: "tool_use", id: "c9", name: "bash", input: { command: "ls" } },
    ]);
    await c.complete(ask(model, [user("go"), { role: "assistant", content: res.content }, { role: "user", content: [{ type: "tool_result", toolUseId: "c9", content: "x" }] }]));
    expect(JSON.stringify(fake.requests[1]!.body.messages)).not.toContain("think first");
  });
});

describe("the fake's non-streaming replies", () => {
  const post = (path: string, body: unknown) =>
    fetch(`${fake.url}${path}`, { method: "POST", headers: { "content-type": "application/json", authorization: "Bearer k" }, body: JSON.stringify(body) }).then((r) => r.json() as Promise<any>);

  test("carry tool calls in each provider's format", async () => {
    fake.enqueue("m", callTools([{ id: "a1", name: "bash", input: { command: "ls" } }], { text: "sure" }));
    fake.enqueue("m", callTools([{ id: "b1", name: "bash", input: { command: "ls" } }]));
    const a = await post("/v1/messages", { model: "m", max_tokens: 5, messages: [{ role: "user", content: "q" }] });
    expect(a).toMatchObject({
      content: [
        { type: "text", text: "sure" },
        { type: "tool_use", id: "a1", name: "bash", input: { command: "ls" } },
      ],
      stop_reason: "tool_use",
    });
    expect(a.content[1]).toEqual({ type: "tool_use", id: "a1", name: "bash", input: { command: "ls" } });
    const o = await post("/v1/chat/completions", { model: "m", messages: [{ role: "user", content: "q" }] });
    expect(o.choices[0]).toMatchObject({
      message: { role: "assistant", content: null, tool_calls: [{ id: "b1", type: "function", function: { name: "bash", arguments: '{"command":"ls"}' } }] },
      finish_reason: "tool_calls",
    });
  });

  test("by default echo the last tool results", async () => {
    const a = await post("/v1/messages", {
      model: "m",
      max_tokens: 5,
      messages: [
        { role: "user", content: "q" },
        { role: "assistant", content: [{ type: "tool_use", id: "x", name: "bash", input: {} }] },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "x", content: [{ type: "text", text: "out" }] }] },
      ],
    });
    expect(a.content).toEqual([{ type: "text", text: "out" }]);
  });
});
