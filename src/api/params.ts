/**
 * What the management routes read from a request: path parameters, validated as DNS-1123 labels
 * with a 400 that says why, and bodies (JSON or YAML), parsed only within fixed costs.
 */
import { t } from "elysia";
import type { TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { BadRequestError, UnsupportedMediaTypeError } from "../domain/errors";
import { dnsLabelProblem } from "../domain/names";
import { jsonTooDeep, MAX_NESTING } from "../lib/nesting";

export const NamespaceParams = t.Object({ namespace: t.String() });
export const NamedParams = t.Object({ namespace: t.String(), name: t.String() });

export function checkLabel(kind: string, value: string): string {
  const problem = dnsLabelProblem(value);
  if (problem) throw new BadRequestError(`invalid ${kind} name: ${problem}`);
  return value;
}

/**
 * YAML documents a body may hold while being parsed. A body is one resource; a few empty
 * documents around it (`---` lines, comments) are tolerated, a flood of them is not parsed.
 */
export const MAX_BODY_DOCUMENTS = 8;

const isJson = (type: string) => type === "application/json" || /^application\/[-.\w]+\+json$/.test(type);
const isYaml = (type: string) => /^(application|text)\/(x-)?yaml$/.test(type);
const tooDeep = `request body: collections are nested more than ${MAX_NESTING} levels deep; flatten the document`;

/**
 * A management API body as a value: JSON or YAML (one document), checked for nesting before it is
 * parsed, because parsing is where absurd nesting costs seconds. Undefined when there is no body.
 */
export async function parseBody(request: Request, contentType: string): Promise<unknown> {
  const type = contentType.trim().toLowerCase();
  const text = await request.text();
  if (!type) {
    if (!text) return undefined;
    throw new UnsupportedMediaTypeError("request body has no Content-Type: send it as application/json or application/yaml");
  }
  if (isJson(type)) {
    // null, not undefined: Elysia would otherwise try to read the (already read) body itself.
    if (!text.trim()) return null;
    if (jsonTooDeep(text)) throw new BadRequestError(tooDeep);
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new BadRequestError(`request body is not valid JSON: ${(err as Error).message}`);
    }
  }
  if (isYaml(type)) {
    // Loaded on first use: most servers never get a YAML body.
    const { parseYamlFile, resourceDocs, yamlTooDeepAt } = await import("../lib/yaml");
    if (yamlTooDeepAt(text) !== -1) throw new BadRequestError(tooDeep);
    const file = parseYamlFile(text, { maxDocuments: MAX_BODY_DOCUMENTS });
    if (file.refused?.reason === "documents") throw new BadRequestError(`expected exactly one YAML document in the body, got more than ${MAX_BODY_DOCUMENTS}`);
    const docs = resourceDocs(file);
    if (docs.length !== 1) throw new BadRequestError(`expected exactly one YAML document in the body, got ${docs.length}`);
    const d = docs[0]!;
    if (d.error) throw new BadRequestError(`invalid YAML at line ${d.error.line ?? d.line}: ${d.error.message}`);
    return d.value;
  }
  throw new UnsupportedMediaTypeError(`Content-Type "${type}" is not accepted here: send the body as application/json or application/yaml`);
}

/**
 * Checks a parsed body against the route's schema as it was sent. Elysia's own check runs after
 * its cleaner, which turns a string where an object belongs into an object of its characters
 * (`"stringData": "abc"` would become the keys 0, 1, 2); checked first, it is a 400 instead.
 */
export function checkBody(schema: TSchema, value: unknown) {
  if (value === undefined || value === null || Value.Check(schema, value)) return;
  const causes = [...Value.Errors(schema, value)].slice(0, 10).map((e) => {
    const field = e.path.replace(/^\//, "").replace(/\//g, ".");
    return field ? `${field}: ${e.message}` : e.message;
  });
  throw new BadRequestError(`request body does not fit the schema: ${causes.join("; ")}`);
}
