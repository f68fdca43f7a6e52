/** `anthropic/<model>`: the Messages API through @anthropic-ai/sdk, streamed, with errors mapped to ModelError. */
import Anthropic, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from "@anthropic-ai/sdk";
import { toModelError, type ApiErrorInfo } from "./errors";
import { modelFetch } from "./proxy";
import type { MessageParam, ContentBlockParam, Tool as AnthropicTool } from "@anthropic-ai/sdk/resources/messages";
import { ModelError, parseToolInput, type ChatMessage, type ContentBlock, type ModelClient, type ModelCredentials, type ModelRequest, type ModelResult, type ModelStream, type ToolSpec } from "./types";

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
      const out: ModelResult = { content: [], stopReason: "end_turn", usage: {} };
      // Blocks by their stream index; a tool call's input arrives as JSON text in pieces.
      const blocks: ContentBlock[] = [];
      const partialJson = new Map<number, string>();
      let finished = false;
      try {
        const events = await client.messages.create(
          {
            model: name,
            max_tokens: req.maxTokens ?? DEFAULT_MAX_TOKENS,
            ...(req.system ? { system: req.system } : {}),
            messages: req.messages.map(toAnthropicMessage),
            ...(req.tools?.length ? { tools: req.tools.map(toAnthropicTool) } : {}),
            stream: true,
          },
          { signal: req.signal },
        );
        for await (const ev of events) {
          if (ev.type === "message_start") {
            out.usage = { inputTokens: ev.message.usage.input_tokens, outputTokens: ev.message.usage.output_tokens };
          } else if (ev.type === "content_block_start") {
            const b = ev.content_block;
            if (b.type === "text") blocks[ev.index] = { type: "text", text: b.text ?? "" };
            else if (b.type === "thinking") blocks[ev.index] = { type: "thinking", thinking: b.thinking ?? "", signature: b.signature || undefined };
            else if (b.type === "tool_use") {
              blocks[ev.index] = { type: "tool_use", id: b.id, name: b.name, input: {} };
              partialJson.set(ev.index, "");
            }
          } else if (ev.type === "content_block_delta") {
            const b = blocks[ev.index];
            if (ev.delta.type === "text_delta") {
              if (b?.type === "text") b.text += ev.delta.text;
              else blocks[ev.index] = { type: "text", text: ev.delta.text };
              stream?.onText?.(ev.delta.text);
            } else if (ev.delta.type === "thinking_delta") {
              if (b?.type === "thinking") b.thinking += ev.delta.thinking;
              else blocks[ev.index] = { type: "thinking", thinking: ev.delta.thinking };
              stream?.onThinking?.(ev.delta.thinking);
            } else if (ev.delta.type === "signature_delta") {
              if (b?.type === "thinking") b.signature = (b.signature ?? "") + ev.delta.signature;
            } else if (ev.delta.type === "input_json_delta") {
              partialJson.set(ev.index, (partialJson.get(ev.index) ?? "") + ev.delta.partial_json);
            }
          } else if (ev.type === "content_block_stop") {
            const b = blocks[ev.index];
            if (b?.type === "tool_use") b.input = parseToolInput(partialJson.get(ev.index) ?? "", id, b.name);
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
      out.content = blocks.filter((b): b is ContentBlock => b !== undefined);
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

function toAnthropicTool(t: ToolSpec): AnthropicTool {
  return { name: t.name, description: t.description, input_schema: t.inputSchema as AnthropicTool["input_schema"] };
}

function toAnthropicMessage(m: ChatMessage): MessageParam {
  const content: ContentBlockParam[] = [];
  for (const b of m.content) {
    if (b.type === "text") {
      if (b.text) content.push({ type: "text", text: b.text });
    } else if (b.type === "thinking") {
      // Thinking goes back only as it came (signed); unsigned thinking (another provider's) is dropped.
      if (b.signature) content.push({ type: "thinking", thinking: b.thinking, signature: b.signature });
    } else if (b.type === "tool_use") content.push({ type: "tool_use", id: b.id, name: b.name, input: b.input ?? {} });
    else content.push({ type: "tool_result", tool_use_id: b.toolUseId, content: b.content, ...(b.isError ? { is_error: true } : {}) });
  }
  // The API refuses an empty message; a turn that said nothing is sent as an empty text.
  if (!content.length) content.push({ type: "text", text: "(empty)" });
  return { role: m.role, content };
}
