/**
 * PATCH bodies, as kubectl sends them:
 * - JSON merge patch (RFC 7386, `application/merge-patch+json`): objects merge, `null` deletes,
 *   everything else (lists too) replaces;
 * - strategic merge patch (`application/strategic-merge-patch+json`), which older kubectl sends
 *   for core types: pai's types have no lists merged by key, so it is a merge patch whose
 *   ordering hints (`$setElementOrder/…`, `$retainKeys`) are dropped and `$patch: replace|delete`
 *   is honoured; other directives are refused;
 * - JSON patch (RFC 6902, `application/json-patch+json`): add, remove, replace, move, copy, test,
 *   at most MAX_JSON_PATCH_OPS operations, all or nothing.
 * Inputs are parsed JSON (nesting already bounded by the body parser). Keys are written as own
 * properties, so `__proto__` in a body is a field name like any other, never a prototype.
 */
import { BadRequestError, InvalidError } from "../../domain/errors";

export const MAX_JSON_PATCH_OPS = 1000;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function setOwn(o: Record<string, unknown>, key: string, value: unknown) {
  Object.defineProperty(o, key, { value, writable: true, enumerable: true, configurable: true });
}

const clone = <T>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T));

/** RFC 7386: `patch` applied to `target` (neither is modified). */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return clone(patch);
  const out: Record<string, unknown> = isObject(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else setOwn(out, k, mergePatch(Object.hasOwn(out, k) ? out[k] : undefined, v));
  }
  return out;
}

/** A strategic merge patch for types with no merge keys: a merge patch with its directives read. */
export function strategicMergePatch(target: unknown, patch: unknown, path = ""): unknown {
  if (!isObject(patch)) return clone(patch);
  const directive = patch.$patch;
  if (directive !== undefined) {
    if (directive === "delete") return undefined;
    if (directive !== "replace" && directive !== "merge") throw new BadRequestError(`${path || "patch"}: unsupported $patch directive ${JSON.stringify(directive)}`);
  }
  const out: Record<string, unknown> = isObject(target) && directive !== "replace" ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k === "$patch" || k === "$retainKeys" || k.startsWith("$setElementOrder/")) continue;
    if (k.startsWith("$")) throw new BadRequestError(`${path ? `${path}.` : ""}${k}: strategic merge patch directive not supported here; send a merge patch (--type merge)`);
    if (v === null) {
      delete out[k];
      continue;
    }
    const next = strategicMergePatch(Object.hasOwn(out, k) ? out[k] : undefined, v, path ? `${path}.${k}` : k);
    if (next === undefined) delete out[k];
    else setOwn(out, k, next);
  }
  return out;
}

interface Op {
  op: string;
  path: string;
  from?: string;
  value?: unknown;
}

/** RFC 6901: `/a/b~1c/0` → ["a", "b/c", "0"]. */
export function parsePointer(pointer: unknown, where: string): string[] {
  if (typeof pointer !== "string") throw new BadRequestError(`${where}: must be a JSON pointer string`);
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw new BadRequestError(`${where}: JSON pointer ${JSON.stringify(pointer.slice(0, 100))} must start with '/'`);
  return pointer
    .slice(1)
    .split("/")
    .map((s) => {
      if (/~[^01]|~$/.test(s)) throw new BadRequestError(`${where}: JSON pointer ${JSON.stringify(pointer.slice(0, 100))} has '~' not followed by 0 or 1`);
      return s.replace(/~1/g, "/").replace(/~0/g, "~");
    });
}

/** Bytes of a value as JSON, counted up to `cap` (beyond it the count stops). */
function sizeOf(v: unknown, cap: number): number {
  let total = 0;
  const walk = (x: unknown) => {
    if (total > cap) return;
    if (Array.isArray(x)) {
      total += 2;
      for (const e of x) walk(e);
    } else if (isObject(x)) {
      total += 2;
      for (const [k, e] of Object.entries(x)) {
        total += k.length + 4;
        walk(e);
      }
    } else total += typeof x === "string" ? x.length + 2 : 8;
  };
  walk(v);
  return total;
}

/**
 * RFC 6902: `ops` applied to a copy of `doc`. A malformed patch is 400; one that does not apply
 * (a missing path, a failed test) is 422. `maxBytes` bounds what add and copy may build, so a few
 * operations cannot grow a document exponentially, and (eight times over) what tests compare.
 */
export function jsonPatch(doc: unknown, ops: unknown, maxBytes: number): unknown {
  if (!Array.isArray(ops)) throw new BadRequestError("a JSON patch must be a list of operations ([{op, path, value}, …])");
  if (ops.length > MAX_JSON_PATCH_OPS) throw new BadRequestError(`a JSON patch may have at most ${MAX_JSON_PATCH_OPS} operations (got ${ops.length})`);
  let root: unknown = clone(doc);
  let budget = maxBytes;
  // What `test` may compare in all: a thousand tests of a large document would otherwise cost seconds.
  let compared = 8 * maxBytes;
  const fail = (i: number, path: string, message: string) => new InvalidError("JSON patch", [{ field: path, message: `JSON patch operation ${i}: ${message}` }]);

  const parentOf = (segs: string[], i: number, pointer: string): { parent: unknown; key: string } => {
    let at: unknown = root;
    for (const s of segs.slice(0, -1)) {
      if (Array.isArray(at)) at = /^(0|[1-9]\d*)$/.test(s) ? at[Number(s)] : undefined;
      else if (isObject(at)) at = Object.hasOwn(at, s) ? at[s] : undefined;
      else at = undefined;
      if (at === undefined) throw fail(i, pointer, "path does not exist");
    }
    return { parent: at, key: segs[segs.length - 1]! };
  };
  const get = (segs: string[], i: number, pointer: string): unknown => {
    if (!segs.length) return root;
    const { parent, key } = parentOf(segs, i, pointer);
    let v: unknown;
    if (Array.isArray(parent)) v = /^(0|[1-9]\d*)$/.test(key) ? parent[Number(key)] : undefined;
    else if (isObject(parent)) v = Object.hasOwn(parent, key) ? parent[key] : undefined;
    if (v === undefined) throw fail(i, pointer, "path does not exist");
    return v;
  };
  const index = (arr: unknown[], key: string, i: number, pointer: string, adding: boolean): number => {
    if (adding && key === "-") return arr.length;
    if (!/^(0|[1-9]\d*)$/.test(key)) throw fail(i, pointer, `"${key.slice(0, 40)}" is not an index of the list`);
    const n = Number(key);
    if (n > arr.length || (!adding && n === arr.length)) throw fail(i, pointer, `index ${n} is out of range (the list has ${arr.length} items)`);
    return n;
  };
  const remove = (segs: string[], i: number, pointer: string): unknown => {
    if (!segs.length) throw fail(i, pointer, "cannot remove the whole document");
    const { parent, key } = parentOf(segs, i, pointer);
    if (Array.isArray(parent)) return parent.splice(index(parent, key, i, pointer, false), 1)[0];
    if (isObject(parent) && Object.hasOwn(parent, key)) {
      const v = parent[key];
      delete parent[key];
      return v;
    }
    throw fail(i, pointer, "path does not exist");
  };
  const add = (segs: string[], value: unknown, i: number, pointer: string) => {
    budget -= sizeOf(value, budget + 1);
    if (budget < 0) throw new BadRequestError(`the JSON patch makes a document larger than ${maxBytes} bytes`);
    if (!segs.length) {
      root = value;
      return;
    }
    const { parent, key } = parentOf(segs, i, pointer);
    if (Array.isArray(parent)) parent.splice(index(parent, key, i, pointer, true), 0, value);
    else if (isObject(parent)) setOwn(parent, key, value);
    else throw fail(i, pointer, "the parent is not an object or a list");
  };

  ops.forEach((raw, i) => {
    if (!isObject(raw)) throw new BadRequestError(`JSON patch operation ${i}: must be an object {op, path, …}`);
    const op = raw as unknown as Op;
    const segs = parsePointer(op.path, `JSON patch operation ${i} path`);
    const path = op.path;
    switch (op.op) {
      case "add":
      case "replace":
      case "test":
        if (!Object.hasOwn(raw, "value")) throw new BadRequestError(`JSON patch operation ${i} (${op.op}): needs a value`);
    }
    switch (op.op) {
      case "add":
        add(segs, clone(op.value), i, path);
        break;
      case "remove":
        remove(segs, i, path);
        break;
      case "replace":
        get(segs, i, path);
        if (!segs.length) root = clone(op.value);
        else {
          remove(segs, i, path);
          add(segs, clone(op.value), i, path);
        }
        break;
      case "move": {
        const from = parsePointer(op.from, `JSON patch operation ${i} from`);
        if (segs.length > from.length && from.every((s, j) => segs[j] === s)) throw fail(i, path, "cannot move a value into itself");
        const v = remove(from, i, op.from!);
        add(segs, v, i, path);
        break;
      }
      case "copy": {
        const from = parsePointer(op.from, `JSON patch operation ${i} from`);
        add(segs, clone(get(from, i, op.from!)), i, path);
        break;
      }
      case "test": {
        const actual = get(segs, i, path);
        compared -= sizeOf(actual, compared + 1);
        if (compared < 0) throw new BadRequestError(`the JSON patch's tests compare more than ${8 * maxBytes} bytes in all; test fewer or smaller values`);
        if (JSON.stringify(canonical(actual)) !== JSON.stringify(canonical(op.value))) throw fail(i, path, "test failed: the value differs");
        break;
      }
      default:
        throw new BadRequestError(`JSON patch operation ${i}: unknown op ${JSON.stringify(op.op)?.slice(0, 40)} (use add, remove, replace, move, copy or test)`);
    }
  });
  return root;
}

/** The value with object keys sorted, so equal documents compare equal as text. */
function canonical(v: unknown): Json {
  if (Array.isArray(v)) return v.map(canonical);
  if (isObject(v)) {
    const out: Record<string, Json> = {};
    for (const k of Object.keys(v).sort()) setOwn(out, k, canonical(v[k]));
    return out;
  }
  return v as Json;
}
