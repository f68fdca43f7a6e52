/**
 * Label and field selectors with Kubernetes' grammar: every operator, the edge cases of the
 * grammar (empty values, trailing commas, escapes), and bad input as a 400 that says what is wrong.
 */
import { describe, expect, test } from "bun:test";
import { BadRequestError } from "../../src/domain/errors";
import { matchesFields, matchesLabels, MAX_SELECTOR_LENGTH, parseFieldSelector, parseLabelSelector } from "../../src/api/kube/selectors";

const labels = { app: "web", tier: "gold", "pai.io/agent": "echo", count: "7", empty: "" };
const sel = (s: string) => matchesLabels(parseLabelSelector(s), labels);

describe("label selectors", () => {
  test.each([
    ["", true],
    ["app", true],
    ["!app", false],
    ["missing", false],
    ["!missing", true],
    ["app=web", true],
    ["app==web", true],
    ["app=db", false],
    ["app!=db", true],
    ["app!=web", false],
    ["missing!=x", true],
    ["app in (web,db)", true],
    ["app in (db)", false],
    ["missing in (x)", false],
    ["app notin (db, cache)", true],
    ["app notin (web)", false],
    ["missing notin (x)", true],
    ["count>5", true],
    ["count<5", false],
    ["count > 7", false],
    ["app>1", false],
    ["pai.io/agent=echo", true],
    ["empty=", true],
    ["empty in (a,)", true],
    ["app=web,tier=gold", true],
    ["app=web, tier=silver", false],
    [" app = web , !missing ", true],
  ])("%p selects: %p", (s, want) => {
    expect(sel(s)).toBe(want);
  });

  test("parses into requirements", () => {
    expect(parseLabelSelector("a in (x, y),!b,c!=d")).toEqual([
      { key: "a", op: "in", values: ["x", "y"] },
      { key: "b", op: "!exists", values: [] },
      { key: "c", op: "!=", values: ["d"] },
    ]);
  });

  test("an object without labels: only absence and inequality select it", () => {
    const r = (s: string) => matchesLabels(parseLabelSelector(s), undefined);
    expect([r("a"), r("!a"), r("a=b"), r("a!=b"), r("a notin (b)"), r("a in (b)")]).toEqual([false, true, false, true, true, false]);
  });

  test("only the object's own labels count, not what every object inherits", () => {
    expect(matchesLabels(parseLabelSelector("constructor"), {})).toBe(false);
    expect(matchesLabels(parseLabelSelector("toString"), { toString: "x" })).toBe(true);
  });

  test.each([
    ["app in (web", "expected ',' or ')'"],
    ["app in web", "expected '(' after 'in'"],
    ["app in ()", "needs at least one value"],
    ["app=web,", "trailing ','"],
    ["app web", "expected '=', '==', '!=', 'in', 'notin', '>' or '<' after 'app'"],
    ["=web", "expected a label key"],
    ["app=we b", "expected ','"],
    ["app>x", "needs a whole number"],
    ["Bad_Prefix/app=x", "prefix before '/'"],
    ["-app=x", "a label key's name"],
    ["app=-x", "a label value"],
    [`app=${"v".repeat(64)}`, "a label value"],
    ["!", "expected a label key"],
    ["app in (a b)", "expected ',' or ')'"],
  ])("%p is a 400: %p", (s, message) => {
    let err: unknown;
    try {
      parseLabelSelector(s);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as Error).message).toContain(message);
    expect((err as Error).message).toStartWith("unable to parse label selector");
  });

  test("size is bounded: long selectors and many requirements are refused", () => {
    expect(() => parseLabelSelector("a".repeat(MAX_SELECTOR_LENGTH + 1))).toThrow("longer than");
    expect(() => parseLabelSelector(Array.from({ length: 101 }, (_, i) => `k${i}`).join(","))).toThrow("more than 100 requirements");
    expect(() => parseLabelSelector(`a in (${Array.from({ length: 101 }, (_, i) => `v${i}`).join(",")})`)).toThrow("more than 100 values");
  });
});

describe("field selectors", () => {
  const fields = ["metadata.name", "metadata.namespace", "type"];
  const object: Record<string, string> = { "metadata.name": "a,b=c", "metadata.namespace": "default", type: "Opaque" };
  const sel = (s: string) => matchesFields(parseFieldSelector(s, fields), (f) => object[f]);

  test.each([
    ["", true],
    ["metadata.namespace=default", true],
    ["metadata.namespace==default", true],
    ["metadata.namespace!=default", false],
    ["metadata.namespace=other", false],
    ["metadata.name=a\\,b\\=c", true],
    ["metadata.name=a", false],
    ["metadata.namespace=default,type=Opaque", true],
    ["metadata.namespace=default,type!=Opaque", false],
  ])("%p selects: %p", (s, want) => {
    expect(sel(s)).toBe(want);
  });

  test("an unsupported field: 400 field label not supported", () => {
    expect(() => parseFieldSelector("spec.models=x", fields)).toThrow("field label not supported: spec.models");
  });

  test("malformed terms and escapes: 400", () => {
    expect(() => parseFieldSelector("metadata.name", fields)).toThrow("is not field=value");
    expect(() => parseFieldSelector("metadata.name=a\\x", fields)).toThrow("may only escape");
    expect(() => parseFieldSelector("metadata.name=a\\", fields)).toThrow("may only escape");
    expect(() => parseFieldSelector("x".repeat(MAX_SELECTOR_LENGTH + 1), fields)).toThrow("longer than");
  });
});
