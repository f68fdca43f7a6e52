// Covers src/lib/yaml.ts: parseYamlFile, positionOf, resourceDocs and comment-keeping stringifyYamlFile.
import { describe, expect, test } from "bun:test";
import { parseYamlFile, positionOf, resourceDocs, stringifyYamlFile } from "../../src/lib/yaml";

const TWO_AGENTS = `# team agents
apiVersion: pai.io/v1   # the API group
kind: Agent
metadata:
  name: planner
spec:
  models: [anthropic/claude-sonnet-4-6, pai/echo]   # fallback last
# end of planner
---
# second document
apiVersion: pai.io/v1
kind: Agent
metadata:
  name: reviewer
  namespace:
spec:
  models:
    - openai/gpt-4o
    - pai/echo
# trailing comment
`;

/** A "billion laughs" document: 9^9 strings if expanded. */
const ALIAS_BOMB = `a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`;

describe("parseYamlFile", () => {
  test("splits a multi-document file, with indices and first lines", () => {
    const f = parseYamlFile("a: 1\n---\nb: 2\n---\nc: [3]\n");
    expect(f.docs.map((d) => d.value)).toEqual([{ a: 1 }, { b: 2 }, { c: [3] }]);
    expect(f.docs.map((d) => d.index)).toEqual([0, 1, 2]);
    expect(f.docs.map((d) => d.line)).toEqual([1, 2, 4]);
    expect(f.docs.every((d) => d.error === undefined)).toBe(true);
  });

  test("a comment-only document has a null value and no error", () => {
    const f = parseYamlFile("a: 1\n---\n# only a comment\n---\nb: 2\n");
    expect(f.docs).toHaveLength(3);
    expect(f.docs[1]!.value).toBeNull();
    expect(f.docs[1]!.error).toBeUndefined();
  });

  test("an empty or comment-only file has no documents", () => {
    expect(parseYamlFile("").docs).toEqual([]);
    expect(parseYamlFile("# nothing here\n").docs).toEqual([]);
  });

  test("a syntax error is reported on its document with a line number; other documents still parse", () => {
    const f = parseYamlFile("a: 1\n---\nb: [1, 2\nc: 3\n");
    expect(f.docs[0]!.value).toEqual({ a: 1 });
    const bad = f.docs[1]!;
    expect(bad.value).toBeUndefined();
    expect(bad.error?.message).toMatch(/Flow sequence/);
    expect(bad.error?.line).toBe(4);
    expect(bad.error?.column).toBe(1);
  });

  test("a nested mapping on one line is an error at its column", () => {
    const f = parseYamlFile("a: b: c\n");
    expect(f.docs[0]!.error).toMatchObject({ line: 1, column: 4 });
  });

  test("duplicate keys are an error at the second key", () => {
    const f = parseYamlFile("metadata:\n  name: a\n  name: b\n");
    expect(f.docs[0]!.value).toBeUndefined();
    expect(f.docs[0]!.error?.message).toMatch(/unique/i);
    expect(f.docs[0]!.error).toMatchObject({ line: 3, column: 3 });
  });

  test("a few aliases are expanded", () => {
    expect(parseYamlFile("a: &x [1]\nb: *x\nc: *x\n").docs[0]!.value).toEqual({ a: [1], b: [1], c: [1] });
  });

  test("an alias bomb is refused quickly, not expanded", () => {
    const started = performance.now();
    const f = parseYamlFile(ALIAS_BOMB);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeLessThan(1000);
    expect(f.docs).toHaveLength(1);
    expect(f.docs[0]!.value).toBeUndefined();
    expect(f.docs[0]!.error?.message).toMatch(/alias|resource exhaustion/i);
    expect(f.docs[0]!.error?.line).toBe(1);
  });
});

describe("positionOf", () => {
  const f = parseYamlFile(TWO_AGENTS);
  const [first, second] = f.docs as [(typeof f.docs)[0], (typeof f.docs)[0]];

  const cases: { name: string; doc: 0 | 1; path: (string | number)[]; expected: { line: number; column: number } }[] = [
    { name: "top-level key's value in the first document", doc: 0, path: ["kind"], expected: { line: 3, column: 7 } },
    { name: "flow-sequence item in the first document", doc: 0, path: ["spec", "models", 1], expected: { line: 7, column: 41 } },
    { name: "spec.models[0] in the second document", doc: 1, path: ["spec", "models", 0], expected: { line: 18, column: 7 } },
    { name: "spec.models[1] in the second document", doc: 1, path: ["spec", "models", 1], expected: { line: 19, column: 7 } },
    { name: "metadata.name in the second document", doc: 1, path: ["metadata", "name"], expected: { line: 14, column: 9 } },
    { name: "a missing field falls back to its deepest existing parent", doc: 1, path: ["spec", "nope", "deeper"], expected: { line: 17, column: 3 } },
    { name: "a missing top-level field falls back to the document", doc: 0, path: ["status"], expected: { line: 2, column: 1 } },
    { name: "the empty path is the document", doc: 1, path: [], expected: { line: 11, column: 1 } },
  ];
  test.each(cases)("$name", ({ doc, path, expected }) => {
    expect(positionOf(f, doc === 0 ? first : second, path)).toEqual(expected);
  });

  test("a key with an empty value is found on the key's own line", () => {
    const pos = positionOf(f, second, ["metadata", "namespace"]);
    expect(pos?.line).toBe(15);
    // At the key or where its value would be, never before the key.
    expect(pos!.column).toBeGreaterThanOrEqual(3);
  });

  const nullForms: { name: string; text: string; expected: { line: number; column: number } }[] = [
    { name: "explicit key with no value (? key)", text: "metadata:\n  ? namespace\n", expected: { line: 2, column: 5 } },
    { name: "flow map entry with no value", text: "metadata: {namespace}\n", expected: { line: 1, column: 12 } },
  ];
  test.each(nullForms)("a key with no value node points at the key: $name", ({ text, expected }) => {
    const g = parseYamlFile(text);
    expect(positionOf(g, g.docs[0]!, ["metadata", "namespace"])).toEqual(expected);
  });
});

describe("resourceDocs", () => {
  test("keeps documents with a value or an error, drops comment-only and empty ones", () => {
    const f = parseYamlFile("a: 1\n---\n# only a comment\n---\n---\nb: [\n---\nc: 3\n");
    const docs = resourceDocs(f);
    expect(docs.map((d) => d.index)).toEqual([0, 3, 4]);
    expect(docs[1]!.error).toBeDefined();
    expect(docs[2]!.value).toEqual({ c: 3 });
  });

  test("a document whose value is a scalar still counts", () => {
    expect(resourceDocs(parseYamlFile("hello\n")).map((d) => d.value)).toEqual(["hello"]);
  });
});

describe("stringifyYamlFile", () => {
  function withStatus(text: string) {
    const f = parseYamlFile(text);
    for (const d of f.docs) d.doc.set("status", d.doc.createNode({ webhookUrl: `http://localhost:8080/webhooks/default/x${d.index}/t`, observedGeneration: 1 }));
    return stringifyYamlFile(f);
  }

  test("keeps every comment after status is set on both documents", () => {
    const out = withStatus(TWO_AGENTS);
    for (const comment of ["# team agents", "# the API group", "# fallback last", "# end of planner", "# second document", "# trailing comment"])
      expect(out).toContain(comment);
    // Line comments stay on their lines.
    expect(out).toMatch(/^apiVersion: pai\.io\/v1 +# the API group$/m);
    expect(out).toMatch(/^ {2}models: \[anthropic\/claude-sonnet-4-6, pai\/echo\] +# fallback last$/m);
    // Comments keep their order relative to the document separator and each other.
    const order = ["# team agents", "# end of planner", "---", "# second document", "# trailing comment"].map((s) => out.indexOf(s));
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(out.trimEnd().endsWith("# trailing comment")).toBe(true);
  });

  test("the written file parses back to both documents with their status", () => {
    const back = parseYamlFile(withStatus(TWO_AGENTS));
    expect(back.docs).toHaveLength(2);
    expect(back.docs.map((d) => (d.value as { metadata: { name: string } }).metadata.name)).toEqual(["planner", "reviewer"]);
    expect(back.docs.map((d) => (d.value as { status: { webhookUrl: string } }).status.webhookUrl)).toEqual([
      "http://localhost:8080/webhooks/default/x0/t",
      "http://localhost:8080/webhooks/default/x1/t",
    ]);
    expect((back.docs[1]!.value as { spec: unknown }).spec).toEqual({ models: ["openai/gpt-4o", "pai/echo"] });
  });

  test("setting the same status again changes nothing", () => {
    const once = withStatus(TWO_AGENTS);
    expect(withStatus(once)).toBe(once);
  });

  test("a file without edits round-trips unchanged", () => {
    const text = "a: 1 # one\n---\n# two\nb: 2\n";
    expect(stringifyYamlFile(parseYamlFile(text))).toBe(text);
  });
});
