/** `anthropic/<model>`: the Messages API through @anthropic-ai/sdk, streamed, with errors mapped to ModelError. */
import Anthropic, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from "@anthropic-ai/sdk";
import { toModelError, type ApiErrorInfo } from "./errors";
import { modelFetch } from "./proxy";
import { ModelError, type ModelClient, type ModelCredentials, type ModelRequest, type ModelResult, type ModelStream } from "./types";

const DEFAULT_MAX_TOKENS = 4096;
/** Error types sent inside a stream (no HTTP status) that are worth trying the next model for. */
const FALLBACK_TYPES = new Set(["overloaded_error", "rate_limit_error", "api_error", "timeout_error"]);

export function createAnthropicModel(model: string, creds: ModelCredentials): ModelClient {
  let client: Anthropic | undefined;
  return {
    id: `anthropic/${model}`,
    async complete(req: ModelRequest, stream?: ModelStream): Promise<ModelResult> {
      const name = req.model || model;
      const id = `anthropic/${name}`;
      const apiKey = creds.ANTHROPIC_API_KEY;
      // A missing key lets the next model in spec.models try (the last one ends the session with this message).
      if (!apiKey) throw new ModelError(`${id}: ANTHROPIC_API_KEY is not set`, true);
      const baseURL = creds.ANTHROPIC_BASE_URL;
      if (baseURL && !/^https?:$/.test(URL.parse(baseURL)?.protocol ?? "")) throw new ModelError(`${id}: ANTHROPIC_BASE_URL is not an http(s) URL`, false);
      // baseURL null (not undefined) so the SDK does not read ANTHROPIC_BASE_URL from the environment; the
      // fetch connects as the operator's proxy settings say, never as this process's environment does.
      client ??= new Anthropic({ apiKey, baseURL: baseURL || null, maxRetries: 0, fetch: modelFetch(creds.proxy) });
      const out: ModelResult = { text: "", stopReason: "end_turn", usage: {} };
      let thinking = "";
      let finished = false;
      try {
        const events = await client.messages.create(
          {
            model: name,
            max_tokens: req.maxTokens ?? DEFAULT_MAX_TOKENS,
            ...(req.system ? { system: req.system } : {}),
            messages: req.messages.map((m) => ({ role: m.role, content: m.content })),
            stream: true,
          },
          { signal: req.signal },
        );
        for await (const ev of events) {
          if (ev.type === "message_start") {
            out.usage = { inputTokens: ev.message.usage.input_tokens, outputTokens: ev.message.usage.output_tokens };
          } else if (ev.type === "content_block_delta") {
            if (ev.delta.type === "text_delta") {
              out.text += ev.delta.text;
              stream?.onText?.(ev.delta.text);
            } else if (ev.delta.type === "thinking_delta") {
              thinking += ev.delta.thinking;
              stream?.onThinking?.(ev.delta.thinking);
            }
          } else if (ev.type === "message_delta") {
            if (ev.delta.stop_reason) out.stopReason = ev.delta.stop_reason;
            if (ev.usage.output_tokens != null) out.usage!.outputTokens = ev.usage.output_tokens;
            if (ev.usage.input_tokens != null) out.usage!.inputTokens = ev.usage.input_tokens;
          } else if (ev.type === "message_stop") {
            finished = true;
          }
        }
      } catch (err) {
        throw toModelError(err, { id, apiKey, baseURL: client.baseURL, signal: req.signal }, SDK_ERRORS, describe);
      }
      // The SDK ends the iteration quietly when the request is aborted mid-stream.
      if (req.signal?.aborted) throw new ModelError(`${id}: aborted`, false);
      if (!finished) throw new ModelError(`${id}: the response stream ended before message_stop`, true);
      if (thinking) out.thinking = thinking;
      return out;
    },
  };
}

const SDK_ERRORS = { UserAbort: APIUserAbortError, ConnectionTimeout: APIConnectionTimeoutError, Connection: APIConnectionError, Api: APIError };

function describe(e: Error): ApiErrorInfo {
  const err = e as APIError;
  return {
    status: err.status as number | undefined,
    kind: err.type,
    detail: err.apiMessage ?? err.message.replace(/^\d+ /, ""),
    fallbackWithoutStatus: err.type == null || FALLBACK_TYPES.has(err.type),
  };
}
