/**
 * The harness's protocol: messages between the supervisor and a harness child over Bun's IPC pipe.
 * The child never touches the database: it reports, the supervisor stores. Events are typed by
 * their EventType; the result carries the final phase, the reply and the reason.
 */
import type { AgentSpec } from "../domain/agent";
import { EventType, type TokenCounts } from "../domain/session";

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

/** What the harness needs of the agent's spec. */
export type HarnessSpec = Pick<AgentSpec, "models" | "system" | "tools" | "maxTurns" | "maxTokens" | "sandbox" | "mcpServers">;

/** An MCP server entry with every `valueFrom` resolved by the supervisor (the child never reads Secrets). */
export type ResolvedMcpServer =
  | { name: string; command: string; args?: string[]; env?: Record<string, string>; tools?: string[] }
  | { name: string; url: string; headers?: Record<string, string>; tools?: string[] };

/** How tools may run, as the operator configured `pai serve`. */
export interface ToolPolicy {
  /** `--allow-unsandboxed-tools`: run `bash` and stdio MCP servers without bubblewrap when it is missing. */
  allowUnsandboxed: boolean;
  /** Paths a sandboxed process must not see at all (the data dir: pai.db, tokens, other sessions). */
  hidden: string[];
  /** `--allow-private-callbacks`: web_fetch may reach loopback and private addresses. */
  allowPrivateFetch: boolean;
  /** `--sandbox-read-only`: paths shown read-only inside the sandbox although it would cover them (under /tmp, say). */
  readOnly?: string[];
}

/** Supervisor → harness, once, right after spawn. */
export interface StartMessage {
  type: "start";
  session: {
    name: string;
    namespace: string;
    title: string;
    /** Where the session came from, for the prompt's note about webhook.json. */
    origin: { sender?: string; event?: string; delivery?: string };
    /** True when the webhook's payload is in webhook.json in the working folder. */
    hasPayload: boolean;
  };
  spec: HarnessSpec;
  /** spec.mcpServers with their secrets resolved (absent when the agent has none). */
  mcpServers?: ResolvedMcpServer[];
  /** Model keys, endpoints and the operator's proxy settings (`credentialsFrom`): none of them is read from the child's env. */
  credentials: ModelCredentials;
  tools: ToolPolicy;
  /**
   * A child started ahead of the session (a warm child, or one kept for the agent's next session)
   * got no working folder or environment of the session at spawn: they come here. Absent for a
   * child spawned for this session, which already runs in its folder with its environment.
   */
  place?: { cwd: string; env: Record<string, string> };
  /**
   * The child may run another session of the same agent after this one (`spec.harness.reuse`):
   * once the result is sent it kills what the session started, leaves its folder and waits for
   * the next start message instead of exiting.
   */
  reuse?: boolean;
}

/** The events a harness reports, by type, with their contents. */
export interface HarnessEventMap {
  [EventType.AgentMessage]: { text: string; model: string; stopReason?: string };
  [EventType.AgentThinking]: { text: string; model: string };
  [EventType.AgentToolUse]: { id: string; name: string; input: unknown };
  [EventType.AgentToolResult]: { id: string; name: string; output: string; isError: boolean; truncated?: boolean };
  [EventType.ModelFallback]: { from: string; to: string; error: string };
  [EventType.Usage]: TokenCounts & { model: string };
  /** `notes`: allow-listed tools the server does not offer, tools left out or renamed, a log that could not be written. */
  [EventType.McpServer]: { server: string; tools: string[]; notes?: string[] };
  [EventType.Error]: { message: string; model?: string; server?: string };
}
export type HarnessEventType = keyof HarnessEventMap;
export type HarnessEvent = { [K in HarnessEventType]: { type: K; content: HarnessEventMap[K] } }[HarnessEventType];

/** Reports an event (typed by its EventType). */
export type Emit = <K extends HarnessEventType>(type: K, content: HarnessEventMap[K]) => void;

/** The end of a run, as the harness saw it. `response`: the text of the last turn (null if none). */
export type HarnessResult =
  | { type: "result"; phase: "Complete"; response: string | null }
  | { type: "result"; phase: "Error"; response: string | null; error: string };

/**
 * Harness → supervisor. `taken`: a child started before its session got the start message (sent
 * before anything else; until it comes, a child that dies has done nothing, and the session is
 * given to another).
 */
export type HarnessMessage = { type: "event"; event: HarnessEvent } | HarnessResult | { type: "taken" };

/** The first user message: the title, and where to find the webhook's payload when one came. */
export function promptOf(s: StartMessage["session"]): string {
  if (!s.hasPayload) return s.title;
  const text = (v: unknown) => (typeof v === "string" && v ? v : undefined);
  const from = [s.origin.sender !== "generic" ? text(s.origin.sender) : undefined, text(s.origin.event)].filter(Boolean).join(" ");
  const delivery = s.origin.delivery ? ` (delivery ${s.origin.delivery})` : "";
  return `${s.title}\n\nThe webhook's payload${from ? ` (${from} event)` : ""}${delivery} is in the file webhook.json in your working folder.`;
}
