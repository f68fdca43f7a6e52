/**
 * A fake model server on 127.0.0.1 speaking the real Anthropic Messages and OpenAI Chat Completions
 * wire formats (streamed and not), tool calls included, scriptable per test.
 */

export type Provider = "anthropic" | "openai";

/** A tool call the fake makes. */
export interface FakeToolCall {
  /** Default: a fresh `toolu_fake_<n>` (Anthropic) or `call_fake_<n>` (OpenAI). */
  id?: string;
  name: string;
  input: unknown;
  /** The JSON text sent for the input instead of JSON.stringify(input) (e.g. invalid JSON). */
  json?: string;
}

/** What the fake does for one request. A plain string is shorthand for `{ text }`. */
export interface FakeReply {
  /** Reply text; streamed word by word. Default: the last user message's text and tool results (none with toolCalls). */
  text?: string;
  /** Thinking text: an Anthropic `thinking` block, or OpenAI-compatible `reasoning_content`. */
  thinking?: string;
  /** The Anthropic thinking block's signature (sent in a `signature_delta`). Default `fake-signature`. */
  signature?: string;
  /**
   * Tool calls after the text (which then defaults to none instead of the echo). Their input is
   * streamed as JSON text split over several deltas, as the real APIs do.
   */
  toolCalls?: FakeToolCall[];
  /** Provider-native stop reason. Default `end_turn`/`stop`, or `tool_use`/`tool_calls` with toolCalls. */
  stopReason?: string;
  /** Wait this long before answering (cut short if the client disconnects). */
  delayMs?: number;
  /** Wait this long between streamed events. */
  chunkDelayMs?: number;
  /** Answer with this HTTP status and the provider's error body. */
  status?: number;
  /** Error `type` (Anthropic `error.type`, OpenAI `error.type`); defaults by status. */
  errorType?: string;
  /** OpenAI `error.code`; defaults by status. */
  errorCode?: string | null;
  errorMessage?: string;
  /** With `status`: on a streaming request, answer 200, stream `text`, then send the error as an event. */
  streamError?: boolean;
  /** On a streaming request, end the stream cleanly right after the text, without the final events. */
  truncate?: boolean;
  /** Never answer; the request stays open until the client disconnects or the fake stops. */
  hang?: boolean;
}
export type FakeBehaviour = FakeReply | string;
export type FakeScript = (model: string, req: RecordedRequest) => FakeBehaviour | undefined;

export interface RecordedRequest {
  provider: Provider | "unknown";
  method: string;
  path: string;
  /** Header names in lower case. */
  headers: Record<string, string>;
  /** The parsed JSON body (null if it was not JSON). */
  body: any;
  model?: string;
  stream: boolean;
  /** The API key sent as `Authorization: Bearer` (both SDKs), or Anthropic's older `x-api-key` header. */
  apiKey?: string;
  /** The system prompt: Anthropic top-level `system`, or OpenAI `system`/`developer` messages joined. */
  system?: string;
  /** Non-system messages with their content flattened to text (OpenAI `tool` messages keep their role). */
  messages: { role: string; content: string }[];
  /**
   * The same conversation block by block, in one shape for both providers: OpenAI assistant
   * `tool_calls` become tool_use blocks, and runs of `role: "tool"` messages one user message of
   * tool_result blocks, as Anthropic has them. The raw form is in `body.messages`.
   */
  conversation: RecordedMessage[];
  /** The tools offered, in one shape for both providers (raw in `body.tools`). */
  tools: RecordedTool[];
  /** True once the client went away before the response was complete. */
  disconnected: boolean;
}

export type RecordedBlock =
  | { type: "text"; text: string }
  | { type: "thinking"; thinking: string; signature?: string }
  /** `input`: the parsed input (OpenAI arguments that are not JSON stay a string). */
  | { type: "tool_use"; id: string; name: string; input: unknown }
  | { type: "tool_result"; toolUseId: string; content: string; isError: boolean };

export interface RecordedMessage {
  role: string;
  content: RecordedBlock[];
}

export interface RecordedTool {
  name: string;
  description?: string;
  inputSchema: unknown;
}

export interface FakeModelServer {
  url: string;
  /** For ANTHROPIC_BASE_URL (the SDK appends `/v1/messages`). */
  anthropicBaseUrl: string;
  /** For OPENAI_BASE_URL (the SDK appends `/chat/completions`). */
  openaiBaseUrl: string;
  requests: RecordedRequest[];
  /** Requests for one model name. */
  requestsFor(model: string): RecordedRequest[];
  /** Replies used first, in order, for requests naming `model`. */
  enqueue(model: string, ...behaviours: FakeBehaviour[]): void;
  /** Decides replies once a model's queue is empty; return undefined for the default (echo the last user message). */
  script(fn: FakeScript | undefined): void;
  /** Clears queues, script and recorded requests. */
  reset(): void;
  stop(): Promise<void>;
}

export const reply = (text: string, opts: Omit<FakeReply, "text"> = {}): FakeReply => ({ text, ...opts });
export const fail = (status: number, opts: Omit<FakeReply, "status"> = {}): FakeReply => ({ status, ...opts });
export const hang: FakeReply = { hang: true };
export const callTools = (toolCalls: FakeToolCall[], opts: Omit<FakeReply, "toolCalls"> = {}): FakeReply => ({ toolCalls, ...opts });

/** The last message of a request, when it is the user's turn made of tool results only. */
export function toolResultsOf(req: RecordedRequest): Extract<RecordedBlock, { type: "tool_result" }>[] | undefined {
  const last = req.conversation.at(-1);
  if (last?.role !== "user" || !last.content.length) return undefined;
  const results = last.content.filter((b) => b.type === "tool_result");
  return results.length === last.content.length ? results : undefined;
}

/** The default reply: the last user message's text and tool results, flattened. */
function echoOf(req: RecordedRequest): string {
  const last = req.conversation.findLast((m) => m.role === "user");
  return last ? last.content.map((b) => (b.type === "text" ? b.text : b.type === "tool_result" ? b.content : "")).join("") : "";
}

/** The text of the last user message that is not made of tool results. */
export function lastUserText(req: RecordedRequest): string {
  const m = req.conversation.findLast((m) => m.role === "user" && m.content.some((b) => b.type === "text"));
  return m ? m.content.map((b) => (b.type === "text" ? b.text : "")).join("") : "";
}

export interface ToolScriptOptions {
  /** The tool to call. Default `bash`. */
  tool?: string;
  /** The input field the command goes in. Default `command`. */
  field?: string;
  /** Only answer for these models (others get undefined, i.e. the default). Default: every model. */
  models?: string[];
}

/**
 * A script for a tool-using agent, the same for both providers:
 * - the last message is tool results → the text `tool said: <output>` (each result's output with
 *   trailing whitespace trimmed, several joined by newlines; an error result too);
 * - else each line `run: <command>` of the last user text → a call of `bash` with `{command}`, all
 *   of them in one turn;
 * - else undefined: the default reply (the echo), or whatever the caller combines it with.
 */
export function toolScript(opts: ToolScriptOptions = {}): FakeScript {
  const tool = opts.tool ?? "bash";
  const field = opts.field ?? "command";
  return (model, req) => {
    if (opts.models && !opts.models.includes(model)) return undefined;
    const results = toolResultsOf(req);
    if (results) return { text: results.map((r) => `tool said: ${r.content.trimEnd()}`).join("\n") };
    const commands = [...lastUserText(req).matchAll(/^run: (.+)$/gm)].map((m) => m[1]!.trim());
    if (commands.length) return { toolCalls: commands.map((command) => ({ name: tool, input: { [field]: command } })) };
    return undefined;
  };
}

const ANTHROPIC_ERRORS: Record<number, [string, string]> = {
  400: ["invalid_request_error", "Invalid request"],
  401: ["authentication_error", "invalid x-api-key"],
  403: ["permission_error", "Your API key does not have permission to use the specified resource."],
  404: ["not_found_error", "model: not found"],
  413: ["request_too_large", "Request exceeds the maximum allowed number of bytes."],
  429: ["rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"],
  500: ["api_error", "Internal server error"],
  503: ["api_error", "Service unavailable"],
  504: ["timeout_error", "Request timed out"],
  529: ["overloaded_error", "Overloaded"],
};
const OPENAI_ERRORS: Record<number, [string, string | null, string]> = {
  400: ["invalid_request_error", null, "Invalid request"],
  401: ["invalid_request_error", "invalid_api_key", "Incorrect API key provided."],
  403: ["invalid_request_error", "unsupported_country_region_territory", "Country, region, or territory not supported"],
  404: ["invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."],
  429: ["requests", "rate_limit_exceeded", "Rate limit reached for requests"],
  500: ["server_error", null, "The server had an error while processing your request."],
  503: ["server_error", null, "The engine is currently overloaded, please try again later."],
};

/** Resolves after `ms`, or early when `signal` aborts. */
const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const t = Number.isFinite(ms) ? setTimeout(resolve, ms) : undefined;
    signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });

const textOf = (content: unknown): string =>
  typeof content === "string" ? content
  : Array.isArray(content) ? content.map((b: any) => (typeof b === "string" ? b : (b?.text ?? ""))).join("")
  : "";

/** A tool result's content (a string or text blocks) as text. */
const resultText = (content: unknown): string => (typeof content === "string" ? content : textOf(content));

function anthropicBlocks(content: unknown): RecordedBlock[] {
  if (typeof content === "string") return [{ type: "text", text: content }];
  if (!Array.isArray(content)) return [];
  return content.map((b: any): RecordedBlock => {
    if (b?.type === "thinking") return { type: "thinking", thinking: String(b.thinking ?? ""), ...(b.signature !== undefined ? { signature: b.signature } : {}) };
    if (b?.type === "tool_use") return { type: "tool_use", id: String(b.id), name: String(b.name), input: b.input };
    if (b?.type === "tool_result") return { type: "tool_result", toolUseId: String(b.tool_use_id), content: resultText(b.content), isError: b.is_error === true };
    return { type: "text", text: typeof b === "string" ? b : String(b?.text ?? "") };
  });
}

function parseOr(text: unknown): unknown {
  try {
    return JSON.parse(String(text));
  } catch {
    return text;
  }
}

/** OpenAI messages (system ones already left out) in the Anthropic-like shape of `conversation`. */
function openaiConversation(msgs: any[]): RecordedMessage[] {
  const out: RecordedMessage[] = [];
  for (const m of msgs) {
    if (m?.role === "tool") {
      const block: RecordedBlock = { type: "tool_result", toolUseId: String(m.tool_call_id), content: resultText(m.content), isError: false };
      const prev = out.at(-1);
      if (prev?.role === "user" && prev.content.every((b) => b.type === "tool_result")) prev.content.push(block);
      else out.push({ role: "user", content: [block] });
      continue;
    }
    const content: RecordedBlock[] = [];
    const text = textOf(m?.content);
    if (text) content.push({ type: "text", text });
    for (const c of Array.isArray(m?.tool_calls) ? m.tool_calls : [])
      content.push({ type: "tool_use", id: String(c?.id), name: String(c?.function?.name), input: parseOr(c?.function?.arguments) });
    out.push({ role: String(m?.role), content });
  }
  return out;
}

function recordTools(provider: Provider | "unknown", tools: unknown): RecordedTool[] {
  if (!Array.isArray(tools)) return [];
  return tools.map((t: any) =>
    provider === "openai" ? { name: t?.function?.name, description: t?.function?.description, inputSchema: t?.function?.parameters } : { name: t?.name, description: t?.description, inputSchema: t?.input_schema },
  );
}

/** JSON text in `n` pieces or fewer (at least one, possibly empty), as the APIs stream a tool call's input. */
function pieces(text: string, n = 3): string[] {
  const size = Math.max(1, Math.ceil(text.length / n));
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out.length ? out : [""];
}

const tokens = (s: string) => Math.max(1, Math.ceil(s.length / 4));
const words = (s: string) => s.match(/\s*\S+\s*/g) ?? (s ? [s] : []);
const sse = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });

function record(req: Request, path: string, body: any): RecordedRequest {
  const headers: Record<string, string> = {};
  req.headers.forEach((v, k) => (headers[k] = v));
  const provider = path === "/v1/messages" ? "anthropic" : path === "/v1/chat/completions" ? "openai" : "unknown";
  const msgs: any[] = Array.isArray(body?.messages) ? body.messages : [];
  const sys = provider === "openai" ? msgs.filter((m) => m?.role === "system" || m?.role === "developer").map((m) => textOf(m.content)) : [];
  const rest = msgs.filter((m) => m?.role !== "system" && m?.role !== "developer");
  return {
    provider,
    method: req.method,
    path,
    headers,
    body,
    model: typeof body?.model === "string" ? body.model : undefined,
    stream: body?.stream === true,
    apiKey: (provider === "anthropic" ? headers["x-api-key"] : undefined) ?? headers.authorization?.replace(/^Bearer\s+/i, ""),
    system: provider === "anthropic" ? (body?.system === undefined ? undefined : textOf(body.system)) : sys.length ? sys.join("\n") : undefined,
    messages: rest.map((m) => ({ role: String(m?.role), content: textOf(m?.content) })),
    conversation: provider === "openai" ? openaiConversation(rest) : rest.map((m) => ({ role: String(m?.role), content: anthropicBlocks(m?.content) })),
    tools: recordTools(provider, body?.tools),
    disconnected: false,
  };
}

/** An SSE response that writes `chunks` one by one, `gapMs` apart, and stops when the client goes away. */
function streamOut(rec: RecordedRequest, chunks: string[], gapMs: number, signal: AbortSignal): Response {
  const enc = new TextEncoder();
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      if (i > 0) await sleep(gapMs, signal);
      if (signal.aborted) return void ((rec.disconnected = true), ctrl.close());
      if (i >= chunks.length) return ctrl.close();
      ctrl.enqueue(enc.encode(chunks[i++]));
    },
    cancel() {
      rec.disconnected = true;
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
}

function anthropicError(status: number, r: FakeReply) {
  const [type, message] = ANTHROPIC_ERRORS[status] ?? ["api_error", `HTTP ${status}`];
  return { type: "error", error: { type: r.errorType ?? type, message: r.errorMessage ?? message }, request_id: "req_fake" };
}

function openaiError(status: number, r: FakeReply) {
  const [type, code, message] = OPENAI_ERRORS[status] ?? ["server_error", null, `HTTP ${status}`];
  return { error: { message: r.errorMessage ?? message, type: r.errorType ?? type, param: null, code: r.errorCode !== undefined ? r.errorCode : code } };
}

/** A tool call with its id and JSON text settled. */
type Call = { id: string; name: string; json: string };

function anthropicReply(rec: RecordedRequest, r: FakeReply, text: string, calls: Call[], signal: AbortSignal): Response {
  const model = rec.model ?? "unknown";
  const stop = r.stopReason ?? (calls.length ? "tool_use" : "end_turn");
  const usage = {
    input_tokens: tokens((rec.system ?? "") + rec.messages.map((m) => m.content).join("")),
    output_tokens: tokens(text + (r.thinking ?? "") + calls.map((c) => c.json).join("")),
  };
  const id = `msg_fake${rec.messages.length}`;
  const blocks: any[] = [];
  if (r.thinking) blocks.push({ type: "thinking", thinking: r.thinking, signature: r.signature ?? "fake-signature" });
  if (text || (!r.thinking && !calls.length)) blocks.push({ type: "text", text });
  for (const c of calls) blocks.push({ type: "tool_use", id: c.id, name: c.name, input: parseOr(c.json), json: c.json });
  if (!rec.stream) {
    const content = blocks.map(({ json: _, ...b }) => b);
    return json({ id, type: "message", role: "assistant", model, content, stop_reason: stop, stop_sequence: null, usage });
  }
  const out = [sse("message_start", { type: "message_start", message: { id, type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 } } })];
  const delta = (index: number, d: object) => out.push(sse("content_block_delta", { type: "content_block_delta", index, delta: d }));
  blocks.forEach((b, index) => {
    const start =
      b.type === "thinking" ? { type: "thinking", thinking: "", signature: "" }
      : b.type === "tool_use" ? { type: "tool_use", id: b.id, name: b.name, input: {} }
      : { type: "text", text: "" };
    out.push(sse("content_block_start", { type: "content_block_start", index, content_block: start }));
    if (index === 0) out.push(sse("ping", { type: "ping" }));
    if (b.type === "thinking") {
      for (const w of words(b.thinking)) delta(index, { type: "thinking_delta", thinking: w });
      delta(index, { type: "signature_delta", signature: b.signature });
    } else if (b.type === "tool_use") {
      // The API starts a tool call's input with an empty piece, then sends the JSON text in parts.
      for (const p of ["", ...pieces(b.json)]) delta(index, { type: "input_json_delta", partial_json: p });
    } else {
      for (const w of words(b.text)) delta(index, { type: "text_delta", text: w });
    }
    out.push(sse("content_block_stop", { type: "content_block_stop", index }));
  });
  if (r.status && r.streamError) {
    out.push(sse("error", anthropicError(r.status, r)));
  } else if (!r.truncate) {
    out.push(sse("message_delta", { type: "message_delta", delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: usage.output_tokens } }));
    out.push(sse("message_stop", { type: "message_stop" }));
  }
  return streamOut(rec, out, r.chunkDelayMs ?? 0, signal);
}

function openaiReply(rec: RecordedRequest, r: FakeReply, text: string, calls: Call[], signal: AbortSignal): Response {
  const model = rec.model ?? "unknown";
  const finish = r.stopReason ?? (calls.length ? "tool_calls" : "stop");
  const prompt = tokens((rec.system ?? "") + rec.messages.map((m) => m.content).join(""));
  const completion = tokens(text + calls.map((c) => c.json).join(""));
  const usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
  const base = { id: "chatcmpl-fake", created: Math.floor(Date.now() / 1000), model, system_fingerprint: "fp_fake" };
  if (!rec.stream) {
    const toolCalls = calls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.json } }));
    const message = {
      role: "assistant",
      content: text || (calls.length ? null : text),
      refusal: null,
      ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
      ...(r.thinking ? { reasoning_content: r.thinking } : {}),
    };
    return json({ ...base, object: "chat.completion", choices: [{ index: 0, message, logprobs: null, finish_reason: finish }], usage });
  }
  const chunk = (delta: object, finish_reason: string | null = null) =>
    `data: ${JSON.stringify({ ...base, object: "chat.completion.chunk", choices: [{ index: 0, delta, logprobs: null, finish_reason }] })}\n\n`;
  const out = [chunk({ role: "assistant", content: "", refusal: null })];
  for (const w of words(r.thinking ?? "")) out.push(chunk({ reasoning_content: w }));
  for (const w of words(text)) out.push(chunk({ content: w }));
  calls.forEach((c, index) => {
    // The first chunk of a call names it; its arguments follow as JSON text in parts.
    out.push(chunk({ tool_calls: [{ index, id: c.id, type: "function", function: { name: c.name, arguments: "" } }] }));
    for (const p of pieces(c.json)) out.push(chunk({ tool_calls: [{ index, function: { arguments: p } }] }));
  });
  if (r.status && r.streamError) {
    out.push(`data: ${JSON.stringify(openaiError(r.status, r))}\n\n`);
  } else if (!r.truncate) {
    out.push(chunk({}, finish));
    if (rec.body?.stream_options?.include_usage) out.push(`data: ${JSON.stringify({ ...base, object: "chat.completion.chunk", choices: [], usage })}\n\n`);
    out.push("data: [DONE]\n\n");
  }
  return streamOut(rec, out, r.chunkDelayMs ?? 0, signal);
}

export interface ModelServerOptions {
  /** When set, requests with another key get 401 in the provider's format. */
  apiKey?: string;
}

export function startModelServer(opts: ModelServerOptions = {}): FakeModelServer {
  const requests: RecordedRequest[] = [];
  const queues = new Map<string, FakeBehaviour[]>();
  let scriptFn: FakeScript | undefined;
  let callCount = 0;
  const stopping = new AbortController();

  async function handle(req: Request): Promise<Response> {
    const path = new URL(req.url).pathname.replace(/\/+$/, "");
    let body: any = null;
    try {
      body = await req.json();
    } catch {}
    const rec = record(req, path, body);
    requests.push(rec);
    const signal = AbortSignal.any([req.signal, stopping.signal]);
    const errorFor = rec.provider === "openai" ? openaiError : anthropicError;

    if (rec.provider === "unknown" || req.method !== "POST") return json(errorFor(404, { errorMessage: `Not found: ${req.method} ${path}` }), 404);
    if (!rec.apiKey || (opts.apiKey !== undefined && rec.apiKey !== opts.apiKey)) return json(errorFor(401, {}), 401);
    if (body === null || !rec.model) return json(errorFor(400, { errorMessage: "body must be JSON with a model" }), 400);

    const queued = queues.get(rec.model)?.shift();
    const b = queued ?? scriptFn?.(rec.model, rec) ?? {};
    const r: FakeReply = typeof b === "string" ? { text: b } : b;

    if (r.hang) {
      await sleep(Number.POSITIVE_INFINITY, signal);
      rec.disconnected = req.signal.aborted;
      return new Response(null, { status: 504 });
    }
    if (r.delayMs) await sleep(r.delayMs, signal);
    if (signal.aborted) {
      rec.disconnected = req.signal.aborted;
      return new Response(null, { status: 499 });
    }
    if (r.status && !(r.streamError && rec.stream)) return json(errorFor(r.status, r), r.status, { "request-id": "req_fake" });
    // With tool calls there is no text unless asked for; otherwise the default is the echo (of tool results too).
    const text = r.text ?? (r.toolCalls?.length ? "" : echoOf(rec));
    const prefix = rec.provider === "anthropic" ? "toolu_fake_" : "call_fake_";
    const calls = (r.toolCalls ?? []).map((c) => ({ id: c.id ?? `${prefix}${++callCount}`, name: c.name, json: c.json ?? JSON.stringify(c.input ?? {}) }));
    return rec.provider === "anthropic" ? anthropicReply(rec, r, text, calls, signal) : openaiReply(rec, r, text, calls, signal);
  }

  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, idleTimeout: 0, fetch: handle });
  const url = `http://127.0.0.1:${server.port}`;
  return {
    url,
    anthropicBaseUrl: url,
    openaiBaseUrl: `${url}/v1`,
    requests,
    requestsFor: (model) => requests.filter((r) => r.model === model),
    enqueue(model, ...behaviours) {
      queues.set(model, [...(queues.get(model) ?? []), ...behaviours]);
    },
    script(fn) {
      scriptFn = fn;
    },
    reset() {
      queues.clear();
      scriptFn = undefined;
      requests.length = 0;
    },
    async stop() {
      stopping.abort();
      await server.stop(true);
    },
  };
}
