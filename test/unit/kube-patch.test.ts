/**
 * PATCH bodies: RFC 7386 merge patch (the RFC's own examples), strategic merge patch for types
 * without merge keys, RFC 6902 JSON patch (every op, atomicity, the bounds), and `__proto__` in a
 * body staying a plain field.
 */
import { describe, expect, test } from "bun:test";
import { BadRequestError, InvalidError } from "../../src/domain/errors";
import { jsonPatch, MAX_JSON_PATCH_OPS, mergePatch, parsePointer, strategicMergePatch } from "../../src/api/kube/patch";

describe("merge patch (RFC 7386)", () => {
  // The examples of RFC 7386, appendix A.
  test.each([
    [{ a: "b" }, { a: "c" }, { a: "c" }],
    [{ a: "b" }, { b: "c" }, { a: "b", b: "c" }],
    [{ a: "b" }, { a: null }, {}],
    [{ a: "b", b: "c" }, { a: null }, { b: "c" }],
    [{ a: ["b"] }, { a: "c" }, { a: "c" }],
    [{ a: "c" }, { a: ["b"] }, { a: ["b"] }],
    [{ a: { b: "c" } }, { a: { b: "d", c: null } }, { a: { b: "d" } }],
    [{ a: [{ b: "c" }] }, { a: [1] }, { a: [1] }],
    [["a", "b"], ["c", "d"], ["c", "d"]],
    [{ a: "b" }, ["c"], ["c"]],
    [{ a: "foo" }, null, null],
    [{ a: "foo" }, "bar", "bar"],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: "b", c: null }, { a: "b" }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ])("%j patched with %j is %j", (target, patch, want) => {
    expect(mergePatch(target, patch)).toEqual(want);
  });

  test("the target is not modified", () => {
    const target = { spec: { models: ["a"] } };
    mergePatch(target, { spec: { models: ["b"] } });
    expect(target).toEqual({ spec: { models: ["a"] } });
  });

  test("__proto__ in a patch is an own field, never the result's prototype", () => {
    const patched = mergePatch({ a: 1 }, JSON.parse('{"__proto__": {"polluted": true}}')) as Record<string, unknown>;
    expect(Object.getPrototypeOf(patched)).toBe(Object.prototype);
    expect((patched as { polluted?: boolean }).polluted).toBeUndefined();
    expect(Object.keys(patched)).toEqual(["a", "__proto__"]);
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
  });
});

describe("strategic merge patch (types without merge keys)", () => {
  test("is a merge patch", () => {
    expect(strategicMergePatch({ metadata: { labels: { a: "1" } }, data: { k: "v" } }, { metadata: { labels: { b: "2", a: null } } })).toEqual({
      metadata: { labels: { b: "2" } },
      data: { k: "v" },
    });
  });

  test("ordering hints are dropped; $patch replace and delete are honoured", () => {
    expect(strategicMergePatch({ a: { x: 1, y: 2 }, b: 1 }, { a: { $patch: "replace", z: 3 }, "$setElementOrder/c": [], $retainKeys: ["a"] })).toEqual({ a: { z: 3 }, b: 1 });
    expect(strategicMergePatch({ a: { x: 1 }, b: 1 }, { a: { $patch: "delete" } })).toEqual({ b: 1 });
  });

  test("other directives are a 400", () => {
    expect(() => strategicMergePatch({}, { $deleteFromPrimitiveList: [] })).toThrow(BadRequestError);
    expect(() => strategicMergePatch({}, { a: { $patch: "explode" } })).toThrow("unsupported $patch directive");
  });
});

describe("JSON patch (RFC 6902)", () => {
  const doc = () => ({ metadata: { name: "x", labels: { a: "1" } }, spec: { models: ["m1", "m2"], "a/b": 1, "m~n": 2 } });
  const apply = (ops: unknown, d: unknown = doc()) => jsonPatch(d, ops, 1 << 20);

  test("add, remove, replace, move, copy and test", () => {
    expect(
      apply([
        { op: "add", path: "/spec/models/1", value: "inserted" },
        { op: "add", path: "/spec/models/-", value: "last" },
        { op: "remove", path: "/metadata/labels/a" },
        { op: "replace", path: "/metadata/name", value: "y" },
        { op: "move", from: "/spec/a~1b", path: "/spec/moved" },
        { op: "copy", from: "/spec/m~0n", path: "/spec/copied" },
        { op: "test", path: "/spec/copied", value: 2 },
        { op: "test", path: "/metadata", value: { labels: {}, name: "y" } },
      ]),
    ).toEqual({ metadata: { name: "y", labels: {} }, spec: { models: ["m1", "inserted", "m2", "last"], "m~n": 2, moved: 1, copied: 2 } });
  });

  test("the root can be replaced, the document is not modified", () => {
    const d = doc();
    expect(apply([{ op: "replace", path: "", value: { x: 1 } }], d)).toEqual({ x: 1 });
    expect(d).toEqual(doc());
  });

  test("all or nothing: a failing op leaves nothing applied (the input is never touched)", () => {
    const d = doc();
    expect(() => apply([{ op: "remove", path: "/metadata/labels/a" }, { op: "test", path: "/metadata/name", value: "nope" }], d)).toThrow(InvalidError);
    expect(d).toEqual(doc());
  });

  test.each([
    [[{ op: "remove", path: "/spec/nothing" }], "path does not exist"],
    [[{ op: "replace", path: "/spec/models/5", value: 1 }], "path does not exist"],
    [[{ op: "add", path: "/spec/models/3", value: 1 }], "out of range"],
    [[{ op: "add", path: "/spec/models/01", value: 1 }], "is not an index"],
    [[{ op: "add", path: "/nothing/deeper", value: 1 }], "path does not exist"],
    [[{ op: "test", path: "/spec/models", value: ["m2", "m1"] }], "test failed"],
    [[{ op: "move", from: "/spec", path: "/spec/inner" }], "into itself"],
  ])("%j does not apply: 422 (%s)", (ops, message) => {
    let err: unknown;
    try {
      apply(ops);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidError);
    expect(JSON.stringify((err as InvalidError).problems)).toContain(message);
  });

  test.each([
    [{ op: "add" }, "must be a JSON pointer"],
    [{ op: "add", path: "spec" }, "must start with '/'"],
    [{ op: "add", path: "/a~2" }, "'~' not followed by 0 or 1"],
    [{ op: "add", path: "/a" }, "needs a value"],
    [{ op: "frobnicate", path: "/a" }, "unknown op"],
    ["not an op", "must be an object"],
    [{ op: "move", path: "/a" }, "must be a JSON pointer"],
  ])("malformed %j: 400 (%s)", (op, message) => {
    expect(() => apply([op])).toThrow(message);
    expect(() => apply([op])).toThrow(BadRequestError);
  });

  test("a patch that is not a list, or has too many operations: 400", () => {
    expect(() => apply({ op: "add" })).toThrow("must be a list of operations");
    expect(() => apply(Array.from({ length: MAX_JSON_PATCH_OPS + 1 }, () => ({ op: "test", path: "", value: {} })))).toThrow(`at most ${MAX_JSON_PATCH_OPS}`);
  });

  test("copies cannot grow a document exponentially: the bytes added are bounded", () => {
    const ops = [{ op: "add", path: "/a", value: "x".repeat(100) }, ...Array.from({ length: 40 }, (_, i) => ({ op: "copy", from: "", path: `/k${i}` }))];
    expect(() => jsonPatch({}, ops, 64 * 1024)).toThrow("larger than 65536 bytes");
  });

  test("__proto__ as a path segment adds an own field", () => {
    const out = apply([{ op: "add", path: "/__proto__", value: { polluted: true } }], {}) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out)).toEqual(["__proto__"]);
  });

  test("pointers unescape ~1 then ~0", () => {
    expect(parsePointer("/a~1b/m~0n/~01", "p")).toEqual(["a/b", "m~n", "~1"]);
    expect(parsePointer("", "p")).toEqual([]);
  });
});

test("tests cannot compare without bound: many tests of a large document are refused", () => {
  const big = { data: "x".repeat(10_000) };
  const ops = Array.from({ length: 100 }, () => ({ op: "test", path: "", value: big }));
  expect(() => jsonPatch(big, ops, 64 * 1024)).toThrow("compare more than");
});
