/**
 * Multi-document YAML with positions: parse a file into documents, map a field path back to its
 * line and column, and write a value into one document keeping the user's comments and layout.
 * Alias expansion is capped so a "billion laughs" document is refused, not expanded.
 */
import { LineCounter, parseAllDocuments, isNode, type Document } from "yaml";

export const MAX_ALIAS_COUNT = 100;

export interface YamlDoc {
  /** 0-based index of the document in its file. */
  index: number;
  doc: Document.Parsed;
  /** The plain value, or undefined when the document has errors. */
  value: unknown;
  /** Parse or conversion error, with 1-based position. */
  error?: { message: string; line?: number; column?: number };
  /** First line of the document (1-based), for messages about the whole document. */
  line: number;
}

export interface YamlFile {
  docs: YamlDoc[];
  lines: LineCounter;
}

export function parseYamlFile(text: string): YamlFile {
  const lines = new LineCounter();
  const docs: YamlDoc[] = [];
  const parsed = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  // `parseAllDocuments` returns an EmptyStream (an array) for an empty file.
  (Array.isArray(parsed) ? parsed : [parsed]).forEach((doc, index) => {
    const start = doc.range?.[0] ?? 0;
    const line = lines.linePos(start).line;
    const first = doc.errors[0];
    if (first) {
      const pos = lines.linePos(first.pos[0]);
      docs.push({ index, doc, value: undefined, line, error: { message: first.message.split("\n")[0]!, ...pos, column: pos.col } });
      return;
    }
    try {
      const value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
      docs.push({ index, doc, value, line });
    } catch (err) {
      docs.push({ index, doc, value: undefined, line, error: { message: (err as Error).message, line } });
    }
  });
  return { docs, lines };
}

/** Line/column of the node at `path` (or the deepest existing parent), 1-based. */
export function positionOf(file: YamlFile, d: YamlDoc, path: (string | number)[]): { line: number; column: number } | undefined {
  for (let n = path.length; n >= 0; n--) {
    const sub = path.slice(0, n);
    const node = sub.length ? d.doc.getIn(sub, true) : d.doc.contents;
    if (isNode(node) && node.range) {
      const p = file.lines.linePos(node.range[0]);
      return { line: p.line, column: p.col };
    }
    // A key with a null value has no value node: point at the key itself.
    if (sub.length && n === path.length) {
      const parent = d.doc.getIn(sub.slice(0, -1), true) as { items?: { key: unknown }[] } | undefined;
      const pair = parent?.items?.find((it) => isNode(it.key) && (it.key as { value?: unknown }).value === sub[sub.length - 1]);
      if (pair && isNode(pair.key) && pair.key.range) {
        const p = file.lines.linePos(pair.key.range[0]);
        return { line: p.line, column: p.col };
      }
    }
  }
  return undefined;
}

/** Documents that carry a value (not only comments or a bare `---`), or that failed to parse. */
export function resourceDocs(file: YamlFile): YamlDoc[] {
  return file.docs.filter((d) => d.error || (d.value !== null && d.value !== undefined));
}

/** Serialises a file's documents back to text after an in-place edit, keeping comments. */
export function stringifyYamlFile(file: YamlFile): string {
  return file.docs
    .map((d, i) => {
      const text = d.doc.toString({ lineWidth: 0, flowCollectionPadding: false });
      return i > 0 && !text.startsWith("---") ? `---\n${text}` : text;
    })
    .join("");
}
