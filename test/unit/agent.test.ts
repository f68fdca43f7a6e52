// Covers src/domain/agent.ts: validateAgent, agentProblems, pointerToField, fieldToPath, hasWebhook.
import { describe, expect, test } from "bun:test";
import { parse } from "yaml";
import { agentProblems, fieldToPath, hasWebhook, pointerToField, validateAgent, type AgentSpec } from "../../src/domain/agent";
import { InvalidError } from "../../src/domain/errors";

/** The agent shown on the product page, verbatim. */
const PRODUCT_PAGE = `apiVersion: pai.io/v1
kind: Agent
metadata:
  name: my-agent
spec:
  models:
    - anthropic/claude-sonnet-4-6
  triggers:
    - webhook: {}
  system: |
    You are a helpful agent. ...
`;

type Manifest = Record<string, any>;

/** A fresh copy of the product-page agent as a plain object, edited by `edit`. */
function agent(edit: (m: Manifest) => void = () => {}): Manifest {
  const m = parse(PRODUCT_PAGE) as Manifest;
  edit(m);
  return m;
}

const webhook = (w: unknown) => (m: Manifest) => {
  m.spec.triggers = [{ webhook: w }];
};

describe("validateAgent accepts", () => {
  test("the product page agent, in the default namespace", () => {
    const input = validateAgent(parse(PRODUCT_PAGE));
    expect(input.name).toBe("my-agent");
    expect(input.namespace).toBe("default");
    expect(input.spec.models).toEqual(["anthropic/claude-sonnet-4-6"]);
    expect(input.spec.triggers).toEqual([{ webhook: {} }]);
    expect(input.spec.system).toBe("You are a helpful agent. ...\n");
  });

  test("the given default namespace when metadata.namespace is absent", () => {
    expect(validateAgent(agent(), "team-a").namespace).toBe("team-a");
  });

  test("metadata.namespace over the default namespace", () => {
    expect(validateAgent(agent((m) => (m.metadata.namespace = "ops")), "team-a").namespace).toBe("ops");
  });

  const valid: { name: string; input: Manifest }[] = [
    {
      name: "webhook with allowCIDRs (IPv4 and IPv6) and a literal linearSignatureSecret",
      input: agent(webhook({ allowCIDRs: ["35.231.147.226/32", "2001:db8::/32"], linearSignatureSecret: "abc" })),
    },
    {
      name: "linearSignatureSecret as a secretRef",
      input: agent(webhook({ linearSignatureSecret: { secretRef: { name: "s", key: "k" } } })),
    },
    {
      name: "status and server-set metadata (a `get -o yaml` output applied again)",
      input: agent((m) => {
        Object.assign(m.metadata, {
          uid: "6f1c1b7e-0000-4000-8000-000000000001",
          generation: 3,
          resourceVersion: "12",
          creationTimestamp: "2025-01-01T00:00:00Z",
        });
        m.status = { webhookUrl: "http://localhost:8080/webhooks/default/my-agent/abc", observedGeneration: 3, conditions: [] };
      }),
    },
    { name: "every provider prefix", input: agent((m) => (m.spec.models = ["anthropic/a", "openai/gpt-4o", "pai/echo"])) },
    { name: "no triggers at all", input: agent((m) => delete m.spec.triggers) },
    { name: "a 63-character name", input: agent((m) => (m.metadata.name = "a".repeat(63))) },
    { name: "timeoutSeconds at its maximum", input: agent((m) => (m.spec.timeoutSeconds = 86400)) },
  ];

  test.each(valid)("$name", ({ input }) => {
    expect(agentProblems(input)).toEqual([]);
    expect(() => validateAgent(input)).not.toThrow();
  });

  test("the returned spec keeps the webhook settings", () => {
    const w = { allowCIDRs: ["35.231.147.226/32", "2001:db8::/32"], linearSignatureSecret: { secretRef: { name: "s", key: "k" } } };
    expect(validateAgent(agent(webhook(w))).spec.triggers).toEqual([{ webhook: w }]);
  });
});

describe("agentProblems rejects", () => {
  const invalid: { name: string; input: unknown; field: string; message: RegExp }[] = [
    { name: "wrong apiVersion", input: agent((m) => (m.apiVersion = "pai.io/v2")), field: "apiVersion", message: /must be "pai\.io\/v1"/ },
    { name: "wrong kind", input: agent((m) => (m.kind = "Pod")), field: "kind", message: /must be "Agent"/ },
    { name: "missing metadata", input: agent((m) => delete m.metadata), field: "metadata", message: /required/ },
    { name: "missing metadata.name", input: agent((m) => delete m.metadata.name), field: "metadata.name", message: /required/ },
    { name: "empty name", input: agent((m) => (m.metadata.name = "")), field: "metadata.name", message: /non-empty/ },
    { name: "upper-case name", input: agent((m) => (m.metadata.name = "My-Agent")), field: "metadata.name", message: /DNS-1123.*lower-case/ },
    { name: "underscore in name", input: agent((m) => (m.metadata.name = "my_agent")), field: "metadata.name", message: /DNS-1123/ },
    { name: "64-character name", input: agent((m) => (m.metadata.name = "a".repeat(64))), field: "metadata.name", message: /at most 63/ },
    { name: "name with a leading dash", input: agent((m) => (m.metadata.name = "-agent")), field: "metadata.name", message: /starting and ending with a letter or digit/ },
    { name: "name with a trailing dash", input: agent((m) => (m.metadata.name = "agent-")), field: "metadata.name", message: /DNS-1123/ },
    { name: "bad namespace", input: agent((m) => (m.metadata.namespace = "Team")), field: "metadata.namespace", message: /DNS-1123/ },
    { name: "non-integer generation", input: agent((m) => (m.metadata.generation = "3")), field: "metadata.generation", message: /integer/ },
    { name: "unknown top-level field", input: agent((m) => (m.specs = {})), field: "specs", message: /unknown field/ },
    { name: "unknown metadata field", input: agent((m) => (m.metadata.label = {})), field: "metadata.label", message: /unknown field/ },
    { name: "unknown field in spec (typo)", input: agent((m) => (m.spec.modle = ["pai/echo"])), field: "spec.modle", message: /unknown field/ },
    { name: "unknown trigger kind", input: agent((m) => (m.spec.triggers = [{ cron: "* * * * *" }])), field: "spec.triggers[0].cron", message: /unknown field/ },
    { name: "unknown field inside webhook", input: agent(webhook({ allowCidrs: [] })), field: "spec.triggers[0].webhook.allowCidrs", message: /unknown field/ },
    { name: "missing spec", input: agent((m) => delete m.spec), field: "spec", message: /required/ },
    { name: "missing models", input: agent((m) => delete m.spec.models), field: "spec.models", message: /required/ },
    { name: "models empty", input: agent((m) => (m.spec.models = [])), field: "spec.models", message: /greater or equal to 1/ },
    { name: "models not a list", input: agent((m) => (m.spec.models = "anthropic/claude-sonnet-4-6")), field: "spec.models", message: /expected array/ },
    { name: "model with unknown prefix", input: agent((m) => (m.spec.models = ["foo/bar"])), field: "spec.models[0]", message: /unknown model "foo\/bar": use anthropic\/<model>, openai\/<model> or pai\/echo/ },
    { name: "model with no slash", input: agent((m) => (m.spec.models = ["claude"])), field: "spec.models[0]", message: /unknown model "claude": use anthropic\/<model>/ },
    { name: "model with nothing after the slash", input: agent((m) => (m.spec.models = ["anthropic/"])), field: "spec.models[0]", message: /unknown model "anthropic\/"/ },
    { name: "model with nothing before the slash", input: agent((m) => (m.spec.models = ["/claude"])), field: "spec.models[0]", message: /unknown model/ },
    { name: "unknown built-in model", input: agent((m) => (m.spec.models = ["pai/other"])), field: "spec.models[0]", message: /the only one is pai\/echo/ },
    { name: "bad model in second place", input: agent((m) => (m.spec.models = ["pai/echo", "foo/bar"])), field: "spec.models[1]", message: /unknown model "foo\/bar"/ },
    { name: "CIDR prefix too long", input: agent(webhook({ allowCIDRs: ["35.231.147.226/33"] })), field: "spec.triggers[0].webhook.allowCIDRs[0]", message: /"35\.231\.147\.226\/33" is not an IPv4 or IPv6 address or CIDR range/ },
    { name: "CIDR not an address", input: agent(webhook({ allowCIDRs: ["10.0.0.0/8", "not-an-ip"] })), field: "spec.triggers[0].webhook.allowCIDRs[1]", message: /"not-an-ip" is not an IPv4 or IPv6/ },
    { name: "linearSignatureSecret as a number", input: agent(webhook({ linearSignatureSecret: 42 })), field: "spec.triggers[0].webhook.linearSignatureSecret", message: /a string, or \{secretRef: \{name, key\}\}.*got number 42/ },
    { name: "linearSignatureSecret empty", input: agent(webhook({ linearSignatureSecret: "" })), field: "spec.triggers[0].webhook.linearSignatureSecret", message: /a string, or \{secretRef/ },
    { name: "secretRef missing key", input: agent(webhook({ linearSignatureSecret: { secretRef: { name: "s" } } })), field: "spec.triggers[0].webhook.linearSignatureSecret", message: /\{secretRef: \{name, key\}\}/ },
    { name: "timeoutSeconds 0", input: agent((m) => (m.spec.timeoutSeconds = 0)), field: "spec.timeoutSeconds", message: /greater or equal to 1/ },
    { name: "timeoutSeconds over a day", input: agent((m) => (m.spec.timeoutSeconds = 86401)), field: "spec.timeoutSeconds", message: /less or equal to 86400/ },
    { name: "env entry without a name", input: agent((m) => (m.spec.env = [{ value: "x" }])), field: "spec.env[0].name", message: /required/ },
    { name: "null", input: null, field: "", message: /expected an Agent object, got null/ },
    { name: "a string", input: "my-agent", field: "", message: /expected an Agent object, got string "my-agent"/ },
    { name: "an array", input: [parse(PRODUCT_PAGE)], field: "", message: /expected an Agent object, got a list/ },
  ];

  test.each(invalid)("$name → $field", ({ input, field, message }) => {
    const problems = agentProblems(input);
    expect(problems.map((p) => p.field)).toContain(field);
    const p = problems.find((q) => q.field === field)!;
    expect(p.message).toMatch(message);
  });

  test.each(invalid)("validateAgent throws InvalidError for $name", ({ input, field }) => {
    let err: unknown;
    try {
      validateAgent(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidError);
    const invalidErr = err as InvalidError;
    expect(invalidErr.status).toBe(422);
    expect(invalidErr.problems.map((p) => p.field)).toContain(field);
    if (field) expect(invalidErr.message).toContain(`${field}: `);
  });

  test("every bad model is reported, each with its own index", () => {
    const problems = agentProblems(agent((m) => (m.spec.models = ["x/y", "pai/echo", "openai/"])));
    expect(problems.map((p) => p.field)).toEqual(["spec.models[0]", "spec.models[2]"]);
  });

  test("the error message names the agent and every problem", () => {
    const bad = agent((m) => (m.spec.models = ["foo/bar", "claude"]));
    expect(() => validateAgent(bad)).toThrow(/^Agent "my-agent" is invalid: spec\.models\[0\]: .*; spec\.models\[1\]: /);
  });

  test("an unnamed agent is labelled (unnamed)", () => {
    expect(() => validateAgent(null)).toThrow(/^Agent \(unnamed\) is invalid: expected an Agent object/);
  });

  // A missing name must not hide a problem in another metadata field whose name starts with "name".
  test("a missing name does not hide a bad namespace", () => {
    const problems = agentProblems(agent((m) => (m.metadata = { namespace: 5 })));
    expect(problems.map((p) => p.field).sort()).toEqual(["metadata.name", "metadata.namespace"]);
  });
});

describe("pointerToField / fieldToPath", () => {
  const cases: { pointer: string; field: string; path: (string | number)[] }[] = [
    { pointer: "", field: "", path: [] },
    { pointer: "/kind", field: "kind", path: ["kind"] },
    { pointer: "/metadata/name", field: "metadata.name", path: ["metadata", "name"] },
    { pointer: "/spec/models/0", field: "spec.models[0]", path: ["spec", "models", 0] },
    { pointer: "/spec/triggers/12/webhook/allowCIDRs/3", field: "spec.triggers[12].webhook.allowCIDRs[3]", path: ["spec", "triggers", 12, "webhook", "allowCIDRs", 3] },
  ];

  test.each(cases)("$pointer ↔ $field", ({ pointer, field, path }) => {
    expect(pointerToField(pointer)).toBe(field);
    expect(fieldToPath(field)).toEqual(path);
  });

  test("JSON-pointer escapes are decoded", () => {
    expect(pointerToField("/metadata/labels/pai.io~1agent")).toBe("metadata.labels.pai.io/agent");
    expect(pointerToField("/metadata/annotations/a~0b")).toBe("metadata.annotations.a~b");
  });

  test("array indices become numbers, names stay strings", () => {
    const path = fieldToPath("spec.env[1].name");
    expect(path).toEqual(["spec", "env", 1, "name"]);
    expect(typeof path[2]).toBe("number");
  });
});

describe("hasWebhook", () => {
  const cases: { name: string; spec: AgentSpec; expected: boolean }[] = [
    { name: "no triggers", spec: { models: ["pai/echo"] }, expected: false },
    { name: "empty triggers", spec: { models: ["pai/echo"], triggers: [] }, expected: false },
    { name: "a trigger without webhook", spec: { models: ["pai/echo"], triggers: [{}] }, expected: false },
    { name: "an empty webhook", spec: { models: ["pai/echo"], triggers: [{ webhook: {} }] }, expected: true },
    { name: "webhook in the second trigger", spec: { models: ["pai/echo"], triggers: [{}, { webhook: { maxPending: 2 } }] }, expected: true },
  ];
  test.each(cases)("$name → $expected", ({ spec, expected }) => {
    expect(hasWebhook(spec)).toBe(expected);
  });
});

describe("tools, MCP servers and limits", () => {
  const fields = (m: Manifest) => agentProblems(m).map((p) => p.field);

  test("a full tool agent is accepted", () => {
    const input = validateAgent(
      agent((m) => {
        m.spec.tools = ["bash", "read_file", "web_fetch"];
        m.spec.maxTurns = 20;
        m.spec.maxTokens = 2048;
        m.spec.sandbox = { network: false };
        m.spec.mcpServers = [
          { name: "files", command: "/usr/bin/env", args: ["node", "server.js"], env: [{ name: "TOKEN", valueFrom: { secretKeyRef: { name: "s", key: "k" } } }], tools: ["read"] },
          { name: "remote-1", url: "http://127.0.0.1:9000/mcp", headers: [{ name: "Authorization", value: "Bearer x" }] },
        ];
      }),
    );
    expect(input.spec.tools).toEqual(["bash", "read_file", "web_fetch"]);
    expect(input.spec.mcpServers).toHaveLength(2);
  });

  test("unknown and repeated tools, bad limits", () => {
    expect(fields(agent((m) => (m.spec.tools = ["bash", "rm_rf"])))).toContain("spec.tools[1]");
    expect(agentProblems(agent((m) => (m.spec.tools = ["bash", "bash"])))).toContainEqual({ field: "spec.tools[1]", message: '"bash" is listed twice' });
    expect(fields(agent((m) => (m.spec.maxTurns = 0)))).toContain("spec.maxTurns");
    expect(fields(agent((m) => (m.spec.maxTokens = 1.5)))).toContain("spec.maxTokens");
    expect(fields(agent((m) => (m.spec.sandbox = { network: "no" })))).toContain("spec.sandbox.network");
    expect(fields(agent((m) => (m.spec.sandbox = { filesystem: "rw" })))).toContain("spec.sandbox.filesystem");
  });

  test("MCP servers: names, URL schemes, env names, header names and values, NUL bytes", () => {
    const server = (srv: unknown) => agent((m) => (m.spec.mcpServers = [srv]));
    expect(fields(server({ name: "has space", command: "x" }))).toContain("spec.mcpServers[0]");
    expect(fields(server({ name: "a".repeat(33), command: "x" }))).toContain("spec.mcpServers[0]");
    expect(agentProblems(server({ name: "f", url: "ftp://example.com/mcp" }))).toContainEqual({
      field: "spec.mcpServers[0].url",
      message: '"ftp://example.com/mcp" is not an http:// or https:// URL',
    });
    expect(fields(server({ name: "e", command: "x", env: [{ name: "A=B", value: "1" }] }))).toContain("spec.mcpServers[0]");
    expect(fields(server({ name: "h", url: "http://x/mcp", headers: [{ name: "X Bad", value: "1" }] }))).toContain("spec.mcpServers[0]");
    expect(fields(server({ name: "h", url: "http://x/mcp", headers: [{ name: "X-Ok", value: "a\r\nInjected: 1" }] }))).toContain("spec.mcpServers[0]");
    expect(fields(server({ name: "n", command: "x\u0000y" }))).toContain("spec.mcpServers[0]");
    expect(fields(server({ name: "n", command: "x", args: ["ok", "bad\u0000"] }))).toContain("spec.mcpServers[0]");
    expect(fields(server({ name: "both", command: "x", url: "http://x" }))).toContain("spec.mcpServers[0]");
    const twice = agent((m) => (m.spec.mcpServers = [{ name: "a", command: "x" }, { name: "a", url: "http://x/mcp" }]));
    expect(agentProblems(twice)).toContainEqual({ field: "spec.mcpServers[1].name", message: '"a" is used by another server' });
  });
});
