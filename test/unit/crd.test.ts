/**
 * The Agent CRD: the checked-in file is what scripts/gen-crd.ts makes from src/domain/agent.ts
 * now, its schema is structural (what the apiserver accepts), and it declares every field pai
 * accepts, so the apiserver's pruning would drop nothing of a valid agent.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { validateAgent } from "../../src/domain/agent";
import { agentCrd, agentCrdYaml, CRD_PATH, re2Pattern, structuralProblems, toStructural } from "../../src/api/openapi/crd";
import { removeDir, ROOT, tempDir } from "../helpers";

type Schema = Record<string, any>;
const crd = agentCrd();
const schema = crd.spec.versions[0]!.schema.openAPIV3Schema as Schema;

/** The fields of `value` that a structural schema would prune (not declared, not preserved). */
function pruned(value: unknown, s: Schema, path = ""): string[] {
  // The apiserver keeps metadata as ObjectMeta whatever the schema says.
  if (path === ".metadata") return [];
  if (s["x-kubernetes-preserve-unknown-fields"] === true || value === null || typeof value !== "object") return [];
  if (Array.isArray(value)) return s.items ? value.flatMap((v, i) => pruned(v, s.items, `${path}[${i}]`)) : [];
  return Object.entries(value).flatMap(([k, v]) => {
    const sub = s.properties?.[k] ?? (typeof s.additionalProperties === "object" ? s.additionalProperties : undefined);
    return sub ? pruned(v, sub, `${path}.${k}`) : [`${path}.${k}`];
  });
}

/** An agent that sets every field the Agent schema has, both forms of every union. */
const everything = {
  apiVersion: "pai.io/v1",
  kind: "Agent",
  metadata: { name: "full", namespace: "default", labels: { a: "b" }, annotations: { c: "d" } },
  spec: {
    models: ["anthropic/claude-sonnet-4-6", "openai/gpt-4o", "pai/echo"],
    system: "You are helpful.",
    triggers: [
      { webhook: {} },
      {
        webhook: {
          allowCIDRs: ["10.0.0.0/8"],
          linearSignatureSecret: "s3cret",
          githubSignatureSecret: { secretRef: { name: "gh", key: "secret" } },
          allowedEnv: ["BATCH_DATE"],
          maxPending: 5,
        },
      },
    ],
    env: [{ name: "A", value: "1" }],
    timeoutSeconds: 60,
    maxConcurrentSessions: 2,
    tools: ["bash", "read_file"],
    mcpServers: [
      { name: "local", command: "node", args: ["server.js"], env: [{ name: "K", value: "v" }, { name: "T", valueFrom: { secretKeyRef: { name: "s", key: "k" } } }], tools: ["one"] },
      { name: "remote", url: "https://mcp.example.com/mcp", headers: [{ name: "Authorization", valueFrom: { secretKeyRef: { name: "s", key: "k" } } }, { name: "X-A", value: "b" }] },
    ],
    maxTurns: 10,
    maxTokens: 1000,
    sandbox: { network: false },
  },
  status: {
    webhookUrl: "http://localhost:8080/webhooks/default/full/abc",
    observedGeneration: 1,
    conditions: [{ type: "Ready", status: "True", reason: "Reconciled", message: "", lastTransitionTime: "2026-01-01T00:00:00Z", observedGeneration: 1 }],
  },
};

describe("the Agent CRD", () => {
  test("the checked-in file is what the generator makes now (run npm run gen:crd after changing the Agent schema)", () => {
    expect(readFileSync(join(ROOT, CRD_PATH), "utf8")).toBe(agentCrdYaml());
  });

  test("npm run gen:crd writes it, and --check says whether a file is current", () => {
    const run = (args: string[]) => Bun.spawnSync([process.execPath, join(ROOT, "scripts", "gen-crd.ts"), ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    expect(run(["--check"]).exitCode).toBe(0);
    const dir = tempDir("pai-crd-");
    try {
      const out = join(dir, "crd.yaml");
      expect(run(["--out", out]).exitCode).toBe(0);
      expect(readFileSync(out, "utf8")).toBe(agentCrdYaml());
      writeFileSync(out, agentCrdYaml().replace("minItems: 1", "minItems: 2"));
      const stale = run(["--check", "--out", out]);
      expect(stale.exitCode).toBe(1);
      expect(stale.stderr.toString()).toContain("out of date: run npm run gen:crd");
    } finally {
      removeDir(dir);
    }
  });

  test("the file is one CustomResourceDefinition for agents.pai.io, served and stored as v1, with status and printer columns", () => {
    const doc = parse(readFileSync(join(ROOT, CRD_PATH), "utf8"));
    expect(doc.apiVersion).toBe("apiextensions.k8s.io/v1");
    expect(doc.kind).toBe("CustomResourceDefinition");
    expect(doc.metadata.name).toBe("agents.pai.io");
    expect(doc.spec.group).toBe("pai.io");
    expect(doc.spec.scope).toBe("Namespaced");
    expect(doc.spec.names).toMatchObject({ kind: "Agent", listKind: "AgentList", plural: "agents", singular: "agent" });
    expect(doc.spec.versions).toHaveLength(1);
    const v = doc.spec.versions[0];
    expect(v).toMatchObject({ name: "v1", served: true, storage: true, subresources: { status: {} } });
    expect(v.additionalPrinterColumns.map((c: { name: string }) => c.name)).toEqual(["Models", "Webhook URL", "Ready", "Age"]);
    expect(v.additionalPrinterColumns.find((c: { name: string }) => c.name === "Age").type).toBe("date");
    expect(Object.keys(v.schema.openAPIV3Schema.properties)).toEqual(["apiVersion", "kind", "metadata", "spec", "status"]);
  });

  test("the schema is structural: types everywhere, nothing the apiserver forbids, junctors only constrain", () => {
    expect(structuralProblems(schema)).toEqual([]);
    const text = JSON.stringify(schema);
    for (const forbidden of ['"$ref"', '"$id"', '"const"', '"patternProperties"', '"additionalProperties":false', '"uniqueItems":true', '"errorMessage"', "\\\\u0000"])
      expect(text).not.toContain(forbidden);
  });

  test("the structural check finds what the apiserver would refuse", () => {
    expect(structuralProblems({ type: "object", properties: { a: { type: "string", const: "x" } } })).toEqual([".a: const is not a field of a CRD schema"]);
    expect(structuralProblems({ type: "object", additionalProperties: false, properties: { a: { type: "string" } } })).toContain("<root>: additionalProperties: false is not allowed");
    expect(structuralProblems({ type: "object", properties: { a: {} } })).toEqual([".a: no type"]);
    expect(structuralProblems({ type: "object", properties: { a: { type: "object" } } })).toEqual([".a: an object with neither properties nor x-kubernetes-preserve-unknown-fields"]);
    expect(structuralProblems({ type: "object", properties: { a: { type: "string" } }, oneOf: [{ type: "object" }] })).toEqual([".oneOf[0]: type inside allOf/anyOf/oneOf/not"]);
    expect(structuralProblems({ type: "object", properties: { a: { type: "string" } }, anyOf: [{ properties: { b: { minLength: 1 } } }] })).toEqual([".anyOf[0].b: constrained inside a junctor but not declared outside it"]);
    expect(structuralProblems({ type: "string", pattern: "^[^\\u0000]*$" })).toEqual(["<root>: pattern uses \\u, which RE2 does not know"]);
  });

  test("unions become what a structural schema can say", () => {
    // Literals: an enum.
    expect(toStructural({ anyOf: [{ const: "a", type: "string" }, { const: "b", type: "string" }] })).toEqual({ type: "string", enum: ["a", "b"] });
    // A string or an object: kept as sent.
    expect(toStructural({ anyOf: [{ type: "string" }, { type: "object", properties: {} }], description: "d" })).toEqual({ description: "d", "x-kubernetes-preserve-unknown-fields": true });
    // Objects: one object with all fields, and a oneOf of what each form needs.
    const merged = toStructural({
      anyOf: [
        { type: "object", required: ["name", "value"], properties: { name: { type: "string" }, value: { type: "string" } }, additionalProperties: false },
        { type: "object", required: ["name", "from"], properties: { name: { type: "string" }, from: { type: "string" } }, additionalProperties: false },
      ],
    });
    expect(merged).toEqual({
      type: "object",
      properties: { name: { type: "string" }, value: { type: "string" }, from: { type: "string" } },
      required: ["name"],
      oneOf: [
        { required: ["value"], not: { anyOf: [{ required: ["from"] }] } },
        { required: ["from"], not: { anyOf: [{ required: ["value"] }] } },
      ],
    });
    expect(structuralProblems(merged)).toEqual([]);
    expect(re2Pattern("^[^\\r\\n\\u0000]*$")).toBe("^[^\\r\\n\\x{0000}]*$");
  });

  test("an agent with every field is valid for pai, and the CRD declares all of it (the apiserver would prune nothing)", () => {
    expect(() => validateAgent(everything)).not.toThrow();
    expect(pruned(everything, schema)).toEqual([]);
    // The check can fail: a field the CRD does not declare is found.
    expect(pruned({ ...everything, spec: { ...everything.spec, extra: 1 } }, schema)).toEqual([".spec.extra"]);
  });

  test("every example manifest fits the CRD", () => {
    for (const f of ["echo.yaml", "reviewer.yaml", "worker.yaml"]) {
      const doc = parse(readFileSync(join(ROOT, "manifests", "examples", f), "utf8"));
      expect(pruned(doc, schema)).toEqual([]);
    }
  });
});
