/**
 * The model interface the harness's agent loop uses. Each provider (anthropic/, openai/, pai/echo)
 * implements it; errors say whether the next model in `spec.models` should be tried.
 */

/** A piece of a message: text, thinking, a tool call, or a tool's result. */
export type ContentBlock =
  | { type: "text"; text: string }
  /** Thinking text; `signature` (Anthropic) must be sent back unchanged with the turn it came in. */
  | { type: "thinking"; thinking: string; signature?: string }
  | { type: "tool_use"; id: string; name: string; input: unknown }
  | { type: "tool_result"; toolUseId: string; content: string; isError?: boolean };

export interface ChatMessage {
  role: "user" | "assistant";
  content: ContentBlock[];
}

/** A tool as offered to the model: its name, what it does, and a JSON Schema for its input. */
export interface ToolSpec {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
}

/** A tool call's input as the model streamed it (JSON text; "" is no input); not JSON is a model error. */
export function parseToolInput(text: string, id: string, tool: string): unknown {
  if (!text.trim()) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new ModelError(`${id}: the input of a call to ${tool} is not valid JSON`, true);
  }
}

/** The text of a message's text blocks, joined. */
export function textOf(content: ContentBlock[]): string {
  let out = "";
  for (const b of content) if (b.type === "text") out += b.text;
  return out;
}

export interface ModelRequest {
  /** The model name without its provider prefix, e.g. `claude-sonnet-4-6`. */
  model: string;
  system?: string;
  messages: ChatMessage[];
  /** Tools the model may call this turn (none: a plain completion). */
  tools?: ToolSpec[];
  maxTokens?: number;
  signal?: AbortSignal;
}

/** Streaming callbacks; a provider calls them as deltas arrive (if it streams). */
export interface ModelStream {
  onText?(delta: string): void;
  onThinking?(delta: string): void;
}

export interface ModelResult {
  /** The assistant's turn, block by block, in the order produced (text, thinking, tool calls). */
  content: ContentBlock[];
  /** Provider stop reason, normalised: `end_turn`, `max_tokens`, `tool_use`, `stop_sequence`, or the raw value. */
  stopReason: string;
  usage?: { inputTokens?: number; outputTokens?: number };
}

export interface ModelClient {
  /** `anthropic/claude-sonnet-4-6`, as written in the spec. */
  readonly id: string;
  complete(req: ModelRequest, stream?: ModelStream): Promise<ModelResult>;
}

/**
 * A failed model call. `fallback` is true for overloads, rate limits and connection errors: the
 * harness then tries the next model in `spec.models`.
 */
export class ModelError extends Error {
  constructor(
    message: string,
    readonly fallback: boolean,
    readonly status?: number,
  ) {
    super(message);
  }
}

export type { ModelCredentials, ProxySettings } from "../protocol";
