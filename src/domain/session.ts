/** Sessions and their events: phases, the event vocabulary and the shapes readers see. */
import type { AgentSpec } from "./agent";

export const Phase = {
  Pending: "Pending",
  Running: "Running",
  Complete: "Complete",
  Error: "Error",
  Cancelled: "Cancelled",
} as const;
export type Phase = (typeof Phase)[keyof typeof Phase];
export const FINAL_PHASES: readonly Phase[] = [Phase.Complete, Phase.Error, Phase.Cancelled];
export const isFinal = (p: string) => (FINAL_PHASES as readonly string[]).includes(p);

export const EventType = {
  StatusRunning: "session.status_running",
  AgentMessage: "agent.message",
  AgentThinking: "agent.thinking",
  AgentToolUse: "agent.tool_use",
  AgentToolResult: "agent.tool_result",
  ModelFallback: "session.model_fallback",
  Error: "session.error",
  StatusClosed: "session.status_closed",
  /** A callback delivery attempt; comes after the closing event, since the callback reports the end. */
  Callback: "session.callback",
} as const;
export type EventType = (typeof EventType)[keyof typeof EventType];

export interface SessionEvent {
  id: number;
  type: string;
  content: unknown;
  timestamp: string;
}

export interface EnvVar {
  name: string;
  value: string;
}

export interface SessionOrigin {
  kind: "webhook" | "cli" | "api";
  /** For webhooks: `linear`, `github` or `generic`. */
  sender?: string;
  /** The sender's delivery id (Linear-Delivery, X-GitHub-Delivery, Idempotency-Key, webhook-id). */
  delivery?: string;
  /** For webhooks: the sender's event name (X-GitHub-Event, Linear `type`). */
  event?: string;
}

export interface Session {
  name: string;
  namespace: string;
  uid: string;
  agentDefinition: string;
  generation: number;
  spec: AgentSpec;
  title: string;
  env: EnvVar[];
  origin: SessionOrigin;
  phase: Phase;
  response: string | null;
  error: string | null;
  /** The raw webhook event, given to the agent as webhook.json. */
  payload?: unknown;
  callbackUrl?: string | null;
  callbackState?: CallbackState | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export const CallbackState = { Pending: "pending", Delivered: "delivered", Failed: "failed" } as const;
export type CallbackState = (typeof CallbackState)[keyof typeof CallbackState];

export const DEFAULT_TIMEOUT_SECONDS = 1800;

/**
 * Environment variables a caller may never set for a session: they could take over the process
 * (loader, runtime and interpreter hooks) or reach the server's own settings.
 */
const FORBIDDEN_ENV = [/^LD_/, /^DYLD_/, /^BUN_/, /^PAI_/, /^NODE_/, /^npm_/i, /^PATH$/, /^HOME$/, /^SHELL$/, /^IFS$/, /^PYTHON(PATH|HOME|STARTUP)$/, /^PERL5?(LIB|OPT)$/, /^RUBY(LIB|OPT)$/, /^BASH_ENV$/, /^ENV$/, /^GCONV_PATH$/, /^MALLOC_/, /^ANTHROPIC_/, /^OPENAI_/];
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Names in `env` that a caller may not set, with why. */
export function forbiddenEnvNames(env: EnvVar[]): string[] {
  return env.map((e) => e.name).filter((n) => !ENV_NAME.test(n) || FORBIDDEN_ENV.some((re) => re.test(n)));
}
