/**
 * Markdown for what models write, parsed into a small tree of known elements (no HTML string is
 * ever made), so the renderer can only create these elements and text nodes. Whatever the model
 * (or whoever steered it) wrote: raw HTML stays text, links keep only http(s) and mailto targets
 * (anything else, `javascript:` included, becomes its label as text), and images are not loaded:
 * they become links. Linear in the input (delimiter searches are memoised), depth-limited, and
 * very large texts are shown as plain text.
 */

export type MdTag =
  | "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "ul" | "ol" | "li" | "pre" | "code" | "em" | "strong" | "del" | "a" | "blockquote" | "hr" | "br"
  | "table" | "thead" | "tbody" | "tr" | "th" | "td";

export interface MdElement {
  tag: MdTag;
  /** Links only: an absolute http, https or mailto URL, as the URL parser normalised it. */
  href?: string;
  /** Ordered lists: the first number. */
  start?: number;
  children: MdNode[];
}
export type MdNode = string | MdElement;

/** Beyond this many characters a text is shown as it is, without Markdown. */
export const MAX_MARKDOWN = 200_000;
const MAX_DEPTH = 8;

const SAFE_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);

/** `raw` as a link target the console will render, or undefined when it is not one. */
export function safeHref(raw: string): string | undefined {
  const s = raw.trim();
  if (!s || s.length > 4096) return undefined;
  let url: URL;
  try {
    // Absolute only: a relative link in a model's answer would point into the console itself.
    url = new URL(s);
  } catch {
    return undefined;
  }
  return SAFE_PROTOCOLS.has(url.protocol) ? url.href : undefined;
}

const el = (tag: MdTag, children: MdNode[] = [], extra: Partial<MdElement> = {}): MdElement => ({ tag, children, ...extra });

/** The Markdown text as a list of block elements. */
export function parseMarkdown(src: string): MdElement[] {
  const text = src.replace(/\r\n?/g, "\n");
  if (text.length > MAX_MARKDOWN) return [el("pre", [el("code", [text])])];
  return blocks(text.split("\n"), 0);
}

const FENCE = /^ {0,3}(`{3,}|~{3,})(.*)$/;
const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*))?$/;
const RULE = /^ {0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,})$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const ITEM = /^( {0,3})([-*+]|\d{1,9}[.)])([ \t]+(.*))?$/;
const TABLE_RULE = /^ *\|? *:?-+:? *(?:\| *:?-+:? *)*\|? *$/;
const blank = (l: string) => /^\s*$/.test(l);

function startsBlock(line: string): boolean {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || (ITEM.test(line) && !blank(ITEM.exec(line)![4] ?? ""));
}

function cells(row: string): string[] {
  let r = row.trim();
  if (r.startsWith("|")) r = r.slice(1);
  if (r.endsWith("|") && !r.endsWith("\\|")) r = r.slice(0, -1);
  return r.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, "|"));
}

function blocks(lines: string[], depth: number): MdElement[] {
  const out: MdElement[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (blank(line)) {
      i++;
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence && !(fence[1]![0] === "`" && fence[2]!.includes("`"))) {
      const marker = fence[1]!;
      const body: string[] = [];
      i++;
      while (i < lines.length && !new RegExp(`^ {0,3}${marker[0] === "`" ? "`" : "~"}{${marker.length},}\\s*$`).test(lines[i]!)) body.push(lines[i++]!);
      i++;
      out.push(el("pre", [el("code", [body.join("\n")])]));
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      const level = heading[1]!.length as 1 | 2 | 3 | 4 | 5 | 6;
      const content = (heading[2] ?? "").replace(/[ \t]+#+[ \t]*$/, "").replace(/^#+[ \t]*$/, "").trim();
      out.push(el(`h${level}`, inline(content, depth)));
      i++;
      continue;
    }
    if (RULE.test(line)) {
      out.push(el("hr"));
      i++;
      continue;
    }
    if (QUOTE.test(line)) {
      const body: string[] = [];
      while (i < lines.length && QUOTE.test(lines[i]!)) body.push(QUOTE.exec(lines[i++]!)![1]!);
      out.push(el("blockquote", depth < MAX_DEPTH ? blocks(body, depth + 1) : [el("p", [body.join("\n")])]));
      continue;
    }
    const item = ITEM.exec(line);
    if (item && !blank(item[4] ?? "")) {
      const ordered = /\d/.test(item[2]!);
      const kind = ordered ? item[2]!.slice(-1) : item[2]!;
      const items: MdElement[] = [];
      let start: number | undefined = ordered ? Number(item[2]!.slice(0, -1)) : undefined;
      while (i < lines.length) {
        const m = ITEM.exec(lines[i]!);
        if (!m || blank(m[4] ?? "") || (ordered ? m[2]!.slice(-1) !== kind || !/\d/.test(m[2]!) : m[2] !== kind)) break;
        const indent = m[1]!.length + m[2]!.length + (m[3]!.length - m[4]!.length);
        const body = [m[4]!];
        i++;
        // The item goes on while lines are indented under it (or are a paragraph's lazy continuation).
        while (i < lines.length) {
          const next = lines[i]!;
          if (blank(next)) {
            const after = lines[i + 1];
            if (after !== undefined && !blank(after) && /^\s*/.exec(after)![0].length >= indent) {
              body.push("");
              i++;
              continue;
            }
            break;
          }
          const lead = /^\s*/.exec(next)![0].length;
          if (lead >= indent) body.push(next.slice(Math.min(lead, indent)));
          else if (!startsBlock(next) && !blank(body[body.length - 1]!)) body.push(next.trim());
          else break;
          i++;
        }
        const inner = depth < MAX_DEPTH ? blocks(body, depth + 1) : [el("p", [body.join("\n")])];
        // A tight item's single paragraph is shown without the paragraph's margins.
        items.push(el("li", inner.length === 1 && inner[0]!.tag === "p" ? inner[0]!.children : inner));
        while (i < lines.length && blank(lines[i]!) && lines[i + 1] !== undefined && ITEM.test(lines[i + 1]!)) i++;
      }
      out.push(ordered ? el("ol", items, start !== undefined && start !== 1 ? { start } : {}) : el("ul", items));
      start = undefined;
      continue;
    }
    if (line.includes("|") && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1]!) && lines[i + 1]!.includes("-")) {
      const head = cells(line);
      i += 2;
      const rows: MdElement[] = [];
      while (i < lines.length && !blank(lines[i]!) && lines[i]!.includes("|")) {
        const row = cells(lines[i++]!);
        rows.push(el("tr", head.map((_, c) => el("td", inline(row[c] ?? "", depth)))));
      }
      out.push(el("table", [el("thead", [el("tr", head.map((c) => el("th", inline(c, depth))))]), el("tbody", rows)]));
      continue;
    }
    if (/^( {4}|\t)/.test(line)) {
      const body: string[] = [];
      while (i < lines.length && (/^( {4}|\t)/.test(lines[i]!) || (blank(lines[i]!) && lines[i + 1] !== undefined && /^( {4}|\t)/.test(lines[i + 1]!)))) body.push(lines[i++]!.replace(/^( {4}|\t)/, ""));
      out.push(el("pre", [el("code", [body.join("\n")])]));
      continue;
    }
    const para: string[] = [];
    while (i < lines.length && !blank(lines[i]!) && (para.length === 0 || !startsBlock(lines[i]!))) {
      // A table starts here: the paragraph ends before it.
      if (para.length && lines[i]!.includes("|") && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1]!) && lines[i + 1]!.includes("-")) break;
      para.push(lines[i++]!.trim());
    }
    out.push(el("p", inline(para.join("\n"), depth)));
  }
  return out;
}

const PUNCT = /[!-/:-@[-`{-~]/;
const WORD = /[\p{L}\p{N}]/u;

/**
 * Inline Markdown: code spans, links, autolinks, emphasis, strong, strike-through, hard breaks
 * (every line break in a paragraph, as chat apps show them), backslash escapes. Each delimiter's
 * next occurrence is remembered, so scanning stays linear even for text full of openers.
 */
export function inline(text: string, depth = 0): MdNode[] {
  const out: MdNode[] = [];
  let buf = "";
  const flush = () => {
    if (buf) out.push(buf);
    buf = "";
  };
  const memo = new Map<string, { from: number; at: number }>();
  const next = (delim: string, from: number): number => {
    const m = memo.get(delim);
    if (m && from >= m.from && (m.at === -1 || from <= m.at)) return m.at;
    const at = text.indexOf(delim, from);
    memo.set(delim, { from, at });
    return at;
  };
  const nested = (s: string) => (depth < MAX_DEPTH ? inline(s, depth + 1) : [s]);

  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "\\" && i + 1 < text.length && PUNCT.test(text[i + 1]!)) {
      buf += text[i + 1];
      i += 2;
      continue;
    }
    if (c === "\n") {
      flush();
      out.push(el("br"));
      i++;
      continue;
    }
    if (c === "`") {
      let n = 1;
      while (text[i + n] === "`") n++;
      const run = "`".repeat(n);
      const close = next(run, i + n);
      // The closing run must be exactly as long; a longer one makes the opener literal (simpler than
      // CommonMark's search past it, and it keeps the scan linear).
      if (close === -1 || text[close + n] === "`") {
        buf += run;
        i += n;
        continue;
      }
      let code = text.slice(i + n, close).replace(/\n/g, " ");
      if (code.length > 2 && code.startsWith(" ") && code.endsWith(" ") && code.trim()) code = code.slice(1, -1);
      flush();
      out.push(el("code", [code]));
      i = close + n;
      continue;
    }
    if (c === "[" || (c === "!" && text[i + 1] === "[")) {
      const image = c === "!";
      const open = image ? i + 1 : i;
      const link = linkAt(text, open, next);
      if (link) {
        flush();
        const href = safeHref(link.url);
        const label = image ? (link.label ? `image: ${link.label}` : "image") : link.label;
        // An unsafe target: the label alone, as text; an image is never loaded, only linked.
        if (href) out.push(el("a", image ? [label] : nested(label), { href }));
        else out.push(...(image ? [label] : nested(label)));
        i = link.end;
        continue;
      }
      buf += c;
      i++;
      continue;
    }
    if (c === "<") {
      const m = /^<((?:https?:\/\/|mailto:)[^\s<>]+)>/i.exec(text.slice(i, i + 2100));
      const href = m ? safeHref(m[1]!) : undefined;
      if (m && href) {
        flush();
        out.push(el("a", [m[1]!], { href }));
        i += m[0].length;
        continue;
      }
      buf += c;
      i++;
      continue;
    }
    if (c === "~" && text[i + 1] === "~") {
      const close = next("~~", i + 2);
      if (close > i + 2 && !/\s/.test(text[i + 2]!) && !/\s/.test(text[close - 1]!)) {
        flush();
        out.push(el("del", nested(text.slice(i + 2, close))));
        i = close + 2;
        continue;
      }
      buf += "~~";
      i += 2;
      continue;
    }
    if (c === "*" || c === "_") {
      const double = text[i + 1] === c;
      const delim = double ? c + c : c;
      const n = delim.length;
      const before = i > 0 ? text[i - 1]! : " ";
      const after = text[i + n] ?? " ";
      // `_` inside a word (snake_case) is not emphasis; an opener must be followed by a non-space.
      const canOpen = !/\s/.test(after) && !(c === "_" && WORD.test(before));
      if (canOpen) {
        const close = next(delim, i + n);
        // A single delimiter closed by a double is left as text (the double belongs to strong).
        if (close > i + n && !(n === 1 && text[close + 1] === c) && !/\s/.test(text[close - 1]!) && !(c === "_" && WORD.test(text[close + n] ?? " "))) {
          flush();
          out.push(el(double ? "strong" : "em", nested(text.slice(i + n, close))));
          i = close + n;
          continue;
        }
      }
      buf += delim;
      i += n;
      continue;
    }
    buf += c;
    i++;
  }
  flush();
  return out;
}

/** `[label](url "title")` at `open` (the `[`), or undefined. Parentheses in the URL may nest (Wikipedia links). */
function linkAt(text: string, open: number, next: (delim: string, from: number) => number): { label: string; url: string; end: number } | undefined {
  const close = next("]", open + 1);
  if (close === -1 || text[close + 1] !== "(") return undefined;
  let depth = 0;
  let end = -1;
  // A bounded scan (a longer or deeper destination is not a link), so text full of `](` stays linear.
  for (let j = close + 2; j < text.length && j < close + 2 + 2100; j++) {
    const ch = text[j];
    if (ch === "\\") j++;
    else if (ch === "(" && ++depth > 16) break;
    else if (ch === ")" && depth-- === 0) {
      end = j;
      break;
    } else if (ch === "\n") break;
  }
  if (end === -1) return undefined;
  let target = text.slice(close + 2, end).trim();
  if (target.startsWith("<") && target.includes(">")) target = target.slice(1, target.indexOf(">"));
  else target = target.replace(/\s+(?:"[^"]*"|'[^']*')$/, "");
  if (/\s/.test(target)) return undefined;
  return { label: text.slice(open + 1, close), url: target, end: end + 1 };
}
