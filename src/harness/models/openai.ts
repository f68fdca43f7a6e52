/** `openai/<model>`: Chat Completions through the openai SDK, streamed; works with OpenAI-compatible servers (Ollama, vLLM). */
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from "openai";
import { toModelError, type ApiErrorInfo } from "./errors";
import { modelFetch } from "./proxy";
import { ModelError, type ModelClient, type ModelCredentials, type ModelRequest, type ModelResult, type ModelStream } from "./types";

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
      const out: ModelResult = { text: "", stopReason: "" };
      let thinking = "";
      try {
        const chunks = await client.chat.completions.create(
          {
            model: name,
            messages: [
              ...(req.system ? [{ role: "system" as const, content: req.system }] : []),
              ...req.messages.map((m) => ({ role: m.role, content: m.content })),
            ],
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
            out.text += delta.content;
            stream?.onText?.(delta.content);
          }
          if (choice.finish_reason) out.stopReason = STOP_REASONS[choice.finish_reason] ?? choice.finish_reason;
        }
      } catch (err) {
        throw toModelError(err, { id, apiKey, baseURL: client.baseURL, signal: req.signal }, SDK_ERRORS, describe);
      }
      // The SDK ends the iteration quietly when the request is aborted mid-stream.
      if (req.signal?.aborted) throw new ModelError(`${id}: aborted`, false);
      if (!out.stopReason) throw new ModelError(`${id}: the response stream ended without a finish_reason`, true);
      if (thinking) out.thinking = thinking;
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
