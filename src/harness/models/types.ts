/**
 * The model interface the harness's agent loop uses. Each provider (anthropic/, openai/, pai/echo)
 * implements it; errors say whether the next model in `spec.models` should be tried.
 */

export interface ChatMessage {
  role: "user" | "assistant";
  content: string;
}

export interface ModelRequest {
  /** The model name without its provider prefix, e.g. `claude-sonnet-4-6`. */
  model: string;
  system?: string;
  messages: ChatMessage[];
  maxTokens?: number;
  signal?: AbortSignal;
}

/** Streaming callbacks; a provider calls them as deltas arrive (if it streams). */
export interface ModelStream {
  onText?(delta: string): void;
  onThinking?(delta: string): void;
}

export interface ModelResult {
  /** The assistant's whole text for this turn ("" when it produced none). */
  text: string;
  /** Extended thinking text, when the model produced any. */
  thinking?: string;
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

/** Credentials and endpoints the supervisor hands to the harness (never put in a tool's env). */
export interface ModelCredentials {
  ANTHROPIC_API_KEY?: string;
  ANTHROPIC_BASE_URL?: string;
  OPENAI_API_KEY?: string;
  OPENAI_BASE_URL?: string;
  /**
   * The operator's proxy settings, from the environment of `pai serve`. The model clients use
   * these and nothing else: proxy variables in the session's own environment (set by the agent's
   * spec.env or a caller) could send the API key through someone else's proxy.
   */
  proxy?: ProxySettings;
}

/** Proxy variables as `pai serve` saw them, each already resolved between its two spellings. */
export interface ProxySettings {
  HTTP_PROXY?: string;
  HTTPS_PROXY?: string;
  /** Used when the scheme's own variable is unset, and only if it names an http(s) proxy. */
  ALL_PROXY?: string;
  NO_PROXY?: string;
}
