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
  /** One model call's token counts: `{model, inputTokens, outputTokens}`. */
  Usage: "session.usage",
  /** An MCP server connected at start: `{server, tools}` (the tools it offered, after its allow list). */
  McpServer: "session.mcp_server",
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
  /** Tokens used by the session's model calls, once it ended (null before, or when no call reported any). */
  usage?: SessionUsage | null;
}

/** Token counts of model calls. */
export interface TokenCounts {
  inputTokens: number;
  outputTokens: number;
}

/** A session's totals, and per model (`anthropic/claude-…`) when more than one was used. */
export interface SessionUsage extends TokenCounts {
  byModel: Record<string, TokenCounts>;
}

/** Adds one model call's counts to a session's totals (a new object; `total` is not changed). */
export function addUsage(total: SessionUsage | null | undefined, model: string, call: Partial<TokenCounts>): SessionUsage {
  const inputTokens = Math.max(0, Math.floor(Number(call.inputTokens) || 0));
  const outputTokens = Math.max(0, Math.floor(Number(call.outputTokens) || 0));
  const before = total ?? { inputTokens: 0, outputTokens: 0, byModel: {} };
  const m = before.byModel[model] ?? { inputTokens: 0, outputTokens: 0 };
  return {
    inputTokens: before.inputTokens + inputTokens,
    outputTokens: before.outputTokens + outputTokens,
    byModel: { ...before.byModel, [model]: { inputTokens: m.inputTokens + inputTokens, outputTokens: m.outputTokens + outputTokens } },
  };
}

export const CallbackState = { Pending: "pending", Delivered: "delivered", Failed: "failed" } as const;
export type CallbackState = (typeof CallbackState)[keyof typeof CallbackState];

export const DEFAULT_TIMEOUT_SECONDS = 1800;

/**
 * Environment variables a caller may never set for a session: anything that loads code or config
 * into the child or the programs it runs, changes where they connect or what they trust, or
 * reaches the server's own settings. Matched in any letter case: Python reads proxy variables in
 * any case, and a name that differs from one of these only by case has no use worth the doubt.
 * A deny list cannot know every program's variables; `allowedEnv` on a webhook is the allow list.
 */
const FORBIDDEN_ENV = new RegExp(
  `^(?:${[
    // The dynamic loader, libc and the allocator: code or data loaded into every process.
    "LD_.*", "DYLD_.*", "GCONV_PATH", "GLIBC_TUNABLES", "MALLOC_.*", "LOCPATH", "NLSPATH",
    // The resolver: where host names lead.
    "RES_OPTIONS", "HOSTALIASES", "LOCALDOMAIN", "RESOLV_.*",
    // Proxies: any name with PROXY as a word (HTTP_PROXY, https_proxy, ALL_PROXY, NO_PROXY, GRPC_PROXY,
    // no_grpc_proxy, GIT_PROXY_COMMAND, npm_config_https_proxy …), Go's and Chromium's spellings.
    "(?:.*_)?PROXY(?:_.*)?", "GO(?:NO)?PROXY", "SOCKS5?_SERVER",
    // TLS: which certificates are trusted, whether they are checked, where session keys are written.
    "SSL.*", "OPENSSL_.*", "GNUTLS_.*", "(?:REQUESTS|CURL|AWS)_CA_BUNDLE", "PYTHONHTTPSVERIFY", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    // This program's runtimes (NODE_OPTIONS, NODE_EXTRA_CA_CERTS, NODE_TLS_REJECT_UNAUTHORIZED, BUN_*),
    // JavaScript package managers, Pai's own settings and the model clients' settings.
    "BUN_.*", "NODE_.*", "DENO_.*", "NPM_.*", "YARN_.*", "COREPACK_.*", "PAI_.*", "ANTHROPIC_.*", "OPENAI_.*",
    // The shell: where commands are found, and startup files and hooks that run code.
    "PATH", "HOME", "SHELL", "IFS", "CDPATH", "ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "PS4", "PROMPT_COMMAND", "ZDOTDIR", "XDG_CONFIG_(?:HOME|DIRS)",
    // Interpreters' module paths, startup files and option variables.
    "PYTHON(?:PATH|HOME|STARTUP|USERBASE|INSPECT|BREAKPOINT|WARNINGS|EXECUTABLE|PLATLIBDIR)", "PERL5?(?:LIB|OPT|DB)", "PERL_(?:MB|MM)_OPT",
    "RUBY(?:LIB|OPT)", "GEM_(?:HOME|PATH)", "BUNDLE_GEMFILE", "LUA_(?:INIT|PATH|CPATH).*", "PHPRC", "PHP_INI_SCAN_DIR", "TCLLIBPATH",
    "R_(?:PROFILE|PROFILE_USER|ENVIRON|ENVIRON_USER|LIBS|LIBS_USER|LIBS_SITE)", "ERL_(?:AFLAGS|ZFLAGS|FLAGS|LIBS)", "ELIXIR_ERL_OPTIONS",
    "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "JAVA_OPTS", "CLASSPATH", "MAVEN_OPTS", "GRADLE_OPTS", "DOTNET_.*", "CORECLR_.*", "COR_.*",
    // Build tools that run or fetch code: Go's toolexec, toolchain downloads and checksum trust, Rust's wrappers.
    "GOFLAGS", "GOTOOLCHAIN", "GOENV", "GODEBUG", "GOPRIVATE", "GONOSUMDB", "GONOSUMCHECK", "GOSUMDB", "GOINSECURE", "RUSTC(?:_WRAPPER|_WORKSPACE_WRAPPER)?", "RUSTFLAGS", "RUSTDOCFLAGS", "CARGO_.*",
    // Commands other programs run on one's behalf: editors, pagers, ask-pass helpers, remote shells.
    "EDITOR", "VISUAL", "PAGER", "MANPAGER", "LESSOPEN", "LESSCLOSE", "BROWSER", "(?:.*_)?ASKPASS(?:_.*)?", "TAR_OPTIONS", "RSYNC_.*", "CVS_RSH", "CVS_SERVER",
    "VIMINIT", "GVIMINIT", "EXINIT",
    // Git runs commands (GIT_SSH_COMMAND, GIT_EXTERNAL_DIFF), loads config (GIT_CONFIG_*), trusts (GIT_SSL_*) and
    // finds repositories (GIT_DIR) from its environment: only the commit identity is left to callers.
    "GIT_(?!(?:AUTHOR|COMMITTER)_(?:NAME|EMAIL|DATE)$).*",
    // Other clients' config files and endpoints: where they connect and with what.
    "CURL_HOME", "WGETRC", "SYSTEM_WGETRC", "NETRC", "PIP_.*", "UV_.*", "KUBECONFIG", "DOCKER_.*", "AWS_(?:CONFIG_FILE|SHARED_CREDENTIALS_FILE|ENDPOINT_URL.*)",
  ].join("|")})$`,
  "i",
);
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A variable's value: at most this long (Linux refuses a single one over 128 KiB at exec). */
export const MAX_ENV_VALUE = 32 * 1024;
/** All of a session's own variables together: well under what exec takes for the whole environment. */
export const MAX_ENV_TOTAL = 128 * 1024;

/**
 * Why `env` cannot be given to a process, or null: a NUL byte (it would cut the variable, or make
 * exec fail), a value over MAX_ENV_VALUE, or all of them over MAX_ENV_TOTAL. Checked when the
 * session is accepted, so a session that could never start is refused instead.
 */
export function envValueProblem(env: EnvVar[]): string | null {
  let total = 0;
  for (const e of env) {
    if (e.value.includes("\u0000") || e.name.includes("\u0000")) return `env ${JSON.stringify(e.name)}: names and values may not contain a NUL byte`;
    if (e.value.length > MAX_ENV_VALUE) return `env ${e.name}: the value is ${e.value.length} characters long, at most ${MAX_ENV_VALUE}`;
    total += e.name.length + e.value.length + 2;
  }
  return total > MAX_ENV_TOTAL ? `env: ${total} characters in all, at most ${MAX_ENV_TOTAL}` : null;
}

/** Read once when a runtime starts (time zone, locale, temporary folder), beyond the names in FORBIDDEN_ENV. */
const READ_AT_START = /^(?:TZ|TZDIR|LANG|LANGUAGE|LC_.*|TMPDIR|TMP|TEMP)$/i;

/**
 * Whether a session's child must be spawned with this variable already set: the dynamic loader,
 * the allocator, TLS trust, proxies, the search path, the home folder, the locale, the time zone,
 * Bun's and Node's own settings — anything a process may read as it starts rather than when used.
 * A session that sets one in spec.env (callers may not) gets a child spawned for it; every other
 * session may be run by a child started before it (warm, or kept by an agent that opted into
 * reuse), whose environment is replaced by the session's when the session starts.
 */
export function mustBeSetAtSpawn(name: string): boolean {
  return FORBIDDEN_ENV.test(name) || READ_AT_START.test(name);
}

/** Names in `env` that a caller may not set, with why. */
export function forbiddenEnvNames(env: EnvVar[]): string[] {
  return env.map((e) => e.name).filter((n) => !ENV_NAME.test(n) || FORBIDDEN_ENV.test(n));
}
