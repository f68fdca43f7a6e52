// Covers the cost caps of src/lib/yaml.ts: documents per file, nesting (flow, compact block,
// indentation), and duplicate-key detection that stays linear on large mappings.
import { describe, expect, test } from "bun:test";
import { MAX_DOCUMENTS, parseYamlFile, resourceDocs, yamlTooDeepAt } from "../../src/lib/yaml";

const timed = <T>(fn: () => T): { value: T; ms: number } => {
  const t = performance.now();
  const value = fn();
  return { value, ms: performance.now() - t };
};

describe("documents per file", () => {
  test(`${MAX_DOCUMENTS} documents are fine`, () => {
    const f = parseYamlFile(Array.from({ length: MAX_DOCUMENTS }, (_, i) => `n: ${i}\n`).join("---\n"));
    expect(f.refused).toBeUndefined();
    expect(resourceDocs(f)).toHaveLength(MAX_DOCUMENTS);
  });

  test("one more and the whole file is refused, at the first document over, without parsing the rest", () => {
    const { value: f, ms } = timed(() => parseYamlFile("a: 1\n" + "---\n".repeat(200_000)));
    expect(f.refused).toMatchObject({ reason: "documents" });
    expect(f.docs).toHaveLength(1);
    expect(f.docs[0]!.error).toEqual({ message: "more than 500 YAML documents in one file; split it into smaller files", line: 501, column: 1 });
    expect(ms).toBeLessThan(1000);
  });

  test("the cap can be lowered (API bodies)", () => {
    expect(parseYamlFile("a: 1\n---\nb: 2\n---\nc: 3\n", { maxDocuments: 2 }).refused?.reason).toBe("documents");
  });
});

describe("nesting", () => {
  const flow = (n: number) => "a: " + "[".repeat(n) + "]".repeat(n) + "\n";
  test("64 levels of flow collections are fine, 65 are refused before parsing, with the line", () => {
    expect(parseYamlFile(flow(63)).docs[0]!.error).toBeUndefined(); // the top-level mapping is one more level
    const f = parseYamlFile("x: 1\n" + flow(65));
    expect(f.refused).toMatchObject({ reason: "nesting" });
    expect(f.docs[0]!.error).toEqual({ message: "collections are nested more than 64 levels deep; flatten the document", line: 2, column: 1 });
  });

  test("1 MB of brackets or of compact block sequences is refused in milliseconds", () => {
    for (const text of ["[".repeat(1_000_000), "- ".repeat(500_000) + "x\n", "? ".repeat(500_000) + "x\n"]) {
      const { value: f, ms } = timed(() => parseYamlFile(text));
      expect(f.refused?.reason).toBe("nesting");
      expect(ms).toBeLessThan(500);
    }
  });

  test("brackets and dashes inside strings, comments and plain text do not count", () => {
    const text = `s: "${"[".repeat(100)}"\nt: '${"{".repeat(100)}'\n# ${"[".repeat(100)}\nu: a ${"- ".repeat(100)}\n`;
    expect(yamlTooDeepAt(text)).toBe(-1);
    expect(parseYamlFile(text).docs[0]!.error).toBeUndefined();
  });

  test("nesting by indentation is refused after parsing, at the node too deep", () => {
    const text = Array.from({ length: 70 }, (_, i) => `${" ".repeat(i)}k:`).join("\n") + " 1\n";
    const f = parseYamlFile(text);
    expect(f.refused).toBeUndefined();
    expect(f.docs[0]!.value).toBeUndefined();
    expect(f.docs[0]!.error).toMatchObject({ message: "collections are nested more than 64 levels deep; flatten the document", line: 65 });
  });
});

describe("duplicate keys", () => {
  test("are still an error at the second key, in nested and flow mappings too", () => {
    expect(parseYamlFile("a:\n  b: 1\n  c: 2\n  b: 3\n").docs[0]!.error).toMatchObject({ message: "Map keys must be unique", line: 4, column: 3 });
    expect(parseYamlFile("a: {x: 1, x: 2}\n").docs[0]!.error).toMatchObject({ message: "Map keys must be unique", line: 1 });
    // Same spelling, different types: not duplicates (as in the yaml library).
    expect(parseYamlFile("1: a\n'1': b\n").docs[0]!.error).toBeUndefined();
  });

  test("a mapping of 30,000 keys is checked in linear time (the library's own check is quadratic)", () => {
    let text = "";
    for (let i = 0; i < 30_000; i++) text += `k${i}: ${i}\n`;
    const { value: f, ms } = timed(() => parseYamlFile(text + "k7: again\n"));
    expect(f.docs[0]!.error).toMatchObject({ message: "Map keys must be unique", line: 30_001 });
    expect(ms).toBeLessThan(3000);
  });
});
