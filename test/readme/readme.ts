/**
 * Reading the README's examples for test/e2e/readme.test.ts: fenced blocks with the heading they
 * sit under, the commands in them with the output the README shows for each, and turning that
 * shown output into a check (JSON shapes and lines where ids, tokens, timestamps and `…` are
 * wildcards). Pure functions; the test runs the commands.
 */
import { randomBytes } from "node:crypto";
import type { Subprocess } from "bun";

export interface Block {
  /** The text of the nearest heading above the block, without the #s. */
  heading: string;
  /** The fence's info string: "sh", "yaml", "json", "" … */
  lang: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The lines between the fences, with the fence's indentation removed. */
  body: string[];
}

export interface Example {
  /** The command as the README writes it (continuation lines kept, trailing comment removed). */
  command: string;
  /** 1-based README line where the command starts. */
  line: number;
  /**
   * What the README shows for it: the `# …` comment after the command or on the lines below it
   * (sh blocks), or the lines after `$ command` (transcript blocks).
   */
  shown?: string;
  /** Where the shown output came from. */
  from: "sh" | "transcript";
}

/** Every fenced block, in order. Fences may be indented (inside list items). */
export function fencedBlocks(markdown: string): Block[] {
  const lines = markdown.split("\n");
  const blocks: Block[] = [];
  let heading = "";
  for (let i = 0; i < lines.length; i++) {
    const fence = /^( *)(`{3,})([\w+-]*)\s*$/.exec(lines[i]!);
    if (!fence) {
      const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(lines[i]!);
      if (h) heading = h[1]!;
      continue;
    }
    const indent = fence[1]!.length;
    const close = new RegExp(`^ *${fence[2]}\\s*$`);
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !close.test(lines[j]!); j++) {
      const l = lines[j]!;
      body.push(l.slice(Math.min(indent, l.length - l.trimStart().length)));
    }
    blocks.push({ heading, lang: fence[3]!, line: i + 1, body });
    i = j;
  }
  return blocks;
}

/** Shell blocks, and other blocks that show a `$ command` with its output. */
export const isShellExample = (b: Block) => b.lang === "sh" || b.lang === "bash" || b.lang === "shell" || (b.lang === "" && b.body.some((l) => l.startsWith("$ ")));

/** Splits `cmd   # comment` at the first `#` that starts a word outside quotes. */
export function splitComment(line: string): { code: string; comment?: string } {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === "\\" && quote === '"') i++;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "\\") i++;
    else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]!))) return { code: line.slice(0, i).trimEnd(), comment: line.slice(i + 1).trim() };
  }
  return { code: line.trimEnd() };
}

/** The commands of a block with what the README shows for each. */
export function examplesOf(block: Block): Example[] {
  const examples: Example[] = [];
  const first = block.line + 1;
  if (block.lang !== "sh" && block.lang !== "bash" && block.lang !== "shell") {
    // A transcript: `$ command`, then the lines it prints.
    for (let i = 0; i < block.body.length; i++) {
      const l = block.body[i]!;
      if (l.startsWith("$ ")) examples.push({ command: l.slice(2).trim(), line: first + i, from: "transcript" });
      else if (l.trim() && examples.length) {
        const ex = examples[examples.length - 1]!;
        ex.shown = ex.shown === undefined ? l : `${ex.shown}\n${l}`;
      }
    }
    return examples;
  }
  for (let i = 0; i < block.body.length; i++) {
    const raw = block.body[i]!;
    if (!raw.trim()) continue;
    if (raw.trimStart().startsWith("#")) {
      const ex = examples[examples.length - 1];
      if (!ex) throw new Error(`README.md:${first + i}: a comment before any command in a sh block`);
      const text = raw.trim().replace(/^#\s?/, "");
      ex.shown = ex.shown === undefined ? text : `${ex.shown}\n${text}`;
      continue;
    }
    const start = i;
    const parts = [raw];
    while (parts[parts.length - 1]!.endsWith("\\") && i + 1 < block.body.length) parts.push(block.body[++i]!);
    const { code, comment } = splitComment(parts.pop()!);
    parts.push(code);
    examples.push({ command: parts.join("\n").trim(), line: first + start, shown: comment, from: "sh" });
  }
  return examples;
}

/** What a shown output asks for. */
export interface Expectation {
  /** Words around the output (`prints`, `HTTP 200 at once`, `follows the session, prints the reply`). */
  prose?: string;
  /** A JSON body, in the README's notation (with `…`). */
  json?: string;
  /** One line of output (a `prints "…"` comment). */
  line?: string;
  /** A table's header (`NAME  AGENT  PHASE`). */
  header?: string[];
  /** Exact output lines (transcripts), wildcards aside. */
  lines?: string[];
}

export function expectationOf(ex: Example): Expectation {
  const shown = ex.shown;
  if (shown === undefined) return {};
  if (ex.from === "transcript") return { lines: shown.split("\n") };
  const brace = shown.indexOf("{");
  if (brace >= 0) return { prose: shown.slice(0, brace).replace(/:\s*$/, "").trim() || undefined, json: shown.slice(brace) };
  const quoted = /^(.*?)\s*"(.*)"$/.exec(shown);
  if (quoted) return { prose: quoted[1] || undefined, line: quoted[2] };
  if (/^[A-Z]+(\s+[A-Z]+)+$/.test(shown)) return { header: shown.split(/\s+/) };
  return { prose: shown };
}

// ---------------------------------------------------------------------------------------------
// Wildcards. The README's example values stand for values of the same form.

/** A session name as the README writes one: `<agent>-wh-<8 hex>` or `<agent>-run-<8 hex>`. */
export const SESSION_NAME = /\b([a-z0-9]+(?:-[a-z0-9]+)*?)-(wh|run)-([0-9a-f]{8})\b/g;

export interface Wildcards {
  /** The README's `http://localhost:8080` becomes this (the real server's public URL). */
  publicUrl: string;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * A shown line as a regular expression: `…` is anything, `<token>` a 64-hex webhook token, a
 * session name any session name of the same agent and kind, localhost:8080 the real server.
 */
export function linePattern(shown: string, w: Wildcards): RegExp {
  const parts = shown.replaceAll("http://localhost:8080", w.publicUrl).split(/(…|<token>|\b[a-z0-9]+(?:-[a-z0-9]+)*?-(?:wh|run)-[0-9a-f]{8}\b)/);
  const re = parts
    .map((p, i) => {
      if (i % 2 === 0) return escape(p);
      if (p === "…") return ".*";
      if (p === "<token>") return "[0-9a-f]{64}";
      return sessionNamePattern(p);
    })
    .join("");
  return new RegExp(`^${re}$`);
}

const sessionNamePattern = (name: string) => {
  const m = new RegExp(SESSION_NAME.source).exec(name)!;
  return `${escape(m[1]!)}-${m[2]}-[0-9a-f]{8}`;
};

const ANY = `\u0000any:${randomBytes(4).toString("hex")}`;
const MORE = `\u0000more:${randomBytes(4).toString("hex")}`;

/** The README's JSON notation as a value: `"…"` is any string, `,…}` means more members may follow. */
export function readJsonPattern(text: string): unknown {
  const json = text
    .replaceAll('"…"', JSON.stringify(ANY))
    .replace(/,\s*…\s*}/g, `,${JSON.stringify(MORE)}:true}`)
    .replace(/,\s*…\s*]/g, `,${JSON.stringify(MORE)}]`);
  return JSON.parse(json);
}

/**
 * Compares a value with the README's JSON. Objects must have the same members (unless the README
 * wrote `,…`), arrays the same length; strings are literal except `"…"`, session names (same
 * agent and kind) and model output: the `response`/`text` of an agent other than `echo`, whose
 * pai/echo model replies with the prompt. Returns the differences, with their paths.
 */
export function matchJson(actual: unknown, expected: unknown, path = "$", agent?: string): string[] {
  if (expected === ANY) return typeof actual === "string" ? [] : [`${path}: expected a string, got ${JSON.stringify(actual)}`];
  if (typeof expected === "string") {
    if (new RegExp(`^${SESSION_NAME.source}$`).test(expected)) {
      const re = new RegExp(`^${sessionNamePattern(expected)}$`);
      return typeof actual === "string" && re.test(actual) ? [] : [`${path}: expected a session name like ${JSON.stringify(expected)} (${re.source}), got ${JSON.stringify(actual)}`];
    }
    const leaf = path.slice(path.lastIndexOf(".") + 1);
    if ((leaf === "response" || leaf === "text") && agent !== undefined && agent !== "echo")
      return typeof actual === "string" ? [] : [`${path}: expected the model's reply (a string), got ${JSON.stringify(actual)}`];
    return actual === expected ? [] : [`${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`];
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return [`${path}: expected an array, got ${JSON.stringify(actual)}`];
    const open = expected[expected.length - 1] === MORE;
    const items = open ? expected.slice(0, -1) : expected;
    if (open ? actual.length < items.length : actual.length !== items.length) return [`${path}: expected ${items.length}${open ? " or more" : ""} items, got ${actual.length}: ${JSON.stringify(actual)}`];
    return items.flatMap((e, i) => matchJson(actual[i], e, `${path}[${i}]`, agent));
  }
  if (expected && typeof expected === "object") {
    if (!actual || typeof actual !== "object" || Array.isArray(actual)) return [`${path}: expected an object, got ${JSON.stringify(actual)}`];
    const exp = expected as Record<string, unknown>;
    const act = actual as Record<string, unknown>;
    const open = MORE in exp;
    const keys = Object.keys(exp).filter((k) => k !== MORE);
    const problems: string[] = [];
    const missing = keys.filter((k) => !(k in act));
    if (missing.length) problems.push(`${path}: missing ${missing.join(", ")} (got ${JSON.stringify(actual)})`);
    const extra = open ? [] : Object.keys(act).filter((k) => !(k in exp));
    if (extra.length) problems.push(`${path}: has ${extra.map((k) => `${k} (${JSON.stringify(act[k])})`).join(", ")}, which the README's example does not show${open ? "" : " (no `,…`)"}`);
    const nextAgent = typeof exp.agentDefinition === "string" ? exp.agentDefinition : agent;
    for (const k of keys) if (k in act) problems.push(...matchJson(act[k], exp[k], `${path}.${k}`, nextAgent));
    return problems;
  }
  return actual === expected ? [] : [`${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`];
}

// ---------------------------------------------------------------------------------------------
// One bash session for all examples, so variables (URL, TOKEN) carry from block to block.

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  /** The HTTP status of each curl call in the command, in order. */
  http: number[];
  ms: number;
}

const STATUS_MARK = "@@readme-test-http";

export class Shell {
  private proc: Subprocess<"pipe", "pipe", "pipe">;
  private out = "";
  private err = "";
  private n = 0;
  private waiting?: () => void;

  constructor(
    readonly cwd: string,
    env: Record<string, string | undefined>,
  ) {
    this.proc = Bun.spawn(["bash", "--noprofile", "--norc"], { cwd, env, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    const pump = async (stream: ReadableStream<Uint8Array>, add: (s: string) => void) => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) {
        add(decoder.decode(chunk, { stream: true }));
        this.waiting?.();
      }
      this.waiting?.();
    };
    void pump(this.proc.stdout, (s) => (this.out += s));
    void pump(this.proc.stderr, (s) => (this.err += s));
    // As a user's interactive shell would not, stop a pipeline that fails in the middle; and
    // report each curl call's HTTP status on stderr, where the test takes it out again.
    this.send(`set -o pipefail\ncurl() { command curl -sS -w '%{stderr}\\n${STATUS_MARK} %{http_code}\\n' "$@"; }\n`);
  }

  private send(text: string) {
    this.proc.stdin.write(text);
    this.proc.stdin.flush();
  }

  /** Runs one command in the session (its stdin is /dev/null); its output goes to files read back. */
  async run(command: string, timeoutMs: number): Promise<Ran> {
    const n = ++this.n;
    const base = `${this.cwd}/.readme-test/${n}`;
    const done = new RegExp(`^@@readme-test-done ${n} (\\d+)$`, "m");
    const started = performance.now();
    this.send(`mkdir -p .readme-test\n{ ${command}\n} >'${base}.out' 2>'${base}.err' </dev/null\necho "@@readme-test-done ${n} $?"\n`);
    const deadline = Date.now() + timeoutMs;
    let m: RegExpExecArray | null;
    while (!(m = done.exec(this.out))) {
      if (this.proc.exitCode !== null || this.proc.signalCode) throw new Error(`bash exited (${this.proc.exitCode ?? this.proc.signalCode}); its stderr:\n${this.err}`);
      if (Date.now() > deadline) {
        this.kill();
        throw new Error(`still running after ${timeoutMs} ms (the shell was stopped); its output so far:\n${await Bun.file(`${base}.out`).text().catch(() => "")}${await Bun.file(`${base}.err`).text().catch(() => "")}`);
      }
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
        setTimeout(resolve, 100);
      });
    }
    const ms = performance.now() - started;
    const stdout = await Bun.file(`${base}.out`).text();
    const rawErr = await Bun.file(`${base}.err`).text();
    const http: number[] = [];
    const stderr = rawErr.replace(new RegExp(`\\n?${STATUS_MARK} (\\d+)\\n`, "g"), (_, code: string) => {
      http.push(Number(code));
      return "";
    });
    return { code: Number(m[1]), stdout, stderr, http, ms };
  }

  /** Stops the shell and whatever it is running (its children, by the shell's pid). */
  kill() {
    Bun.spawnSync(["pkill", "-KILL", "-P", String(this.proc.pid)]);
    this.proc.kill("SIGKILL");
  }

  async close() {
    try {
      this.proc.stdin.end();
    } catch {
      // Already gone.
    }
    const exited = await Promise.race([this.proc.exited, Bun.sleep(2000).then(() => undefined)]);
    if (exited === undefined) this.kill();
  }
}
