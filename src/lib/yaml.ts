/**
 * Multi-document YAML with positions: parse a file into documents, map a field path back to its
 * line and column, and write a value into one document keeping the user's comments and layout.
 * What a file may cost is capped before the expensive work: alias expansion ("billion laughs"),
 * the number of documents, and how deep collections nest are refused, not computed.
 */
import { Composer, LineCounter, Parser, YAMLParseError, isCollection, isMap, isNode, isPair, isScalar, parseDocument, type Document } from "yaml";
import { MAX_NESTING, yamlFlowTooDeep } from "./nesting";

export const MAX_ALIAS_COUNT = 100;
/** Documents in one file: far more than anyone writes by hand, far fewer than a `---` flood. */
export const MAX_DOCUMENTS = 500;

export interface YamlLimits {
  /** More documents than this and the whole file is refused (default MAX_DOCUMENTS). */
  maxDocuments?: number;
  /** Collections nested deeper than this and the whole file is refused (default MAX_NESTING). */
  maxNesting?: number;
}

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
  /** Set when the whole file was refused for a limit, before or instead of parsing it. */
  refused?: { reason: "nesting" | "documents"; message: string };
}

/** The message for text nested too deep, shared with the API so both say the same. */
export const tooDeepMessage = (max: number) => `collections are nested more than ${max} levels deep; flatten the document`;

/** 1-based line of the character at `offset`. */
function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = text.indexOf("\n"); i !== -1 && i < offset; i = text.indexOf("\n", i + 1)) line++;
  return line;
}

/**
 * Offset at which `text` nests deeper than `max` before it is parsed, or -1. Two shapes make the
 * parser slow (or overflow its stack) for little input: flow collections (`[[[[…`), checked by
 * lib/nesting, and compact block collections on one line (`- - - - …`, `? ? …`), whose depth
 * indentation does not bound. Nesting spread over indented lines costs the writer quadratic space,
 * so the parser stays fast on it and the tree walk after parsing refuses it.
 */
export function yamlTooDeepAt(text: string, max = MAX_NESTING): number {
  if (yamlFlowTooDeep(text, max)) {
    // Rare path: find the first offending offset by bisection (the check is monotone in the prefix).
    let lo = 0;
    let hi = text.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (yamlFlowTooDeep(text.slice(0, mid + 1), max)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
  let run = 0;
  let atLineStart = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0a) {
      run = 0;
      atLineStart = true;
      continue;
    }
    if (!atLineStart) continue;
    if (c === 0x20 || c === 0x09) continue;
    // `-`, `?` or `:` followed by a space opens one more block level on the same line.
    const next = text.charCodeAt(i + 1);
    if ((c === 0x2d || c === 0x3f || c === 0x3a) && (next === 0x20 || next === 0x09)) {
      if (++run > max) return i;
      i++;
      continue;
    }
    atLineStart = false;
  }
  return -1;
}

/** A file refused as a whole: one document that carries the reason, so callers report it as they do a syntax error. */
function refusedFile(reason: "nesting" | "documents", message: string, line: number, lines: LineCounter): YamlFile {
  return { docs: [{ index: 0, doc: parseDocument("") as Document.Parsed, value: undefined, line, error: { message, line, column: 1 } }], lines, refused: { reason, message } };
}

/**
 * Walks a parsed document once, without recursion: refuses nesting deeper than `max`, and
 * finds duplicate keys with a set per mapping (the yaml library's own check compares each key
 * with every earlier one, minutes for a flat mapping of 100k keys). Returns the first problem.
 */
function checkTree(doc: Document.Parsed, max: number): { message: string; offset: number; code: "DUPLICATE_KEY" | "RESOURCE_EXHAUSTION" } | undefined {
  const stack: { node: unknown; depth: number }[] = [{ node: doc.contents, depth: 0 }];
  while (stack.length) {
    const { node, depth } = stack.pop()!;
    if (!isCollection(node)) continue;
    const at = (node as { range?: [number, number, number] }).range?.[0] ?? 0;
    if (depth + 1 > max) return { message: tooDeepMessage(max), offset: at, code: "RESOURCE_EXHAUSTION" };
    const keys = isMap(node) ? new Set<unknown>() : undefined;
    for (const item of node.items as unknown[]) {
      if (isPair(item)) {
        const key = item.key;
        if (keys && isScalar(key)) {
          if (keys.has(key.value)) return { message: "Map keys must be unique", offset: key.range?.[0] ?? at, code: "DUPLICATE_KEY" };
          keys.add(key.value);
        }
        if (isCollection(key)) stack.push({ node: key, depth: depth + 1 });
        if (isCollection(item.value)) stack.push({ node: item.value, depth: depth + 1 });
      } else if (isCollection(item)) stack.push({ node: item, depth: depth + 1 });
    }
  }
  return undefined;
}

export function parseYamlFile(text: string, limits: YamlLimits = {}): YamlFile {
  const maxDocuments = limits.maxDocuments ?? MAX_DOCUMENTS;
  const maxNesting = limits.maxNesting ?? MAX_NESTING;
  const lines = new LineCounter();
  const deep = yamlTooDeepAt(text, maxNesting);
  if (deep !== -1) return refusedFile("nesting", tooDeepMessage(maxNesting), lineAt(text, deep), lines);

  // parseAllDocuments, unrolled so that a flood of documents stops being parsed at the cap.
  const composer = new Composer({ prettyErrors: false, uniqueKeys: false });
  const parsed: Document.Parsed[] = [];
  for (const doc of composer.compose(new Parser(lines.addNewLine).parse(text))) {
    if (parsed.length === maxDocuments) {
      const message = `more than ${maxDocuments} YAML documents in one file; split it into smaller files`;
      return refusedFile("documents", message, lines.linePos(doc.range?.[0] ?? 0).line, lines);
    }
    parsed.push(doc as Document.Parsed);
  }

  const docs: YamlDoc[] = [];
  parsed.forEach((doc, index) => {
    const start = doc.range?.[0] ?? 0;
    const line = lines.linePos(start).line;
    if (!doc.errors.length) {
      const problem = checkTree(doc, maxNesting);
      if (problem) doc.errors.push(new YAMLParseError([problem.offset, problem.offset + 1], problem.code, problem.message));
    }
    const first = doc.errors[0];
    if (first) {
      const pos = lines.linePos(first.pos[0]);
      // Nesting deep enough to overflow the parser's stack is reported as what it is.
      const message = first.code === "RESOURCE_EXHAUSTION" && /call stack/i.test(first.message) ? tooDeepMessage(maxNesting) : first.message.split("\n")[0]!;
      docs.push({ index, doc, value: undefined, line, error: { message, ...pos, column: pos.col } });
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
