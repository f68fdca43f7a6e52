// Covers src/harness/models (anthropic, openai, pai/echo, createModel) against test/fakes/model-server.ts over real HTTP.
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { createModel } from "../../src/harness/models";
import { createEchoModel } from "../../src/harness/models/echo";
import { ModelError, textOf, type ChatMessage, type ModelClient, type ModelCredentials, type ModelRequest, type ModelResult } from "../../src/harness/models/types";
import { startFakeProxy } from "../fakes/http-proxy";
import { fail, hang, reply, startModelServer } from "../fakes/model-server";

const fake = startModelServer();
afterAll(() => fake.stop());
beforeEach(() => fake.reset());

const ANTHROPIC_KEY = "sk-ant-test-0123456789";
const OPENAI_KEY = "sk-openai-test-9876543210";
const creds: ModelCredentials = {
  ANTHROPIC_API_KEY: ANTHROPIC_KEY,
  ANTHROPIC_BASE_URL: fake.anthropicBaseUrl,
  OPENAI_API_KEY: OPENAI_KEY,
  OPENAI_BASE_URL: fake.openaiBaseUrl,
};
const msg = (role: ChatMessage["role"], text: string): ChatMessage => ({ role, content: [{ type: "text", text }] });
const ask = (text: string, extra: Partial<ModelRequest> = {}): ModelRequest => ({ model: "", messages: [msg("user", text)], ...extra });
/** A result's text, and its thinking (undefined when it has none), each joined. */
const textIn = (res: ModelResult) => textOf(res.content);
const thinkingIn = (res: ModelResult) => {
  const t = res.content.filter((b) => b.type === "thinking");
  return t.length ? t.map((b) => b.thinking).join("") : undefined;
};

/** Records streamed deltas. */
function recorder() {
  const text: string[] = [];
  const thinking: string[] = [];
  return { text, thinking, onText: (d: string) => void text.push(d), onThinking: (d: string) => void thinking.push(d) };
}

async function failure(p: Promise<unknown>): Promise<ModelError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ModelError);
    return e as ModelError;
  }
  throw new Error("expected the call to fail");
}

/** A loopback URL nothing listens on. */
async function closedPortUrl(): Promise<string> {
  const s = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
  const url = `http://127.0.0.1:${s.port}`;
  await s.stop(true);
  return url;
}

/** A raw TCP server that answers 200 with the start of an SSE stream, then resets the connection. */
function droppingServer() {
  const start = [
    `event: message_start\ndata: ${JSON.stringify({ type: "message_start", message: { id: "m", type: "message", role: "assistant", model: "m", content: [], stop_reason: null, usage: { input_tokens: 1, output_tokens: 1 } } })}\n\n`,
    `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta: { content: "partial" }, finish_reason: null }] })}\n\n`,
  ].join("");
  const chunk = `${Buffer.byteLength(start).toString(16)}\r\n${start}\r\n`;
  return Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(sock) {
        sock.write(`HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n${chunk}`);
        setTimeout(() => sock.end(), 20);
      },
    },
  });
}

async function eventually(cond: () => boolean, ms = 3000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await Bun.sleep(10);
  }
}

const providers = [
  { provider: "anthropic", model: "claude-sonnet-4-6", keyVar: "ANTHROPIC_API_KEY", key: ANTHROPIC_KEY },
  { provider: "openai", model: "gpt-5-mini", keyVar: "OPENAI_API_KEY", key: OPENAI_KEY },
] as const;

for (const { provider, model, keyVar, key } of providers) {
  describe(`${provider} client`, () => {
    const id = `${provider}/${model}`;
    const client = (c: ModelCredentials = creds): Promise<ModelClient> => createModel(id, c);

    test("streams text deltas whose concatenation is the result", async () => {
      fake.enqueue(model, reply("Hello there, this reply arrives in several deltas."));
      const rec = recorder();
      const res = await (await client()).complete(ask("hi", { model }), rec);
      expect(textIn(res)).toBe("Hello there, this reply arrives in several deltas.");
      expect(rec.text.length).toBeGreaterThan(3);
      expect(rec.text.join("")).toBe(textIn(res));
      expect(res.stopReason).toBe("end_turn");
      expect(thinkingIn(res)).toBeUndefined();
      expect(res.usage?.inputTokens).toBeGreaterThan(0);
      expect(res.usage?.outputTokens).toBeGreaterThan(0);
      expect(fake.requests[0]!.stream).toBe(true);
    });

    test("sends the model, system prompt, messages and key", async () => {
      const c = await client();
      expect(c.id).toBe(id);
      await c.complete({
        model,
        system: "You are terse.",
        messages: [
          msg("user", "first"),
          msg("assistant", "ok"),
          msg("user", "second"),
        ],
      });
      const r = fake.requests[0]!;
      expect(r.provider).toBe(provider);
      expect(r.model).toBe(model);
      expect(r.system).toBe("You are terse.");
      expect(r.messages).toEqual([
        { role: "user", content: "first" },
        { role: "assistant", content: "ok" },
        { role: "user", content: "second" },
      ]);
      expect(r.apiKey).toBe(key);
      if (provider === "anthropic") {
        expect(r.path).toBe("/v1/messages");
        // @anthropic-ai/sdk 1.x sends the key as a bearer token, not the older x-api-key header.
        expect(r.headers.authorization).toBe(`Bearer ${key}`);
        expect(r.headers["x-api-key"]).toBeUndefined();
        expect(r.headers["anthropic-version"]).toBeTruthy();
        expect(r.body.system).toBe("You are terse.");
        expect(r.body.max_tokens).toBe(4096);
      } else {
        expect(r.path).toBe("/v1/chat/completions");
        expect(r.headers.authorization).toBe(`Bearer ${key}`);
        expect(r.body.messages[0]).toEqual({ role: "system", content: "You are terse." });
        expect(r.body.stream_options).toEqual({ include_usage: true });
        expect(r.body.max_tokens).toBeUndefined();
      }
    });

    test("omits an empty system prompt and passes maxTokens", async () => {
      await (await client()).complete(ask("hi", { model, maxTokens: 77 }));
      const r = fake.requests[0]!;
      expect(r.system).toBeUndefined();
      expect(r.body.max_tokens).toBe(77);
    });

    test("streams thinking separately from text", async () => {
      fake.enqueue(model, reply("The answer is 4.", { thinking: "Two plus two, carry nothing." }));
      const rec = recorder();
      const res = await (await client()).complete(ask("2+2?", { model }), rec);
      expect(textIn(res)).toBe("The answer is 4.");
      expect(thinkingIn(res)).toBe("Two plus two, carry nothing.");
      expect(rec.thinking.length).toBeGreaterThan(1);
      expect(rec.thinking.join("")).toBe(thinkingIn(res)!);
      expect(rec.text.join("")).toBe(textIn(res));
    });

    const stopReasons =
      provider === "anthropic" ?
        [["end_turn", "end_turn"], ["max_tokens", "max_tokens"], ["tool_use", "tool_use"], ["stop_sequence", "stop_sequence"], ["refusal", "refusal"]]
      : [["stop", "end_turn"], ["length", "max_tokens"], ["tool_calls", "tool_use"], ["content_filter", "content_filter"]];
    test.each(stopReasons)("stop reason %s is reported as %s", async (raw, normalised) => {
      fake.enqueue(model, reply("cut", { stopReason: raw }));
      const res = await (await client()).complete(ask("hi", { model }));
      expect(res.stopReason).toBe(normalised);
    });

    const errors: [number, boolean, string][] =
      provider === "anthropic" ?
        [
          [529, true, "529 overloaded_error: Overloaded"],
          [429, true, "429 rate_limit_error: Number of request tokens"],
          [503, true, "503 api_error: Service unavailable"],
          [500, true, "500 api_error: Internal server error"],
          [400, false, "400 invalid_request_error: Invalid request"],
          [401, false, "401 authentication_error: invalid x-api-key"],
          [403, false, "403 permission_error"],
          [404, false, "404 not_found_error: model: not found"],
        ]
      : [
          [429, true, "429 rate_limit_exceeded: Rate limit reached"],
          [503, true, "503 server_error: The engine is currently overloaded"],
          [500, true, "500 server_error"],
          [400, false, "400 invalid_request_error: Invalid request"],
          [401, false, "401 invalid_api_key: Incorrect API key provided."],
          [404, false, "404 model_not_found: The model does not exist"],
        ];
    test.each(errors)("HTTP %d maps to fallback=%p", async (status, fallback, text) => {
      fake.enqueue(model, fail(status));
      const err = await failure((await client()).complete(ask("hi", { model })));
      expect(err.fallback).toBe(fallback);
      expect(err.status).toBe(status);
      expect(err.message).toStartWith(`${id}: ${text}`);
      expect(fake.requests).toHaveLength(1); // no SDK retries
    });

    test("an error event in the middle of the stream falls back", async () => {
      const type = provider === "anthropic" ? "overloaded_error" : "server_error";
      fake.enqueue(model, fail(provider === "anthropic" ? 529 : 503, { text: "partial answer", streamError: true }));
      const rec = recorder();
      const err = await failure((await client()).complete(ask("hi", { model }), rec));
      expect(rec.text.join("")).toBe("partial answer");
      expect(err.fallback).toBe(true);
      expect(err.message).toContain(`${id}: ${type}`);
    });

    test("a stream that ends early falls back", async () => {
      fake.enqueue(model, reply("half an answer", { truncate: true }));
      const err = await failure((await client()).complete(ask("hi", { model })));
      expect(err.fallback).toBe(true);
      expect(err.message).toStartWith(`${id}: the response stream ended`);
    });

    test("a connection dropped in the middle of the stream falls back", async () => {
      const srv = droppingServer();
      try {
        const url = `http://127.0.0.1:${srv.port}`;
        const base = provider === "anthropic" ? { ANTHROPIC_BASE_URL: url } : { OPENAI_BASE_URL: `${url}/v1` };
        const err = await failure((await client({ ...creds, ...base })).complete(ask("hi", { model })));
        expect(err.fallback).toBe(true);
        expect(err.message).toStartWith(`${id}: connection to ${url}`);
        expect(err.message).toContain("failed while streaming");
      } finally {
        srv.stop(true);
      }
    });

    test("error messages never contain the API key", async () => {
      fake.enqueue(model, fail(401, { errorMessage: `bad key ${key}` }));
      const err = await failure((await client()).complete(ask("hi", { model })));
      expect(err.message).not.toContain(key);
      expect(err.message).toContain("bad key ***");
    });

    test("a missing key fails with the variable's name before any request, and lets the next model try", async () => {
      for (const missing of [undefined, ""]) {
        const c = await client({ ...creds, [keyVar]: missing });
        const err = await failure(c.complete(ask("hi", { model })));
        expect(err.message).toBe(`${id}: ${keyVar} is not set`);
        expect(err.fallback).toBe(true);
      }
      expect(fake.requests).toHaveLength(0);
    });

    test("abort while waiting for the response", async () => {
      fake.enqueue(model, hang);
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 100);
      const started = Date.now();
      const err = await failure((await client()).complete(ask("hi", { model, signal: ac.signal })));
      expect(Date.now() - started).toBeLessThan(2000);
      expect(err.message).toBe(`${id}: aborted`);
      expect(err.fallback).toBe(false);
      await eventually(() => fake.requests[0]?.disconnected === true);
    });

    test("abort in the middle of the stream", async () => {
      fake.enqueue(model, reply("one two three four five six seven eight nine ten", { chunkDelayMs: 50 }));
      const ac = new AbortController();
      const rec = recorder();
      const err = await failure(
        (await client()).complete(ask("hi", { model, signal: ac.signal }), {
          onText: (d) => {
            rec.onText(d);
            ac.abort();
          },
        }),
      );
      expect(err.message).toBe(`${id}: aborted`);
      expect(rec.text).toHaveLength(1);
      await eventually(() => fake.requests[0]?.disconnected === true);
    });

    test("an invalid base URL fails without a request", async () => {
      const base = provider === "anthropic" ? { ANTHROPIC_BASE_URL: "localhost:1234" } : { OPENAI_BASE_URL: "not a url" };
      const err = await failure((await client({ ...creds, ...base })).complete(ask("hi", { model })));
      expect(err.message).toBe(`${id}: ${provider.toUpperCase()}_BASE_URL is not an http(s) URL`);
      expect(err.fallback).toBe(false);
    });

    test("an error thrown by a stream callback is reported, not retried", async () => {
      const err = await failure(
        (await client()).complete(ask("hi", { model }), {
          onText: () => {
            throw new Error("callback broke");
          },
        }),
      );
      expect(err.message).toBe(`${id}: callback broke`);
      expect(err.fallback).toBe(false);
      expect((err.cause as Error).message).toBe("callback broke");
    });

    test("an already aborted signal makes no request", async () => {
      const err = await failure((await client()).complete(ask("hi", { model, signal: AbortSignal.abort() })));
      expect(err.message).toBe(`${id}: aborted`);
      expect(fake.requests).toHaveLength(0);
    });

    test("connection refused falls back", async () => {
      const url = await closedPortUrl();
      const base = provider === "anthropic" ? { ANTHROPIC_BASE_URL: url } : { OPENAI_BASE_URL: `${url}/v1` };
      const err = await failure((await client({ ...creds, ...base })).complete(ask("hi", { model })));
      expect(err.fallback).toBe(true);
      expect(err.message).toStartWith(`${id}: connection to ${url}`);
    });

    // The harness's environment holds the agent's spec.env and a caller's env: a proxy named there
    // must never see the API key. Only the operator's settings, passed in the credentials, count.
    test("ignores proxy variables in its own environment and uses the operator's proxy from the credentials", async () => {
      const attacker = startFakeProxy();
      const operator = startFakeProxy();
      const names = ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"];
      const saved = names.map((k) => [k, process.env[k]] as const);
      try {
        for (const k of ["HTTP_PROXY", "http_proxy", "ALL_PROXY"]) process.env[k] = attacker.url;
        const direct = await (await client()).complete(ask("straight there", { model }));
        expect(textIn(direct)).toBe("straight there");
        expect(fake.requests).toHaveLength(1);
        expect(attacker.requests).toEqual([]);

        process.env.NO_PROXY = "*";
        const proxied = await (await client({ ...creds, proxy: { HTTP_PROXY: operator.url } })).complete(ask("via the operator", { model }));
        expect(textIn(proxied)).toBe("via the operator");
        expect(operator.requests.map((r) => [r.method, new URL(r.url).pathname, r.headers.authorization])).toEqual([
          ["POST", provider === "anthropic" ? "/v1/messages" : "/v1/chat/completions", `Bearer ${key}`],
        ]);
        expect(attacker.requests).toEqual([]);
      } finally {
        for (const [k, v] of saved) v === undefined ? delete process.env[k] : (process.env[k] = v);
        await attacker.stop();
        await operator.stop();
      }
    });
  });
}

describe("pai/echo", () => {
  test("replies with the last user message, streamed", async () => {
    const c = await createModel("pai/echo", {});
    expect(c.id).toBe("pai/echo");
    const rec = recorder();
    const res = await c.complete(
      { model: "echo", system: "ignored", messages: [msg("user", "first"), msg("assistant", "x"), msg("user", "say this")] },
      rec,
    );
    expect(res).toMatchObject({ content: [{ type: "text", text: "say this" }], stopReason: "end_turn" });
    expect(rec.text).toEqual(["say this"]);
  });

  test("with no user message it replies with nothing", async () => {
    const rec = recorder();
    const res = await createEchoModel().complete({ model: "echo", messages: [] }, rec);
    expect(textIn(res)).toBe("");
    expect(rec.text).toEqual([]);
  });

  test("respects an aborted signal", async () => {
    const err = await failure(createEchoModel().complete(ask("x", { signal: AbortSignal.abort() })));
    expect(err.fallback).toBe(false);
  });
});

describe("createModel", () => {
  test.each(["gemini/pro", "echo", "pai/other", "anthropic/", "/x", ""])("rejects %p", async (id) => {
    const err = await failure(createModel(id, creds));
    expect(err.fallback).toBe(false);
    expect(err.message).toContain("unknown model");
  });

  test("does not load an SDK for pai/echo", async () => {
    const code = `
      const { createModel } = await import("./src/harness/models/index.ts");
      const m = await createModel("pai/echo", {});
      await m.complete({ model: "echo", messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }] });
      const loaded = Object.keys(require.cache).filter((k) => k.includes("node_modules"));
      console.log(JSON.stringify(loaded));`;
    const proc = Bun.spawnSync([process.execPath, "-e", code], { cwd: `${import.meta.dir}/../..` });
    expect(proc.stderr.toString()).toBe("");
    expect(JSON.parse(proc.stdout.toString())).toEqual([]);
  });
});

describe("fake model server", () => {
  const post = (path: string, body: unknown, headers: Record<string, string> = { "x-api-key": "k", authorization: "Bearer k" }, signal?: AbortSignal) =>
    fetch(`${fake.url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body), signal });

  test("anthropic non-streaming JSON", async () => {
    fake.enqueue("m", reply("hello", { thinking: "hmm", stopReason: "max_tokens" }));
    const res = await post("/v1/messages", { model: "m", max_tokens: 10, messages: [{ role: "user", content: "q" }] });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      type: "message",
      role: "assistant",
      model: "m",
      content: [{ type: "thinking", thinking: "hmm" }, { type: "text", text: "hello" }],
      stop_reason: "max_tokens",
      usage: { input_tokens: expect.any(Number), output_tokens: expect.any(Number) },
    });
  });

  test("openai non-streaming JSON", async () => {
    fake.script((model) => (model === "o" ? "scripted" : undefined));
    const res = await post("/v1/chat/completions", { model: "o", messages: [{ role: "system", content: "s" }, { role: "user", content: "q" }] });
    expect(await res.json()).toMatchObject({
      object: "chat.completion",
      model: "o",
      choices: [{ index: 0, message: { role: "assistant", content: "scripted" }, finish_reason: "stop" }],
      usage: { prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number) },
    });
    expect(fake.requests[0]).toMatchObject({ provider: "openai", system: "s", messages: [{ role: "user", content: "q" }], apiKey: "k" });
  });

  test("by default it echoes the last user message", async () => {
    const res = await post("/v1/chat/completions", { model: "any", messages: [{ role: "user", content: [{ type: "text", text: "parts" }] }] });
    expect((await res.json()).choices[0].message.content).toBe("parts");
  });

  test("streams the real event sequences", async () => {
    fake.enqueue("m", reply("a b", { thinking: "t" }));
    const a = await (await post("/v1/messages", { model: "m", max_tokens: 5, stream: true, messages: [{ role: "user", content: "q" }] })).text();
    const events = [...a.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
    expect(events).toEqual([
      "message_start",
      "content_block_start", "ping", "content_block_delta", "content_block_delta", "content_block_stop",
      "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
      "message_delta", "message_stop",
    ]);
    const o = await (await post("/v1/chat/completions", { model: "m", stream: true, messages: [{ role: "user", content: "q" }] })).text();
    expect(o.trim().split("\n\n").at(-1)).toBe("data: [DONE]");
    expect(o).toContain('"object":"chat.completion.chunk"');
  });

  test("errors use each provider's body format", async () => {
    fake.enqueue("m", fail(529), fail(429, { errorCode: "insufficient_quota", errorMessage: "quota" }));
    const a = await post("/v1/messages", { model: "m", max_tokens: 5, messages: [] });
    expect(a.status).toBe(529);
    expect(await a.json()).toMatchObject({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } });
    const o = await post("/v1/chat/completions", { model: "m", messages: [] });
    expect(o.status).toBe(429);
    expect(await o.json()).toEqual({ error: { message: "quota", type: "requests", param: null, code: "insufficient_quota" } });
  });

  test("checks the key when given one", async () => {
    const strict = startModelServer({ apiKey: "right" });
    try {
      const res = await fetch(`${strict.url}/v1/messages`, { method: "POST", headers: { "x-api-key": "wrong" }, body: JSON.stringify({ model: "m", messages: [] }) });
      expect(res.status).toBe(401);
      expect((await res.json()).error.type).toBe("authentication_error");
    } finally {
      await strict.stop();
    }
  });

  test("a delayed reply is abandoned when the client disconnects", async () => {
    fake.enqueue("m", reply("late", { delayMs: 10_000 }));
    const started = Date.now();
    await expect(post("/v1/messages", { model: "m", max_tokens: 5, messages: [] }, { "x-api-key": "k" }, AbortSignal.timeout(100))).rejects.toThrow();
    await eventually(() => fake.requests[0]?.disconnected === true);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
