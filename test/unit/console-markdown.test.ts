/**
 * The console's Markdown: what a model writes is parsed into known elements only. Raw HTML stays
 * text, links keep only http(s)/mailto targets, images become links (nothing is loaded), and
 * hostile input (deep nesting, thousands of openers) neither breaks nor slows the parser down.
 */
import { describe, expect, test } from "bun:test";
import { inline, MAX_MARKDOWN, parseMarkdown, safeHref, type MdElement, type MdNode } from "../../src/console/app/markdown";

const ALLOWED = new Set(["p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "pre", "code", "em", "strong", "del", "a", "blockquote", "hr", "br", "table", "thead", "tbody", "tr", "th", "td"]);

function walk(nodes: MdNode[], fn: (n: MdElement) => void) {
  for (const n of nodes) {
    if (typeof n === "string") continue;
    fn(n);
    walk(n.children, fn);
  }
}
const text = (nodes: MdNode[]): string => nodes.map((n) => (typeof n === "string" ? n : n.tag === "br" ? "\n" : text(n.children))).join("");
const links = (nodes: MdNode[]) => {
  const out: MdElement[] = [];
  walk(nodes, (n) => n.tag === "a" && out.push(n));
  return out;
};

describe("untrusted Markdown", () => {
  const hostile = 'Hi <img src=x onerror="window.__xss=1"> and <script>window.__xss=2</script>\n\n[x](javascript:alert(1)) [y](JaVaScRiPt:alert(2)) [z]( java\tscript:alert(3)) [d](data:text/html,<b>x</b>) ![pic](https://evil.example/p.png) <javascript:alert(4)>';
  const tree = parseMarkdown(hostile);

  test("raw HTML is text, not elements", () => {
    walk(tree, (n) => expect(ALLOWED.has(n.tag)).toBe(true));
    expect(text(tree)).toContain('<img src=x onerror="window.__xss=1">');
    expect(text(tree)).toContain("<script>window.__xss=2</script>");
  });

  test("javascript:, data: and other schemes are not links; their label stays as text", () => {
    const hrefs = links(tree).map((a) => a.href);
    expect(hrefs.every((h) => h && /^https?:|^mailto:/.test(h))).toBe(true);
    expect(hrefs.some((h) => /javascript|data:/i.test(h!))).toBe(false);
    const shown = text(tree);
    for (const label of ["x", "y", "d"]) expect(shown).toContain(label);
  });

  test("an image is a link to it, never an element that loads it", () => {
    const pic = links(tree).find((a) => a.href === "https://evil.example/p.png");
    expect(pic).toBeDefined();
    expect(text([pic!])).toBe("image: pic");
  });

  test("safeHref keeps absolute http(s) and mailto only, normalised by the URL parser", () => {
    expect(safeHref("https://example.com/a b")).toBe("https://example.com/a%20b");
    expect(safeHref("mailto:a@example.com")).toBe("mailto:a@example.com");
    for (const bad of ["javascript:alert(1)", " javascript:alert(1)", "java\nscript:alert(1)", "JAVASCRIPT:x", "vbscript:x", "data:text/html,x", "file:///etc/passwd", "/relative", "//evil.example/x", "#frag", ""])
      expect({ bad, href: safeHref(bad) }).toEqual({ bad, href: undefined });
  });
});

describe("Markdown a model writes", () => {
  test("headings, emphasis, code, lists, quotes, rules, tables and fenced code", () => {
    const md = [
      "# Title",
      "Some **bold**, *em*, _em too_, ~~gone~~ and `code <b>`.",
      "",
      "- one",
      "- two with [a link](https://example.com/wiki/Foo_(bar))",
      "  - nested",
      "",
      "3. three",
      "4. four",
      "",
      "> quoted",
      "",
      "---",
      "",
      "| a | b |",
      "|---|:-:|",
      "| 1 | 2 |",
      "",
      "```ts",
      "const x = '<script>';",
      "```",
    ].join("\n");
    const tree = parseMarkdown(md);
    expect(tree.map((b) => b.tag)).toEqual(["h1", "p", "ul", "ol", "blockquote", "hr", "table", "pre"]);
    const p = tree[1]!;
    expect(p.children.filter((c) => typeof c !== "string").map((c) => (c as MdElement).tag)).toEqual(["strong", "em", "em", "del", "code"]);
    expect(links(tree)[0]!.href).toBe("https://example.com/wiki/Foo_(bar)");
    const ul = tree[2]!;
    expect(ul.children).toHaveLength(2);
    walk([ul], (n) => n.tag === "ul" && n !== ul && expect(text(n.children)).toBe("nested"));
    expect(tree[3]!.start).toBe(3);
    expect(text([tree[7]!])).toBe("const x = '<script>';");
  });

  test("snake_case and lone delimiters stay as written", () => {
    expect(text(inline("call my_var_name with 2 * 3 * 4"))).toBe("call my_var_name with 2 * 3 * 4");
    expect(inline("a_b_c").every((n) => typeof n === "string")).toBe(true);
  });

  test("line breaks in a paragraph are kept; backslash escapes are literal", () => {
    expect(inline("a\nb").map((n) => (typeof n === "string" ? n : n.tag))).toEqual(["a", "br", "b"]);
    expect(text(inline("\\*not em\\*"))).toBe("*not em*");
  });
});

describe("hostile shapes", () => {
  test("deep nesting is cut off, not recursed into without end", () => {
    const quotes = parseMarkdown(`${">".repeat(5000)} deep`);
    let depth = 0;
    walk(quotes, (n) => n.tag === "blockquote" && depth++);
    expect(depth).toBeLessThan(12);
    const lists = parseMarkdown(Array.from({ length: 200 }, (_, i) => `${"  ".repeat(i)}- item ${i}`).join("\n"));
    expect(text(lists)).toContain("item 0");
  });

  test("tens of thousands of openers parse (in linear time: the file's timeout), and lose no letter", () => {
    const letters = (s: string) => s.replace(/[^a-z]/g, "");
    for (const unit of ["[a](", "**x", "`a``", "*a**", "](", "~~a", "_a", "![", "<http", "[a](b(", "[a]((((("]) {
      const s = unit.repeat(Math.floor(150_000 / unit.length));
      expect({ unit, letters: letters(text(parseMarkdown(s))).length }).toEqual({ unit, letters: letters(s).length });
    }
    // Nothing closes these: the text comes back exactly.
    for (const unit of ["[a](", "](", "![", "<http"]) {
      const s = unit.repeat(Math.floor(150_000 / unit.length));
      expect(text(parseMarkdown(s)) === s).toBe(true);
    }
  });

  test("a text beyond the limit is shown as it is, in a code block", () => {
    const big = "*a* ".repeat(MAX_MARKDOWN / 4 + 1);
    const tree = parseMarkdown(big);
    expect(tree.map((b) => b.tag)).toEqual(["pre"]);
    expect(text(tree)).toBe(big);
  });
});
