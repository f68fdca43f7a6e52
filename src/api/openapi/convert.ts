/**
 * TypeBox schemas (JSON Schema as TypeBox writes it) → OpenAPI 3.0 Schema Objects. OpenAPI 3.0 is
 * a dialect of its own: no `const`, no `type: "null"` (it has `nullable`), no `patternProperties`,
 * boolean `exclusiveMinimum`, and no keywords it does not know (TypeBox's `$id`, our
 * `errorMessage`). Every schema of the documents goes through here, so they stay valid 3.0.
 */

export type Schema = Record<string, unknown>;

/** The Schema Object's keywords in OpenAPI 3.0; anything else is dropped (extensions `x-*` stay). */
const KEYWORDS: ReadonlySet<string> = new Set([
  "title", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern",
  "maxItems", "minItems", "uniqueItems", "maxProperties", "minProperties", "required", "enum", "type", "allOf", "oneOf", "anyOf",
  "not", "items", "properties", "additionalProperties", "description", "format", "default", "nullable", "readOnly", "writeOnly",
  "example", "deprecated", "$ref",
]);

const isObject = (v: unknown): v is Schema => typeof v === "object" && v !== null && !Array.isArray(v);

/** A branch that only says "null" (TypeBox's T.Null()). */
const isNull = (s: unknown) => isObject(s) && s.type === "null";
/** A branch that is one literal value (TypeBox's T.Literal). */
const isLiteral = (s: unknown): s is Schema => isObject(s) && "const" in s;

/** Schema objects (by identity) that are components, with their names. */
export type Refs = ReadonlyMap<object, string>;

/**
 * One TypeBox schema as an OpenAPI 3.0 schema. A schema in `refs` (that object, or a copy that
 * T.Optional made) becomes a `$ref` to its component: below the top always, at the top too with
 * `ref: true` (a component's own definition is converted with it false). TypeBox's own keys are
 * symbols, which Object.entries does not list, so they never reach the output.
 */
export function toOpenApiSchema(input: unknown, refs?: Refs, opts: { ref?: boolean } = {}): Schema {
  return isObject(input) ? convert(input, refs, !opts.ref) : {};
}

/**
 * The component `s` is. T.Optional(x) is a shallow copy of x (with a symbol added), so a copy whose
 * every field is the same value as a component's is that component too.
 */
function componentOf(s: Schema, refs: Refs): string | undefined {
  const exact = refs.get(s);
  if (exact !== undefined) return exact;
  const keys = Object.keys(s);
  for (const [c, name] of refs) {
    const ck = Object.keys(c);
    if (keys.length && ck.length === keys.length && keys.every((k) => (c as Schema)[k] === s[k])) return name;
  }
  return undefined;
}

function convert(s: Schema, refs: Refs | undefined, top: boolean): Schema {
  const name = top || !refs ? undefined : componentOf(s, refs);
  if (name !== undefined) return { $ref: `#/components/schemas/${name}` };
  const out: Schema = {};
  // A union: literals become an enum, a null branch becomes `nullable`, the rest stays anyOf.
  for (const key of ["anyOf", "oneOf"] as const) {
    const branches = s[key];
    if (!Array.isArray(branches)) continue;
    const nullable = branches.some(isNull);
    const rest = branches.filter((b) => !isNull(b));
    if (rest.length && rest.every(isLiteral) && new Set(rest.map((b) => b.type)).size === 1) {
      out.type = rest[0]!.type;
      out.enum = rest.map((b) => b.const);
    } else if (rest.length === 1) {
      Object.assign(out, convert(rest[0] as Schema, refs, false));
    } else {
      out[key] = rest.map((b) => convert(b as Schema, refs, false));
    }
    if (nullable) {
      if (Array.isArray(out[key])) out[key] = (out[key] as Schema[]).map((b) => ({ ...b, nullable: true }));
      else out.nullable = true;
    }
  }
  for (const [k, v] of Object.entries(s)) {
    if (k === "anyOf" || k === "oneOf") continue;
    if (k.startsWith("x-")) out[k] = v;
    else if (k === "const") out.enum = [v];
    else if (k === "examples" && Array.isArray(v) && v.length && !("example" in s)) out.example = v[0];
    else if (k === "type" && v === "null") out.nullable = true;
    else if (k === "exclusiveMinimum" && typeof v === "number") {
      out.minimum = v;
      out.exclusiveMinimum = true;
    } else if (k === "exclusiveMaximum" && typeof v === "number") {
      out.maximum = v;
      out.exclusiveMaximum = true;
    } else if (k === "patternProperties" && isObject(v)) {
      // TypeBox's Record: any key; the value schema is what every property must be.
      const values = Object.values(v);
      if (values.length === 1 && s.additionalProperties === undefined) out.additionalProperties = convert(values[0] as Schema, refs, false);
    } else if (k === "properties" && isObject(v)) {
      out.properties = Object.fromEntries(Object.entries(v).map(([name, p]) => [name, convert(p as Schema, refs, false)]));
    } else if ((k === "items" || k === "not") && isObject(v)) {
      out[k] = convert(v, refs, false);
    } else if (k === "additionalProperties") {
      out[k] = isObject(v) ? convert(v, refs, false) : v;
    } else if (k === "allOf" && Array.isArray(v)) {
      out[k] = v.map((b) => convert(b as Schema, refs, false));
    } else if (k === "required") {
      if (Array.isArray(v) && v.length) out[k] = v;
    } else if (KEYWORDS.has(k) && !(k in out)) out[k] = v;
  }
  return out;
}
