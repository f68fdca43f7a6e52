/**
 * The Agent resource (`apiVersion: pai.io/v1`, `kind: Agent`): one TypeBox schema shared by the
 * management API, the CLI and the manifests watcher, plus the semantic checks a JSON Schema cannot
 * express (model prefixes, CIDR syntax, names). `validateAgent` returns every problem at once.
 */
import { Type as T, type Static, type TSchema } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { ValueErrorType } from "@sinclair/typebox/errors";
import { parseCidr } from "../lib/cidr";
import { DEFAULT_NAMESPACE, dnsLabelProblem } from "./names";
import { InvalidError, type FieldProblem } from "./errors";
import { DEFAULT_MAX_TURNS } from "./limits";

export { DEFAULT_MAX_TURNS };

export const API_VERSION = "pai.io/v1";
export const AGENT_KIND = "Agent";
export const MODEL_PROVIDERS = ["anthropic", "openai", "pai"] as const;

const strict = { additionalProperties: false } as const;

const SecretRef = T.Object(
  { secretRef: T.Object({ name: T.String(), key: T.String() }, strict) },
  strict,
);
const SecretValue = T.Union([T.String({ minLength: 1 }), SecretRef], {
  description: 'a string, or {secretRef: {name, key}} naming a key of a Secret in the same namespace',
});

export const WebhookTrigger = T.Object(
  {
    allowCIDRs: T.Optional(T.Array(T.String(), { description: "Only these source ranges may call the webhook (403 otherwise)." })),
    linearSignatureSecret: T.Optional(SecretValue),
    githubSignatureSecret: T.Optional(SecretValue),
    allowedEnv: T.Optional(T.Array(T.String(), { description: "Environment variable names webhook callers may set." })),
    maxPending: T.Optional(T.Integer({ minimum: 1 })),
  },
  strict,
);

export const Trigger = T.Object({ webhook: T.Optional(WebhookTrigger) }, strict);

// A name a process can be given (letters, digits, _), a value without NUL bytes and of a size exec takes.
export const EnvVar = T.Object({ name: T.String({ pattern: "^[A-Za-z_][A-Za-z0-9_]*$" }), value: T.String({ maxLength: 32 * 1024, pattern: "^[^\\u0000]*$" }) }, strict);

/** The built-in tools an agent may be given (`spec.tools`); none is enabled by default. */
export const BUILTIN_TOOLS = ["bash", "read_file", "write_file", "edit_file", "glob", "grep", "web_fetch"] as const;
export type BuiltinTool = (typeof BUILTIN_TOOLS)[number];

// A name a model API accepts for a tool, and that leaves room for the `mcp__<server>__` prefix.
const MCP_NAME = "^[A-Za-z0-9_-]{1,32}$";

/**
 * `{name, value}` or `{name, valueFrom: {secretKeyRef: {name, key}}}`: an MCP server's env variable
 * (a name a process can be given) or header (an HTTP token; no line breaks in the value).
 */
function valueVar(name: { pattern: string; description: string }, value: { pattern: string }) {
  const Name = T.String({ minLength: 1, maxLength: 256, ...name });
  return T.Union(
    [
      T.Object({ name: Name, value: T.String({ maxLength: 32 * 1024, ...value }) }, strict),
      T.Object({ name: Name, valueFrom: T.Object({ secretKeyRef: T.Object({ name: T.String({ minLength: 1 }), key: T.String({ minLength: 1 }) }, strict) }, strict) }, strict),
    ],
    { description: "{name, value} or {name, valueFrom: {secretKeyRef: {name, key}}} naming a key of a Secret in the same namespace" },
  );
}
export const EnvValueVar = valueVar({ pattern: "^[A-Za-z_][A-Za-z0-9_]*$", description: "an environment variable name" }, { pattern: "^[^\\u0000]*$" });
export const HeaderValueVar = valueVar({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", description: "an HTTP header name" }, { pattern: "^[^\\r\\n\\u0000]*$" });
/** Either kind, as the supervisor resolves them. */
export type ValueVar = Static<typeof EnvValueVar> | Static<typeof HeaderValueVar>;
const NoNul = { pattern: "^[^\\u0000]*$" };

const ToolAllowList = T.Optional(T.Array(T.String({ minLength: 1, maxLength: 128 }), { description: "Only these of the server's tools are offered to the model." }));

export const McpServer = T.Union(
  [
    T.Object(
      {
        name: T.String({ pattern: MCP_NAME, description: "Letters, digits, _ and -, at most 32: tools are named mcp__<name>__<tool>." }),
        command: T.String({ minLength: 1, ...NoNul }),
        args: T.Optional(T.Array(T.String(NoNul))),
        env: T.Optional(T.Array(EnvValueVar)),
        tools: ToolAllowList,
      },
      strict,
    ),
    T.Object(
      {
        name: T.String({ pattern: MCP_NAME, description: "Letters, digits, _ and -, at most 32: tools are named mcp__<name>__<tool>." }),
        url: T.String({ minLength: 1, description: "A Streamable HTTP endpoint (http or https)." }),
        headers: T.Optional(T.Array(HeaderValueVar)),
        tools: ToolAllowList,
      },
      strict,
    ),
  ],
  { description: "a stdio server {name, command, args?, env?, tools?} or an HTTP server {name, url, headers?, tools?}" },
);

/** spec.harness defaults, with reuse. */
export const DEFAULT_REUSE_MAX_SESSIONS = 100;
export const DEFAULT_REUSE_IDLE_SECONDS = 60;

export const AgentSpec = T.Object(
  {
    models: T.Array(T.String(), {
      minItems: 1,
      description: "Models to try in order: anthropic/<model>, openai/<model> or pai/echo.",
    }),
    system: T.Optional(T.String({ description: "The system prompt." })),
    triggers: T.Optional(T.Array(Trigger)),
    env: T.Optional(T.Array(EnvVar)),
    timeoutSeconds: T.Optional(T.Integer({ minimum: 1, maximum: 86400 })),
    maxConcurrentSessions: T.Optional(T.Integer({ minimum: 1 })),
    tools: T.Optional(
      T.Array(T.Union(BUILTIN_TOOLS.map((n) => T.Literal(n)), { description: `a built-in tool (${BUILTIN_TOOLS.join(", ")})` }), {
        description: `Built-in tools the agent may use: ${BUILTIN_TOOLS.join(", ")}. None by default.`,
      }),
    ),
    mcpServers: T.Optional(T.Array(McpServer, { maxItems: 32 })),
    maxTurns: T.Optional(T.Integer({ minimum: 1, maximum: 10_000, description: `Model calls per session at most (default ${DEFAULT_MAX_TURNS}).` })),
    maxTokens: T.Optional(T.Integer({ minimum: 1, maximum: 1_000_000, description: "Output tokens per model call at most." })),
    sandbox: T.Optional(
      T.Object({ network: T.Optional(T.Boolean({ description: "false: tool processes get no network (default true)." })) }, strict),
    ),
    harness: T.Optional(
      T.Object(
        {
          reuse: T.Optional(
            T.Boolean({
              description:
                "true: a session's process may run further sessions of this agent (same namespace, same spec), one at a time; between them it kills every process the session started and goes back to its own folder and environment. Default false: one process per session.",
            }),
          ),
          maxSessionsPerProcess: T.Optional(
            T.Integer({ minimum: 1, maximum: 10_000, description: `With reuse: sessions one process runs at most before it exits (default ${DEFAULT_REUSE_MAX_SESSIONS}).` }),
          ),
          idleSeconds: T.Optional(
            T.Integer({ minimum: 1, maximum: 3600, description: `With reuse: how long a process waits for the agent's next session before it exits (default ${DEFAULT_REUSE_IDLE_SECONDS}).` }),
          ),
        },
        strict,
      ),
    ),
  },
  strict,
);

export const Condition = T.Object({
  type: T.String(),
  status: T.Union([T.Literal("True"), T.Literal("False"), T.Literal("Unknown")]),
  reason: T.String(),
  message: T.String(),
  lastTransitionTime: T.String(),
  observedGeneration: T.Optional(T.Integer()),
});

export const AgentStatus = T.Object({
  webhookUrl: T.Optional(T.String()),
  observedGeneration: T.Optional(T.Integer()),
  conditions: T.Optional(T.Array(Condition)),
});

const Metadata = T.Object(
  {
    name: T.String(),
    namespace: T.Optional(T.String()),
    labels: T.Optional(T.Record(T.String(), T.String())),
    annotations: T.Optional(T.Record(T.String(), T.String())),
    // Server-set fields: accepted (a `get -o yaml` output can be applied again) and ignored.
    uid: T.Optional(T.String()),
    generation: T.Optional(T.Integer()),
    resourceVersion: T.Optional(T.String()),
    creationTimestamp: T.Optional(T.String()),
  },
  strict,
);

/** What a user writes. `status` is accepted so a file the controller wrote back re-applies cleanly. */
export const AgentManifest = T.Object(
  {
    apiVersion: T.Literal(API_VERSION),
    kind: T.Literal(AGENT_KIND),
    metadata: Metadata,
    spec: AgentSpec,
    status: T.Optional(T.Unknown()),
  },
  strict,
);

export type AgentSpec = Static<typeof AgentSpec>;
export type AgentStatus = Static<typeof AgentStatus>;
export type Condition = Static<typeof Condition>;
export type WebhookTrigger = Static<typeof WebhookTrigger>;
export type AgentManifest = Static<typeof AgentManifest>;

/** An Agent as stored and served: metadata filled in by the server. */
export interface Agent {
  apiVersion: typeof API_VERSION;
  kind: typeof AGENT_KIND;
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    generation: number;
    resourceVersion: string;
    creationTimestamp: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: AgentSpec;
  status: AgentStatus;
}

/** The validated, normalised input of an apply. */
export interface AgentInput {
  name: string;
  namespace: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  spec: AgentSpec;
}

const compiled = TypeCompiler.Compile(AgentManifest);

/** `/spec/models/0` → `spec.models[0]` */
export function pointerToField(path: string): string {
  return path
    .split("/")
    .slice(1)
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"))
    .reduce((acc, seg) => (/^\d+$/.test(seg) ? `${acc}[${seg}]` : acc ? `${acc}.${seg}` : seg), "");
}

export function fieldToPath(field: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const m of field.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(m[2] !== undefined ? Number(m[2]) : m[1]!);
  return out;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  return `${typeof value} ${JSON.stringify(value)}`;
}

function schemaProblems(value: unknown): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const seen = new Set<string>();
  for (const e of compiled.Errors(value)) {
    const field = pointerToField(e.path);
    // One message per field: a union reports once, not once per branch.
    if ([...seen].some((s) => s !== "" && (field === s || field.startsWith(`${s}.`) || field.startsWith(`${s}[`)))) continue;
    let message: string;
    switch (e.type) {
      case ValueErrorType.ObjectAdditionalProperties:
        message = "unknown field";
        break;
      case ValueErrorType.ObjectRequiredProperty:
        message = "required field is missing";
        break;
      case ValueErrorType.Union:
        message = `expected ${(e.schema as TSchema).description ?? "one of the allowed forms"}, got ${describe(e.value)}`;
        break;
      case ValueErrorType.Literal:
        message = `must be "${(e.schema as unknown as { const: string }).const}", got ${describe(e.value)}`;
        break;
      default:
        message = `${e.message.charAt(0).toLowerCase()}${e.message.slice(1)}, got ${describe(e.value)}`;
    }
    if (e.type === ValueErrorType.ObjectRequiredProperty || e.type === ValueErrorType.Union) seen.add(field);
    problems.push({ field, message });
  }
  return problems;
}

/** Checks a JSON Schema cannot express; tolerant of a partly invalid object so all problems show at once. */
function semanticProblems(value: unknown): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const m = value as Partial<AgentManifest>;
  if (typeof m.metadata?.name === "string") {
    const name = dnsLabelProblem(m.metadata.name);
    if (name) problems.push({ field: "metadata.name", message: name });
  }
  if (typeof m.metadata?.namespace === "string") {
    const ns = dnsLabelProblem(m.metadata.namespace);
    if (ns) problems.push({ field: "metadata.namespace", message: ns });
  }
  const models = Array.isArray(m.spec?.models) ? m.spec.models : [];
  models.forEach((model, i) => {
    if (typeof model !== "string") return;
    const slash = model.indexOf("/");
    const provider = slash > 0 ? model.slice(0, slash) : "";
    if (!(MODEL_PROVIDERS as readonly string[]).includes(provider) || slash === model.length - 1)
      problems.push({
        field: `spec.models[${i}]`,
        message: `unknown model "${model}": use anthropic/<model>, openai/<model> or pai/echo`,
      });
    else if (provider === "pai" && model !== "pai/echo")
      problems.push({ field: `spec.models[${i}]`, message: `unknown built-in model "${model}": the only one is pai/echo` });
  });
  const tools = Array.isArray(m.spec?.tools) ? m.spec.tools : [];
  tools.forEach((t, i) => {
    if (tools.indexOf(t) !== i) problems.push({ field: `spec.tools[${i}]`, message: `"${t}" is listed twice` });
  });
  const servers = Array.isArray(m.spec?.mcpServers) ? m.spec.mcpServers : [];
  const names = new Set<string>();
  servers.forEach((srv, i) => {
    if (typeof srv?.name === "string") {
      if (names.has(srv.name)) problems.push({ field: `spec.mcpServers[${i}].name`, message: `"${srv.name}" is used by another server` });
      names.add(srv.name);
    }
    const url = (srv as { url?: unknown })?.url;
    if (typeof url === "string" && !/^https?:$/.test(URL.parse(url)?.protocol ?? ""))
      problems.push({ field: `spec.mcpServers[${i}].url`, message: `"${url}" is not an http:// or https:// URL` });
  });
  const triggers = Array.isArray(m.spec?.triggers) ? m.spec.triggers : [];
  triggers.forEach((t, i) => {
    const cidrs = t?.webhook?.allowCIDRs;
    if (!Array.isArray(cidrs)) return;
    cidrs.forEach((c, j) => {
      if (typeof c === "string" && !parseCidr(c))
        problems.push({
          field: `spec.triggers[${i}].webhook.allowCIDRs[${j}]`,
          message: `"${c}" is not an IPv4 or IPv6 address or CIDR range (e.g. 35.231.147.226/32)`,
        });
    });
  });
  return problems;
}

/**
 * Validates a parsed manifest. Returns the normalised input, or throws InvalidError listing every
 * problem with its field path (callers holding YAML add line numbers).
 */
export function validateAgent(value: unknown, defaultNamespace = DEFAULT_NAMESPACE): AgentInput {
  const problems = agentProblems(value);
  if (problems.length) throw new InvalidError(`Agent ${agentLabel(value)}`, problems);
  const m = value as AgentManifest;
  return {
    name: m.metadata.name,
    namespace: m.metadata.namespace ?? defaultNamespace,
    labels: m.metadata.labels,
    annotations: m.metadata.annotations,
    spec: m.spec,
  };
}

export function agentProblems(value: unknown): FieldProblem[] {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return [{ field: "", message: `expected an Agent object, got ${describe(value)}` }];
  const problems = schemaProblems(value);
  const fields = new Set(problems.map((p) => p.field));
  return [...problems, ...semanticProblems(value).filter((p) => !fields.has(p.field))];
}

function agentLabel(value: unknown): string {
  const name = (value as { metadata?: { name?: unknown } } | null)?.metadata?.name;
  return typeof name === "string" ? `"${name}"` : "(unnamed)";
}

export function hasWebhook(spec: AgentSpec): boolean {
  return spec.triggers?.some((t) => t.webhook !== undefined) ?? false;
}
