/** `openai/<model>`: Chat Completions through the openai SDK, streamed; works with OpenAI-compatible servers (Ollama, vLLM). */
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from "openai";
import { toModelError, type ApiErrorInfo } from "./errors";
import { modelFetch } from "./proxy";
import type { ChatCompletionMessageParam, ChatCompletionTool } from "openai/resources/chat/completions";
import { ModelError, parseToolInput, textOf, type ChatMessage, type ContentBlock, type ModelClient, type ModelCredentials, type ModelRequest, type ModelResult, type ModelStream, type ToolSpec } from "./types";

/** Error types sent inside a stream (no HTTP status) that are NOT worth trying the next model for. */
const FINAL_TYPES = new Set(["invalid_request_error", "authentication_error", "permission_error", "not_found_error"]);
const STOP_REASONS: Record<string, string> = { stop: "end_turn", length: "max_tokens", tool_calls: "tool_use", function_call: "tool_use" };

/** Streamed delta fields some OpenAI-compatible servers (vLLM, DeepSeek, Ollama) use for reasoning text. */
type ReasoningDelta = { reasoning_content?: unknown; reasoning?: unknown };

export function createOpenAIModel(model: string, creds: ModelCredentials): ModelClient {
  let client: OpenAI | undefined;
  return {
    id: `openai/${model}`,
    async complete(req: ModelRequest, stream?: ModelStream): Promise<ModelResult> {
      const name = req.model || model;
      const id = `openai/${name}`;
      const apiKey = creds.OPENAI_API_KEY;
      // A missing key lets the next model in spec.models try (the last one ends the session with this message).
      if (!apiKey) throw new ModelError(`${id}: OPENAI_API_KEY is not set`, true);
      const baseURL = creds.OPENAI_BASE_URL;
      if (baseURL && !/^https?:$/.test(URL.parse(baseURL)?.protocol ?? "")) throw new ModelError(`${id}: OPENAI_BASE_URL is not an http(s) URL`, false);
      // baseURL null (not undefined) so the SDK does not read OPENAI_BASE_URL from the environment; the
      // fetch connects as the operator's proxy settings say, never as this process's environment does.
      client ??= new OpenAI({ apiKey, baseURL: baseURL || null, maxRetries: 0, fetch: modelFetch(creds.proxy) });
      // api.openai.com rejects max_tokens for newer models; compatible servers mostly only know max_tokens.
      const official = new URL(client.baseURL).hostname === "api.openai.com";
      const limit = req.maxTokens === undefined ? {} : official ? { max_completion_tokens: req.maxTokens } : { max_tokens: req.maxTokens };
      const out: ModelResult = { content: [], stopReason: "" };
      let thinking = "";
      let text = "";
      // Tool calls by their stream index: id and name come first, the arguments as JSON text in pieces.
      const calls: { id: string; name: string; args: string }[] = [];
      try {
        const chunks = await client.chat.completions.create(
          {
            model: name,
            messages: [...(req.system ? [{ role: "system" as const, content: req.system }] : []), ...req.messages.flatMap(toOpenAIMessages)],
            ...(req.tools?.length ? { tools: req.tools.map(toOpenAITool) } : {}),
            stream: true,
            stream_options: { include_usage: true },
            ...limit,
          },
          { signal: req.signal },
        );
        for await (const chunk of chunks) {
          if (chunk.usage) out.usage = { inputTokens: chunk.usage.prompt_tokens, outputTokens: chunk.usage.completion_tokens };
          const choice = chunk.choices?.[0];
          if (!choice) continue;
          const delta = choice.delta ?? {};
          const reasoning = (delta as ReasoningDelta).reasoning_content ?? (delta as ReasoningDelta).reasoning;
          if (typeof reasoning === "string" && reasoning) {
            thinking += reasoning;
            stream?.onThinking?.(reasoning);
          }
          if (delta.content) {
            text += delta.content;
            stream?.onText?.(delta.content);
          }
          for (const tc of delta.tool_calls ?? []) {
            const call = (calls[tc.index] ??= { id: "", name: "", args: "" });
            if (tc.id) call.id = tc.id;
            if (tc.function?.name) call.name += tc.function.name;
            if (tc.function?.arguments) call.args += tc.function.arguments;
          }
          if (choice.finish_reason) out.stopReason = STOP_REASONS[choice.finish_reason] ?? choice.finish_reason;
        }
      } catch (err) {
        throw toModelError(err, { id, apiKey, baseURL: client.baseURL, signal: req.signal }, SDK_ERRORS, describe);
      }
      // The SDK ends the iteration quietly when the request is aborted mid-stream.
      if (req.signal?.aborted) throw new ModelError(`${id}: aborted`, false);
      if (!out.stopReason) throw new ModelError(`${id}: the response stream ended without a finish_reason`, true);
      const content: ContentBlock[] = [];
      if (thinking) content.push({ type: "thinking", thinking });
      if (text) content.push({ type: "text", text });
      calls.forEach((c, i) => {
        if (!c) return;
        if (!c.name) throw new ModelError(`${id}: a tool call came without a function name`, true);
        // Some compatible servers send no id: make one that no other turn uses (a later fallback to
        // Anthropic refuses repeated tool_use ids).
        content.push({ type: "tool_use", id: c.id || `call_${crypto.randomUUID().replaceAll("-", "")}_${i}`, name: c.name, input: parseToolInput(c.args, id, c.name) });
      });
      out.content = content;
      return out;
    },
  };
}

const SDK_ERRORS = { UserAbort: APIUserAbortError, ConnectionTimeout: APIConnectionTimeoutError, Connection: APIConnectionError, Api: APIError };

function describe(e: Error): ApiErrorInfo {
  const err = e as APIError;
  const body = err.error as { message?: unknown } | undefined;
  return {
    status: err.status as number | undefined,
    kind: err.code ?? err.type,
    detail: typeof body?.message === "string" ? body.message : err.message.replace(/^\d+ /, ""),
    fallbackWithoutStatus: !FINAL_TYPES.has(err.type ?? ""),
  };
}

function toOpenAITool(t: ToolSpec): ChatCompletionTool {
  return { type: "function", function: { name: t.name, description: t.description, parameters: t.inputSchema } };
}

/** One of our messages as Chat Completions messages: tool results become `role: "tool"` messages. */
function toOpenAIMessages(m: ChatMessage): ChatCompletionMessageParam[] {
  if (m.role === "assistant") {
    const calls = m.content.flatMap((b) =>
      b.type === "tool_use" ? [{ id: b.id, type: "function" as const, function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } }] : [],
    );
    const text = textOf(m.content);
    return [{ role: "assistant", content: text || (calls.length ? null : ""), ...(calls.length ? { tool_calls: calls } : {}) }];
  }
  const out: ChatCompletionMessageParam[] = [];
  // Chat Completions has no error flag on a tool's answer: a failed call says so in its text.
  for (const b of m.content) if (b.type === "tool_result") out.push({ role: "tool", tool_call_id: b.toolUseId, content: b.isError ? `error: ${b.content}` : b.content });
  const text = textOf(m.content);
  if (text || !out.length) out.push({ role: "user", content: text });
  return out;
}
