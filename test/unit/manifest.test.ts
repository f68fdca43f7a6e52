// Covers src/domain/manifest.ts loadManifests: file:line:column errors, good docs beside bad ones, size cap.
import { describe, expect, test } from "bun:test";
import { loadManifests, MAX_MANIFEST_BYTES } from "../../src/domain/manifest";

/** The product-page agent with its model on line 9, made bad. */
const BAD_MODEL_ON_LINE_9 = `apiVersion: pai.io/v1
kind: Agent
metadata:
  name: my-agent
spec:
  triggers:
    - webhook: {}
  models:
    - foo/bar
`;

const GOOD = (name: string, extra = "") => `apiVersion: pai.io/v1
kind: Agent
metadata:
  name: ${name}${extra}
spec:
  models: [pai/echo]
`;

describe("loadManifests errors", () => {
  const cases: { name: string; text: string; prefix: string; contains: string }[] = [
    { name: "bad model", text: BAD_MODEL_ON_LINE_9, prefix: "agents.yaml:9:7: ", contains: 'spec.models[0]: unknown model "foo/bar"' },
    { name: "wrong kind", text: GOOD("a").replace("kind: Agent", "kind: Pod"), prefix: "agents.yaml:2:7: ", contains: 'kind: must be "Agent"' },
    { name: "bad name", text: GOOD("Upper"), prefix: "agents.yaml:4:9: ", contains: "metadata.name: " },
    { name: "unknown spec field", text: `${GOOD("a")}  modle: [x]\n`, prefix: "agents.yaml:7:", contains: "spec.modle: unknown field" },
    { name: "missing spec falls back to the document", text: "apiVersion: pai.io/v1\nkind: Agent\nmetadata:\n  name: a\n", prefix: "agents.yaml:1:1: ", contains: "spec: required field is missing" },
    { name: "YAML syntax error", text: "a: b: c\n", prefix: "agents.yaml:1:4: ", contains: "Nested mappings" },
    { name: "duplicate key", text: "metadata:\n  name: a\n  name: b\n", prefix: "agents.yaml:3:3: ", contains: "unique" },
    { name: "a list, not an object", text: "- a\n- b\n", prefix: "agents.yaml:1:1: ", contains: "expected an Agent object, got a list" },
  ];

  test.each(cases)("$name → $prefix", ({ text, prefix, contains }) => {
    const r = loadManifests(text, "agents.yaml", "default");
    expect(r.agents).toEqual([]);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]!.text.startsWith(prefix)).toBe(true);
    expect(r.errors[0]!.text).toContain(contains);
  });

  test("a bad model on line 9 is reported on line 9 with the agent's name", () => {
    const [err] = loadManifests(BAD_MODEL_ON_LINE_9, "agents.yaml", "default").errors;
    expect(err!.text).toMatch(/^agents\.yaml:9:\d+: spec\.models\[0\]: unknown model "foo\/bar": use anthropic\/<model>/);
    expect(err!.line).toBe(9);
    expect(err!.name).toBe("my-agent");
  });

  test("every problem of a document is its own error line", () => {
    const text = BAD_MODEL_ON_LINE_9.replace("    - foo/bar\n", "    - foo/bar\n    - pai/echo\n    - claude\n");
    const errors = loadManifests(text, "x.yaml", "default").errors.map((e) => e.text);
    expect(errors).toHaveLength(2);
    expect(errors[0]).toStartWith("x.yaml:9:");
    expect(errors[1]).toStartWith("x.yaml:11:");
    expect(errors[1]).toContain("spec.models[2]");
  });

  test("lines count from the top of the file, not of the document", () => {
    const text = `${GOOD("first")}---\n${BAD_MODEL_ON_LINE_9}`;
    const r = loadManifests(text, "agents.yaml", "default");
    // The second document starts after 6 lines + the `---` line.
    expect(r.errors.map((e) => e.line)).toEqual([9 + 7]);
    expect(r.errors[0]!.text).toStartWith("agents.yaml:16:");
  });
});

describe("loadManifests with good and bad documents", () => {
  const text = [GOOD("alpha"), BAD_MODEL_ON_LINE_9, "# only a comment\n", "broken: [\n", GOOD("beta", "\n  namespace: team")].join("---\n");
  const r = loadManifests(text, "mixed.yaml", "ns1");

  test("good documents are returned beside bad ones, with their document index", () => {
    expect(r.agents.map((a) => [a.input.name, a.input.namespace, a.docIndex])).toEqual([
      ["alpha", "ns1", 0],
      ["beta", "team", 4],
    ]);
    expect(r.agents[0]!.input.spec).toEqual({ models: ["pai/echo"] });
  });

  test("each bad document gives one error naming the file; comment-only documents give none", () => {
    expect(r.errors).toHaveLength(2);
    expect(r.errors.every((e) => /^mixed\.yaml:\d+:\d+: /.test(e.text))).toBe(true);
    expect(r.errors[0]!.text).toContain("foo/bar");
    expect(r.errors[1]!.text).toMatch(/flow|\]/i);
  });

  test("the parsed file is returned for writing status back", () => {
    expect(r.file.docs).toHaveLength(5);
  });

  test("an empty file has neither agents nor errors", () => {
    const empty = loadManifests("", "e.yaml", "default");
    expect(empty.agents).toEqual([]);
    expect(empty.errors).toEqual([]);
  });
});

describe("loadManifests size cap", () => {
  test("a file larger than 1 MiB is refused without parsing", () => {
    const text = `${GOOD("a")}# ${"x".repeat(MAX_MANIFEST_BYTES)}\n`;
    const r = loadManifests(text, "big.yaml", "default");
    expect(MAX_MANIFEST_BYTES).toBe(1024 * 1024);
    expect(r.agents).toEqual([]);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]!.text).toBe(`big.yaml: file is larger than ${MAX_MANIFEST_BYTES} bytes; split it into smaller files`);
    expect(r.file.docs).toEqual([]);
  });

  test("the cap counts bytes, not characters", () => {
    const text = `# ${"é".repeat(600 * 1024)}\n`; // ~614k characters, ~1.2 MB
    expect(text.length).toBeLessThan(MAX_MANIFEST_BYTES);
    expect(loadManifests(text, "u.yaml", "default").errors[0]!.text).toContain("larger than");
  });

  test("a file of exactly 1 MiB is accepted", () => {
    const head = GOOD("a");
    const text = `${head}#${"x".repeat(MAX_MANIFEST_BYTES - head.length - 2)}\n`;
    expect(Buffer.byteLength(text)).toBe(MAX_MANIFEST_BYTES);
    const r = loadManifests(text, "edge.yaml", "default");
    expect(r.errors).toEqual([]);
    expect(r.agents.map((a) => a.input.name)).toEqual(["a"]);
  });
});
