/**
 * Checks a value against a response schema of src/api/openapi/schemas.ts with every object closed
 * (no property beyond those listed), so a response that grew a field its schema lacks is caught.
 * Returns the problems as "path: message" (empty when the value fits).
 */
import { FormatRegistry, type TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";

// The formats the schemas use (TypeBox knows none by itself).
if (!FormatRegistry.Has("date-time")) FormatRegistry.Set("date-time", (v) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(v) && !Number.isNaN(Date.parse(v)));
if (!FormatRegistry.Has("byte")) FormatRegistry.Set("byte", (v) => /^[A-Za-z0-9+/]*={0,2}$/.test(v) && v.length % 4 === 0);

type Node = Record<string | symbol, unknown>;

/** A copy of `schema` in which every object without additionalProperties/patternProperties is closed. Spread keeps TypeBox's symbols. */
export function closed<S extends TSchema>(schema: S): S {
  const walk = (s: unknown): unknown => {
    if (Array.isArray(s)) return s.map(walk);
    if (typeof s !== "object" || s === null) return s;
    const c: Node = { ...(s as Node) };
    for (const k of ["items", "not", "additionalProperties"]) if (typeof c[k] === "object") c[k] = walk(c[k]);
    for (const k of ["anyOf", "oneOf", "allOf"]) if (Array.isArray(c[k])) c[k] = walk(c[k]);
    for (const k of ["properties", "patternProperties"])
      if (typeof c[k] === "object" && c[k] !== null) c[k] = Object.fromEntries(Object.entries(c[k] as object).map(([n, p]) => [n, walk(p)]));
    if (c.type === "object" && c.additionalProperties === undefined && c.patternProperties === undefined) c.additionalProperties = false;
    return c;
  };
  return walk(schema) as S;
}

export function checkClosed(schema: TSchema, value: unknown): string[] {
  const strict = closed(schema);
  if (Value.Check(strict, value)) return [];
  return [...Value.Errors(strict, value)].slice(0, 10).map((e) => `${e.path}: ${e.message}`);
}
