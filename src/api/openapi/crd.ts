/**
 * The CustomResourceDefinition of `agents.pai.io`, made from the same TypeBox schemas that
 * validate Agents (AgentSpec, AgentStatus). A CRD's schema must be *structural* (Kubernetes API
 * conventions, "Specifying a structural schema"): every field has a type; `anyOf`/`oneOf`/`not`
 * only constrain fields already declared outside them and carry no type, description, default,
 * nullable or additionalProperties; no `$ref`, `const`, `patternProperties`, `additionalProperties:
 * false` or `uniqueItems: true`; patterns are RE2 (the apiserver compiles them with Go). So: a
 * closed object lists its properties (the apiserver prunes the rest), a union of objects becomes
 * one object with every branch's fields plus a `oneOf` of what each branch requires, a union of
 * literals an enum, and a value that is a string or an object keeps unknown fields.
 */
import { stringify } from "yaml";
import { AgentSpec, AgentStatus } from "../../domain/agent";
import { AGENTS } from "./resources";

type Schema = Record<string, unknown>;

/** JSONSchemaProps fields the apiserver knows (what is not here would be dropped with a warning). */
const KEPT = new Set([
  "description", "type", "format", "title", "default", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength",
  "minLength", "pattern", "maxItems", "minItems", "multipleOf", "enum", "maxProperties", "minProperties", "required", "items",
  "allOf", "oneOf", "anyOf", "not", "properties", "additionalProperties", "nullable", "example",
]);

/** Fields a structural schema may not set inside allOf/anyOf/oneOf/not. */
const NOT_IN_JUNCTORS = ["type", "description", "default", "additionalProperties", "nullable", "title"];
const JUNCTORS = ["allOf", "anyOf", "oneOf", "not"] as const;

const isObject = (v: unknown): v is Schema => typeof v === "object" && v !== null && !Array.isArray(v);
const preserve = (description?: unknown): Schema => ({ ...(description ? { description } : {}), "x-kubernetes-preserve-unknown-fields": true });

/** A JavaScript pattern in RE2's syntax: `\uXXXX` → `\x{XXXX}` (RE2 has no \u). */
export const re2Pattern = (pattern: string) => pattern.replace(/\\u([0-9a-fA-F]{4})/g, "\\x{$1}");

/** One TypeBox schema as a structural schema. */
export function toStructural(input: unknown): Schema {
  if (!isObject(input)) return preserve();
  const s = input;
  const union = (s.anyOf ?? s.oneOf) as Schema[] | undefined;
  if (Array.isArray(union)) return structuralUnion(union, s.description);
  // T.Unknown(): any value, kept as sent.
  if (s.type === undefined) return preserve(s.description);
  const out: Schema = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === "const") out.enum = [v];
    else if (k === "pattern" && typeof v === "string") out.pattern = re2Pattern(v);
    else if (k === "properties" && isObject(v)) out.properties = Object.fromEntries(Object.entries(v).map(([n, p]) => [n, toStructural(p)]));
    else if (k === "items") out.items = toStructural(v);
    else if (k === "additionalProperties") {
      // false is the apiserver's default (pruning); a schema for every value stays.
      if (isObject(v)) out.additionalProperties = toStructural(v);
    } else if (k === "patternProperties" && isObject(v)) {
      const values = Object.values(v);
      if (values.length === 1) out.additionalProperties = toStructural(values[0]);
    } else if (k === "required") {
      if (Array.isArray(v) && v.length) out.required = v;
    } else if (k === "uniqueItems") {
      // Forbidden as true; a list of scalars that must not repeat is a set.
      if (v === true) out["x-kubernetes-list-type"] = "set";
    } else if (KEPT.has(k)) out[k] = v;
  }
  return out;
}

/** A union: literals → enum; objects → one object and a oneOf of required fields; anything else → preserved. */
function structuralUnion(branches: Schema[], description: unknown): Schema {
  const d = description ? { description } : {};
  if (branches.every((b) => "const" in b) && new Set(branches.map((b) => b.type)).size === 1)
    return { ...d, type: branches[0]!.type, enum: branches.map((b) => b.const) };
  if (!branches.every((b) => b.type === "object" && isObject(b.properties))) return preserve(description);
  const props = branches.map((b) => b.properties as Schema);
  const required = branches.map((b) => new Set((b.required as string[] | undefined) ?? []));
  const properties: Schema = {};
  for (const p of props)
    for (const [name, schema] of Object.entries(p)) {
      const converted = toStructural(schema);
      const seen = properties[name];
      // The same field in two branches with different shapes cannot be one typed field.
      properties[name] = seen === undefined || JSON.stringify(seen) === JSON.stringify(converted) ? converted : preserve();
    }
  const common = [...required[0]!].filter((r) => required.every((set) => set.has(r)));
  const out: Schema = { ...d, type: "object", properties, ...(common.length ? { required: common } : {}) };
  // Each branch: the fields only it requires, and none of the fields only other branches have.
  const choices = branches.map((_, i) => {
    const own = [...required[i]!].filter((r) => !common.includes(r));
    const others = Object.keys(properties).filter((n) => !(n in props[i]!));
    const choice: Schema = {};
    if (own.length) choice.required = own;
    if (others.length) choice.not = { anyOf: others.map((n) => ({ required: [n] })) };
    return choice;
  });
  if (choices.every((c) => Object.keys(c).length)) out.oneOf = choices;
  return out;
}

/** Why `schema` is not structural (empty when it is); `path` names where, for the message. */
export function structuralProblems(schema: unknown, path = "", inJunctor = false, outside?: Schema): string[] {
  const problems: string[] = [];
  if (!isObject(schema)) return [`${path || "<root>"}: not a schema`];
  const at = path || "<root>";
  for (const k of Object.keys(schema)) {
    if (!KEPT.has(k) && !k.startsWith("x-kubernetes-")) problems.push(`${at}: ${k} is not a field of a CRD schema`);
  }
  if (schema.additionalProperties === false) problems.push(`${at}: additionalProperties: false is not allowed`);
  if (schema.uniqueItems === true) problems.push(`${at}: uniqueItems: true is not allowed`);
  if (schema.properties && isObject(schema.additionalProperties)) problems.push(`${at}: properties and additionalProperties together`);
  if (typeof schema.pattern === "string" && /\\u[0-9a-fA-F]{4}/.test(schema.pattern)) problems.push(`${at}: pattern uses \\u, which RE2 does not know`);
  const preserved = schema["x-kubernetes-preserve-unknown-fields"] === true || schema["x-kubernetes-int-or-string"] === true;
  if (inJunctor) {
    for (const k of NOT_IN_JUNCTORS) if (k in schema) problems.push(`${at}: ${k} inside allOf/anyOf/oneOf/not`);
    // Fields constrained in a junctor must be declared outside it.
    for (const name of Object.keys((schema.properties as Schema | undefined) ?? {}))
      if (!outside || !isObject(outside.properties) || !(name in outside.properties)) problems.push(`${at}.${name}: constrained inside a junctor but not declared outside it`);
  } else {
    if (!schema.type && !preserved) problems.push(`${at}: no type`);
    // The root's metadata is ObjectMeta to the apiserver, whatever the schema says.
    if (schema.type === "object" && !schema.properties && !schema.additionalProperties && !preserved && path !== ".metadata")
      problems.push(`${at}: an object with neither properties nor x-kubernetes-preserve-unknown-fields`);
    if (schema.type === "array" && !schema.items) problems.push(`${at}: an array without items`);
  }
  for (const [name, p] of Object.entries((schema.properties as Schema | undefined) ?? {})) problems.push(...structuralProblems(p, `${path}.${name}`, inJunctor, outside && isObject(outside.properties) ? (outside.properties[name] as Schema) : undefined));
  if (isObject(schema.items)) problems.push(...structuralProblems(schema.items, `${path}[]`, inJunctor, outside?.items as Schema | undefined));
  if (isObject(schema.additionalProperties)) problems.push(...structuralProblems(schema.additionalProperties, `${path}{}`, inJunctor));
  for (const j of JUNCTORS) {
    const v = schema[j];
    const list = Array.isArray(v) ? v : v === undefined ? [] : [v];
    list.forEach((b, i) => problems.push(...structuralProblems(b, `${path}.${j}[${i}]`, true, inJunctor ? outside : schema)));
  }
  return problems;
}

/** The CRD, as an object. */
export function agentCrd() {
  const r = AGENTS;
  const openAPIV3Schema = {
    description: "An agent: models, a system prompt, triggers (a webhook URL), tools and limits. Its status holds the webhook URL and conditions.",
    type: "object",
    required: ["spec"],
    properties: {
      apiVersion: { description: "pai.io/v1", type: "string" },
      kind: { description: "Agent", type: "string" },
      metadata: { type: "object" },
      spec: toStructural(AgentSpec),
      status: toStructural(AgentStatus),
    },
  };
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${r.plural}.${r.group}` },
    spec: {
      group: r.group,
      names: {
        kind: r.kind,
        listKind: r.listKind,
        plural: r.plural,
        singular: r.singular,
        ...(r.shortNames?.length ? { shortNames: r.shortNames } : {}),
        ...(r.categories?.length ? { categories: r.categories } : {}),
      },
      scope: "Namespaced",
      versions: [
        {
          name: r.version,
          served: true,
          storage: true,
          schema: { openAPIV3Schema },
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: "Models", type: "string", jsonPath: ".spec.models", description: "Models to try, in order" },
            { name: "Webhook URL", type: "string", jsonPath: ".status.webhookUrl", description: "The secret URL that starts a session" },
            { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
        },
      ],
    },
  };
}

export const CRD_PATH = "manifests/kubernetes/agents.pai.io.yaml";

/** The CRD file as checked in. */
export function agentCrdYaml(): string {
  const header = [
    "# The Agent custom resource (agents.pai.io), for running pai's agents from a Kubernetes cluster.",
    "# Generated from src/domain/agent.ts by scripts/gen-crd.ts (npm run gen:crd): do not edit by hand.",
  ].join("\n");
  return `${header}\n${stringify(agentCrd(), { lineWidth: 0, aliasDuplicateObjects: false })}`;
}
