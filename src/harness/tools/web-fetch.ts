/**
 * `web_fetch`: GET a web page and read it as text. The URL comes from a model that a stranger's
 * webhook payload can steer, so it goes through the same rules as callbacks (lib/safe-fetch):
 * http(s) only, the host resolved once and every address checked (no loopback, private or
 * link-local target unless the operator allows private fetches), the connection made to the
 * checked address. Redirects are followed by hand, a few at most, each target checked again. No
 * proxy is used: the session's environment is the caller's to set, and a proxy would connect to
 * whatever it likes.
 */
import { ResolveError, safeFetch, SsrfError } from "../../lib/safe-fetch";
import type { Resolver } from "../../lib/ssrf";
import { toolError, type Tool, type ToolContext, type ToolOutput } from "./types";

export interface WebFetchOptions {
  /** Host name → addresses (default: the system resolver). */
  resolve?: Resolver;
  /** Why an address is forbidden (default: lib/ssrf's rule). Tests stand a loopback address in for a public one. */
  addressProblem?: (ip: string) => string | null;
  /** For the whole fetch, redirects and body included. Default 30 s. */
  timeoutMs?: number;
  /** Bytes of body read at most. Default 5 MB. */
  maxBytes?: number;
  /** Redirects followed at most. Default 5. */
  maxRedirects?: number;
}

const MAX_URL_LENGTH = 8192;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MB = 1024 * 1024;

export function createWebFetchTool(opts: WebFetchOptions = {}): Tool {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const maxBytes = opts.maxBytes ?? 5 * MB;
  const maxRedirects = opts.maxRedirects ?? 5;
  return {
    name: "web_fetch",
    description:
      "Fetches a web page with GET and returns it as text: HTML is reduced to readable text (headings, paragraphs, lists, links as `text (url)`); other text types (JSON, plain text, XML) come as they are. Binary content is refused. Only public http:// and https:// URLs.",
    inputSchema: {
      type: "object",
      properties: { url: { type: "string", description: "The absolute http:// or https:// URL to fetch." } },
      required: ["url"],
      additionalProperties: false,
    },
    async run(input, ctx) {
      const extra = Object.keys(input).filter((k) => k !== "url");
      if (extra.length) return toolError(`web_fetch only GETs a URL: its input is {url} and nothing else (got ${extra.join(", ")})`);
      const url = input.url;
      if (typeof url !== "string" || !url.trim()) return toolError("web_fetch needs url: an absolute http:// or https:// URL");
      if (url.length > MAX_URL_LENGTH) return toolError(`the url is longer than ${MAX_URL_LENGTH} characters`);
      const problem = urlProblem(url.trim());
      if (problem) return toolError(problem);

      const timeout = AbortSignal.timeout(timeoutMs);
      const signal = AbortSignal.any([ctx.signal, timeout]);
      const asked = new URL(url.trim()).href;
      let current = new URL(asked);
      try {
        for (let hops = 0; ; hops++) {
          const res = await safeFetch(
            current,
            { method: "GET", headers: HEADERS, signal, proxy: false },
            { allowPrivate: ctx.allowPrivateFetch, resolve: opts.resolve, addressProblem: opts.addressProblem },
          );
          const location = res.headers.get("location");
          if (!REDIRECTS.has(res.status) || !location) return await readPage(res, current, asked, { maxBytes });
          await res.body?.cancel().catch(() => undefined);
          if (hops >= maxRedirects) return toolError(`${asked} redirected more than ${maxRedirects} times (the last one to ${location.slice(0, 500)})`);
          // Relative to the URL asked for, not Response.url (which is the pinned address).
          const next = URL.parse(location, current);
          const why = next ? urlProblem(next.href) : "it is not a valid URL";
          if (why || !next) return toolError(`${current.href} redirected to ${location.slice(0, 500)}, which is refused: ${why}`);
          current = next;
        }
      } catch (err) {
        return failure(err, current, asked, ctx, timeout.aborted, timeoutMs);
      }
    },
  };
}

export const webFetchTool: Tool = createWebFetchTool();

const HEADERS = {
  accept: "text/html,application/xhtml+xml,text/plain;q=0.9,application/json;q=0.9,*/*;q=0.5",
  "user-agent": "Mozilla/5.0 (compatible; pai-web-fetch/1.0)",
};

/** Why a URL may not be fetched, checked without the network; null when it may. */
function urlProblem(url: string): string | null {
  const u = URL.parse(url);
  if (!u) return `${url.slice(0, 500)} is not an absolute URL; web_fetch needs http:// or https://`;
  if (u.protocol !== "http:" && u.protocol !== "https:") return `web_fetch fetches only http:// and https:// URLs, not ${u.protocol}`;
  if (u.username || u.password) return "the URL may not contain a user name or password";
  return null;
}

function failure(err: unknown, current: URL, asked: string, ctx: ToolContext, timedOut: boolean, timeoutMs: number): ToolOutput {
  const where = current.href === asked ? asked : `${current.href} (redirected from ${asked})`;
  if (ctx.signal.aborted) return toolError("web_fetch was stopped: the session was aborted");
  if (timedOut) return toolError(`${where} did not answer within ${timeoutMs / 1000} s`);
  if (err instanceof SsrfError) {
    const hint = /address|resolves/.test(err.message) ? " (loopback, private and link-local addresses may not be fetched)" : "";
    return toolError(`web_fetch refused ${where}: ${err.message}${hint}`);
  }
  if (err instanceof ResolveError) return toolError(`could not fetch ${where}: ${err.message}`);
  const code = (err as { code?: unknown })?.code;
  const msg = err instanceof Error ? err.message : String(err);
  return toolError(`could not fetch ${where}: ${msg}${typeof code === "string" && !msg.includes(code) ? ` (${code})` : ""}`);
}

/** The page as the model gets it: text, an error for HTTP errors, binary refused. */
async function readPage(res: Response, url: URL, asked: string, o: { maxBytes: number }): Promise<ToolOutput> {
  const type = (res.headers.get("content-type") ?? "").trim();
  const mime = type.split(";")[0]!.trim().toLowerCase();
  if (mime && !isText(mime) && mime !== "application/octet-stream") {
    await res.body?.cancel().catch(() => undefined);
    return toolError(`${url.href} is ${mime}, not text or HTML; web_fetch reads only text`);
  }
  const { bytes, cut } = await readCapped(res, o.maxBytes);
  // Without a declared text type, the bytes decide: text is valid UTF-8 without NUL bytes.
  if (!mime || mime === "application/octet-stream") {
    if (!looksLikeText(bytes)) return toolError(`${url.href} is ${mime || "of no declared type"} and not text; web_fetch reads only text`);
  }
  const head = new TextDecoder("latin1").decode(bytes.subarray(0, 1024));
  const html = mime === "text/html" || mime === "application/xhtml+xml" || (!isText(mime) && /^\s*(<!doctype html|<html)/i.test(head));
  const charset = charsetOf(type) ?? (html ? /<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)/i.exec(head)?.[1] : undefined);
  const raw = decode(bytes, charset);
  let text = html ? htmlToText(raw, url) : raw;
  if (!text.trim()) text = "(the page has no text)";
  const notes: string[] = [];
  if (url.href !== asked) notes.push(`(redirected to ${url.href})`);
  const out = [...notes, text].join("\n\n") + (cut ? `\n\n[the body is larger than ${formatBytes(o.maxBytes)}; only the first ${formatBytes(o.maxBytes)} were read]` : "");
  if (res.status >= 400) return toolError(`HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""} from ${url.href}\n\n${out}`);
  if (res.status >= 300) return toolError(`HTTP ${res.status} from ${url.href} (not followed: no usable Location)\n\n${out}`);
  return { output: out };
}

const formatBytes = (n: number) => (n % MB === 0 ? `${n / MB} MB` : `${n} bytes`);

function isText(mime: string): boolean {
  return (
    mime.startsWith("text/") ||
    mime.endsWith("+json") ||
    mime.endsWith("+xml") ||
    /^application\/(json|xml|xhtml\+xml|javascript|ecmascript|x-javascript|x-yaml|yaml|toml|x-sh|sql|graphql|csv|x-ndjson|ndjson|jsonl?)$/.test(mime)
  );
}

/** Reads the body up to `max` bytes and stops reading there (the connection is dropped). */
async function readCapped(res: Response, max: number): Promise<{ bytes: Uint8Array; cut: boolean }> {
  if (!res.body) return { bytes: new Uint8Array(), cut: false };
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let cut = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (size + value.byteLength > max) {
      chunks.push(value.subarray(0, max - size));
      size = max;
      cut = true;
      await reader.cancel().catch(() => undefined);
      break;
    }
    chunks.push(value);
    size += value.byteLength;
  }
  return { bytes: Buffer.concat(chunks, size), cut };
}

function looksLikeText(bytes: Uint8Array): boolean {
  const sample = bytes.subarray(0, 8192);
  if (sample.includes(0)) return false;
  try {
    // A cut in the middle of a character at the sample's end is not a reason to call it binary.
    new TextDecoder("utf-8", { fatal: true }).decode(sample.length < bytes.length ? sample.subarray(0, Math.max(0, sample.length - 4)) : sample);
    return true;
  } catch {
    return false;
  }
}

function charsetOf(contentType: string): string | undefined {
  return /;\s*charset\s*=\s*"?([\w.:-]+)"?/i.exec(contentType)?.[1];
}

function decode(bytes: Uint8Array, charset: string | undefined): string {
  try {
    return new TextDecoder(charset ?? "utf-8").decode(bytes);
  } catch {
    // An unknown charset label: UTF-8 is the best guess.
    return new TextDecoder("utf-8").decode(bytes);
  }
}

// ---- HTML to text ----

/** Elements whose content is not text to read (dropped with everything inside). */
const SKIPPED = new Set(["nav", "svg", "math", "template", "select", "datalist", "object", "canvas", "audio", "video", "map"]);
/** Elements whose content is raw text up to their end tag (the title is kept, the rest dropped). */
const RAW_TEXT = new Set(["script", "style", "title", "textarea", "xmp", "iframe", "noembed", "noframes", "noscript"]);
/** Elements that start and end a paragraph. */
const PARAGRAPH = new Set([
  "p", "div", "section", "article", "main", "header", "footer", "aside", "blockquote", "figure", "figcaption", "form", "fieldset",
  "address", "details", "summary", "table", "dl", "ul", "ol", "pre", "body", "center", "hgroup", "legend", "caption",
]);
/** Elements that start a line. */
const LINE = new Set(["li", "tr", "dt", "dd", "option"]);

/** HTML as readable text: no scripts, styles or navigation; headings, paragraphs, lists and links (`text (url)`) kept. */
export function htmlToText(html: string, base?: URL): string {
  const out = new TextOut();
  let title = "";
  const skip: string[] = [];
  const links: { href: string | null; at: number }[] = [];
  const lists: { ordered: boolean; n: number }[] = [];
  let pre = 0;
  let firstCell = true;
  let i = 0;
  const n = html.length;
  while (i < n) {
    const lt = html.indexOf("<", i);
    const textEnd = lt === -1 ? n : lt;
    if (textEnd > i && !skip.length) out.text(decodeEntities(html.slice(i, textEnd)), pre > 0);
    if (lt === -1) break;
    i = lt;
    const next = html[i + 1] ?? "";
    if (html.startsWith("<!--", i)) {
      const end = html.indexOf("-->", i + 4);
      if (end === -1) break;
      i = end + 3;
      continue;
    }
    if (next === "!" || next === "?") {
      const end = html.indexOf(">", i);
      if (end === -1) break;
      i = end + 1;
      continue;
    }
    const closing = next === "/";
    const nameMatch = /^[a-zA-Z][a-zA-Z0-9:-]*/.exec(html.slice(i + (closing ? 2 : 1), i + (closing ? 2 : 1) + 64));
    if (!nameMatch) {
      // A `<` that starts no tag is text.
      if (!skip.length) out.text("<", pre > 0);
      i++;
      continue;
    }
    const name = nameMatch[0].toLowerCase();
    const end = tagEnd(html, i + (closing ? 2 : 1) + nameMatch[0].length);
    if (end === -1) break;
    const attrs = html.slice(i + (closing ? 2 : 1) + nameMatch[0].length, end);
    i = end + 1;

    if (closing) {
      if (skip.length) {
        // An end tag closes its element and any left open inside it.
        const at = skip.lastIndexOf(name);
        if (at !== -1) skip.length = at;
        continue;
      }
      if (name === "a") {
        const link = links.pop();
        const text = link ? out.since(link.at).trim() : "";
        if (link?.href && text && text !== link.href) out.literal(` (${link.href})`);
      } else if (/^h[1-6]$/.test(name)) out.breakLine(2);
      else if (name === "pre") {
        pre = Math.max(0, pre - 1);
        out.breakLine(2);
      } else if (name === "ul" || name === "ol") {
        lists.pop();
        out.breakLine(lists.length ? 1 : 2);
      } else if (PARAGRAPH.has(name)) out.breakLine(2);
      else if (LINE.has(name)) out.breakLine(1);
      continue;
    }

    if (RAW_TEXT.has(name)) {
      const close = new RegExp(`</${name}[\\s/>]`, "gi");
      close.lastIndex = i;
      const m = close.exec(html);
      const body = html.slice(i, m ? m.index : n);
      if (name === "title" && !title) title = decodeEntities(body).replace(/\s+/g, " ").trim();
      if (!m) break;
      const after = html.indexOf(">", m.index);
      i = after === -1 ? n : after + 1;
      continue;
    }
    if (skip.length) {
      if (SKIPPED.has(name) && !attrs.trimEnd().endsWith("/")) skip.push(name);
      continue;
    }
    if (SKIPPED.has(name)) {
      if (!attrs.trimEnd().endsWith("/")) skip.push(name);
      continue;
    }
    const heading = /^h([1-6])$/.exec(name);
    if (heading) {
      out.breakLine(2);
      out.literal(`${"#".repeat(Number(heading[1]))} `);
    } else if (name === "br") out.breakLine(1, true);
    else if (name === "hr") {
      out.breakLine(2);
      out.literal("---");
      out.breakLine(2);
    } else if (name === "pre") {
      out.breakLine(2);
      pre++;
    } else if (name === "ul" || name === "ol") {
      out.breakLine(lists.length ? 1 : 2);
      lists.push({ ordered: name === "ol", n: 0 });
    } else if (name === "li") {
      out.breakLine(1);
      const list = lists.at(-1);
      out.literal(`${"  ".repeat(Math.max(0, lists.length - 1))}${list?.ordered ? `${++list.n}.` : "-"} `);
    } else if (name === "tr") {
      out.breakLine(1);
      firstCell = true;
    } else if (name === "td" || name === "th") {
      if (!firstCell) out.literal(" | ");
      firstCell = false;
    } else if (name === "a") {
      // Links are kept in a bounded stack: unclosed <a> tags must not grow it without end.
      if (links.length < 64) links.push({ href: linkTarget(attr(attrs, "href"), base), at: out.mark() });
    } else if (name === "img") {
      const alt = attr(attrs, "alt")?.trim();
      if (alt) out.text(`[${decodeEntities(alt)}]`, false);
    } else if (PARAGRAPH.has(name)) out.breakLine(2);
    else if (LINE.has(name)) out.breakLine(1);
  }
  const body = out.toString();
  return title && !body.startsWith(`# ${title}`) ? `# ${title}\n\n${body}`.trimEnd() : body;
}

/** Where a tag that started before `from` ends (its `>`, outside quotes), or -1. */
function tagEnd(html: string, from: number): number {
  let quote = "";
  for (let j = from; j < html.length; j++) {
    const c = html[j]!;
    if (quote) {
      if (c === quote) quote = "";
    } else if (c === '"' || c === "'") {
      // Quotes only open an attribute value right after `=`.
      if (/=\s*$/.test(html.slice(Math.max(from, j - 8), j))) quote = c;
    } else if (c === ">") return j;
  }
  return -1;
}

function attr(attrs: string, name: string): string | undefined {
  const re = /([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g;
  for (let m = re.exec(attrs); m; m = re.exec(attrs)) {
    if (m[1]!.toLowerCase() === name) return decodeEntities(m[2] ?? m[3] ?? m[4] ?? "");
  }
  return undefined;
}

/** An absolute http(s) or mailto link, or null for anchors, scripts and the like. */
function linkTarget(href: string | undefined, base: URL | undefined): string | null {
  const h = href?.trim();
  if (!h || h.startsWith("#")) return null;
  const u = URL.parse(h, base);
  if (!u || !["http:", "https:", "mailto:"].includes(u.protocol)) return null;
  return u.href;
}

/** Text with collapsed whitespace and explicit line breaks. */
class TextOut {
  private parts: string[] = [];
  /** Newlines at the end of the output (2 at the start, so it begins with no blank line). */
  private newlines = 2;
  private space = false;

  private push(s: string) {
    this.parts.push(s);
  }

  text(s: string, pre: boolean) {
    if (!s) return;
    if (pre) {
      this.flushSpace();
      this.push(s);
      const trailing = /\n*$/.exec(s)![0].length;
      this.newlines = trailing === s.length ? this.newlines + trailing : trailing;
      return;
    }
    s = s.replace(/[ \t\n\r\f]+/g, " ");
    if (s === " ") {
      if (!this.newlines) this.space = true;
      return;
    }
    // Only the collapsed ASCII space is trimmed: a no-break space is text (String.trim would drop it).
    if (s.startsWith(" ")) {
      if (!this.newlines) this.space = true;
      s = s.slice(1);
    }
    const endSpace = s.endsWith(" ");
    if (endSpace) s = s.slice(0, -1);
    if (!s) return;
    this.flushSpace();
    this.push(s);
    this.newlines = 0;
    this.space = endSpace;
  }

  /** Markup of our own (`# `, `- `, ` (url)`), never collapsed. */
  literal(s: string) {
    this.flushSpace();
    this.push(s);
    this.newlines = 0;
  }

  breakLine(n: number, force = false) {
    this.space = false;
    if (force && n === 1 && this.newlines < 2) {
      this.push("\n");
      this.newlines++;
      return;
    }
    if (this.newlines >= n) return;
    this.push("\n".repeat(n - this.newlines));
    this.newlines = n;
  }

  mark(): number {
    return this.parts.length;
  }

  /** What was written since `mark()` returned `at` (only that part is joined: a page has many links). */
  since(at: number): string {
    return this.parts.slice(at).join("");
  }

  private flushSpace() {
    if (this.space && !this.newlines) this.push(" ");
    this.space = false;
  }

  toString(): string {
    return this.parts
      .join("")
      .replace(/[ \t]+\n/g, "\n")
      .replace(/\n{3,}/g, "\n\n")
      .replace(/\u00a0/g, " ")
      .trim();
  }
}

const NAMED: Record<string, string> = {
  amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0", shy: "", copy: "©", reg: "®", trade: "™",
  hellip: "…", mdash: "—", ndash: "–", lsquo: "‘", rsquo: "’", sbquo: "‚", ldquo: "“", rdquo: "”", bdquo: "„",
  laquo: "«", raquo: "»", lsaquo: "‹", rsaquo: "›", bull: "•", middot: "·", euro: "€", pound: "£", yen: "¥", cent: "¢",
  sect: "§", para: "¶", deg: "°", plusmn: "±", times: "×", divide: "÷", frac12: "½", frac14: "¼", frac34: "¾",
  micro: "µ", larr: "←", rarr: "→", uarr: "↑", darr: "↓", harr: "↔", le: "≤", ge: "≥", ne: "≠", asymp: "≈",
  infin: "∞", minus: "−", prime: "′", Prime: "″", dagger: "†", Dagger: "‡", permil: "‰", iexcl: "¡", iquest: "¿",
  ensp: "\u2002", emsp: "\u2003", thinsp: "\u2009", zwnj: "\u200c", zwj: "\u200d", check: "✓", hearts: "♥",
  auml: "ä", ouml: "ö", uuml: "ü", Auml: "Ä", Ouml: "Ö", Uuml: "Ü", szlig: "ß", eacute: "é", egrave: "è", ecirc: "ê",
  aacute: "á", agrave: "à", acirc: "â", iacute: "í", oacute: "ó", uacute: "ú", ntilde: "ñ", ccedil: "ç", Eacute: "É",
  oslash: "ø", aring: "å", aelig: "æ", Oslash: "Ø", Aring: "Å", AElig: "Æ",
};

/** Named (common ones) and numeric character references. */
export function decodeEntities(s: string): string {
  if (!s.includes("&")) return s;
  return s.replace(/&(#[xX][0-9a-fA-F]{1,8}|#[0-9]{1,10}|[a-zA-Z][a-zA-Z0-9]{1,31});?/g, (whole, ref: string) => {
    if (ref[0] === "#") {
      const code = ref[1] === "x" || ref[1] === "X" ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      if (!code || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return "\ufffd";
      return String.fromCodePoint(code);
    }
    return NAMED[ref] ?? whole;
  });
}
