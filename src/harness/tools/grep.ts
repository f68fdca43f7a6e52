/**
 * `grep`: lines matching a JavaScript regular expression in the text files under a path of the
 * working folder, as `file:line:text`. The walk follows no symlinks and skips hidden entries,
 * node_modules, binary files and files over 5 MB. The regex runs in a worker thread that is
 * terminated when the search takes too long or the session is cancelled: a pattern with
 * catastrophic backtracking costs one search, not the session.
 */
import { closeSync, constants, readdirSync } from "node:fs";
import { join } from "node:path";
import { checkInput, isRefused, looksBinary, openInside, readAll, resolveInside, type Inside } from "./paths";
import { toolError, type Tool, type ToolContext } from "./types";

export const MAX_MATCHES = 500;
export const MAX_FILES = 20_000;
export const MAX_FILE_BYTES = 5 * 1024 * 1024;
/** Only this much of a line is searched (minified files have megabyte lines). */
export const MAX_LINE_SCAN = 10_000;
/** Only this much of a matching line is shown. */
export const MAX_LINE_SHOW = 500;
/** How long one search may take (a field, so tests can shorten it). */
export const grepLimits = { timeMs: 30_000 };
/** Text handed to the worker per message. */
const BATCH_BYTES = 4 * 1024 * 1024;

/** The worker: compiles the pattern, answers each batch of files with its matches. */
const WORKER_SOURCE = `
let re;
self.onmessage = (e) => {
  const m = e.data;
  if (m.type === "init") { re = new RegExp(m.pattern, m.flags); return; }
  const out = [];
  let left = m.left;
  for (const f of m.files) {
    const lines = f.text.split("\\n");
    for (let i = 0; i < lines.length && left > 0; i++) {
      let line = lines[i];
      if (line.endsWith("\\r")) line = line.slice(0, -1);
      if (line.length > ${MAX_LINE_SCAN}) line = line.slice(0, ${MAX_LINE_SCAN});
      if (re.test(line)) {
        out.push([f.name, i + 1, line.length > ${MAX_LINE_SHOW} ? line.slice(0, ${MAX_LINE_SHOW}) + "… [line cut]" : line]);
        left--;
      }
    }
    if (left <= 0) break;
  }
  postMessage(out);
};
`;
let workerUrl: string | undefined;

type Match = [file: string, line: number, text: string];

class Stopped extends Error {}

/** Sends one batch and waits for its matches, up to the deadline or the session's abort. */
function ask(worker: Worker, msg: unknown, deadline: number, signal: AbortSignal): Promise<Match[]> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      worker.onmessage = null;
      worker.onerror = null;
    };
    const timer = setTimeout(() => {
      done();
      reject(new Stopped(`grep was stopped after ${grepLimits.timeMs / 1000} s: the pattern is too slow on this text (nested quantifiers like (a+)+ backtrack badly); simplify it or search fewer files`));
    }, Math.max(0, deadline - Date.now()));
    const onAbort = () => {
      done();
      reject(new Stopped("grep was stopped: the session was cancelled"));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    worker.onmessage = (e: MessageEvent) => {
      done();
      resolve(e.data as Match[]);
    };
    worker.onerror = (e: ErrorEvent) => {
      done();
      reject(new Error(e.message || "the search worker failed"));
    };
    worker.postMessage(msg);
  });
}

interface FileEntry {
  rel: string;
  abs: string;
}

/** Regular files under `dir` (relative `rel`), sorted, depth first; no symlinks, hidden entries or node_modules. */
function* walk(dirAbs: string, dirRel: string, skipped: { dirs: number }): Generator<FileEntry> {
  let entries;
  try {
    entries = readdirSync(dirAbs, { withFileTypes: true });
  } catch {
    skipped.dirs++;
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith(".") || e.name === "node_modules" || e.isSymbolicLink()) continue;
    const abs = join(dirAbs, e.name);
    const rel = dirRel === "." ? e.name : `${dirRel}/${e.name}`;
    if (e.isDirectory()) yield* walk(abs, rel, skipped);
    else if (e.isFile()) yield { rel, abs };
  }
}

/** A file's text, or why it was left out. */
function readText(ctx: ToolContext, inside: Inside): string | "binary" | "large" | "unreadable" {
  const opened = openInside(ctx.cwd, inside, constants.O_RDONLY | constants.O_NONBLOCK);
  if (isRefused(opened)) return "unreadable";
  const { fd, stat } = opened;
  try {
    if (!stat.isFile()) return "unreadable";
    if (stat.size > MAX_FILE_BYTES) return "large";
    const bytes = readAll(fd, stat.size);
    if (looksBinary(bytes)) return "binary";
    return bytes.toString("utf8");
  } catch {
    return "unreadable";
  } finally {
    closeSync(fd);
  }
}

export const grepTool: Tool = {
  name: "grep",
  description:
    "Search text files in the working folder for lines matching a JavaScript regular expression; prints `file:line:text`. " +
    `\`path\` is a file or folder (default: the whole working folder); folders are searched recursively, leaving out hidden files and folders, node_modules, symbolic links, binary files and files over ${MAX_FILE_BYTES / 1024 / 1024} MB. ` +
    `At most ${MAX_MATCHES} matching lines are shown.`,
  inputSchema: {
    type: "object",
    properties: {
      pattern: { type: "string", description: "A JavaScript regular expression, e.g. `function\\s+main` or `TODO|FIXME`." },
      path: { type: "string", description: "A file or folder relative to the working folder (default: `.`)." },
      ignoreCase: { type: "boolean", description: "Match letters regardless of case (default false)." },
    },
    required: ["pattern"],
    additionalProperties: false,
  },
  async run(input, ctx) {
    const bad = checkInput("grep", input, { pattern: { type: "string", required: true }, path: { type: "string" }, ignoreCase: { type: "boolean" } });
    if (bad) return bad;
    const pattern = input.pattern as string;
    if (!pattern) return toolError("the pattern is empty");
    const flags = input.ignoreCase ? "i" : "";
    try {
      new RegExp(pattern, flags);
    } catch (err) {
      return toolError(`the pattern is not a valid JavaScript regular expression: ${err instanceof Error ? err.message : String(err)}`);
    }
    const inside = resolveInside(ctx.cwd, (input.path as string | undefined) ?? ".");
    if (isRefused(inside)) return inside;
    if (!inside.stat) return toolError(`${inside.rel} does not exist`);
    const skipped = { dirs: 0, binary: 0, large: 0, unreadable: 0 };
    let files: Iterable<FileEntry>;
    if (inside.stat.isDirectory()) files = walk(inside.abs, inside.rel, skipped);
    else if (inside.stat.isFile()) files = [{ rel: inside.rel, abs: inside.abs }];
    else return toolError(`${inside.rel} is not a regular file or folder`);

    workerUrl ??= URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "application/javascript" }));
    const worker = new Worker(workerUrl);
    const deadline = Date.now() + grepLimits.timeMs;
    const matches: Match[] = [];
    let searched = 0;
    let tooManyFiles = false;
    let stopped: string | undefined;
    try {
      worker.postMessage({ type: "init", pattern, flags });
      let batch: { name: string; text: string }[] = [];
      let batchBytes = 0;
      const flush = async () => {
        if (!batch.length) return;
        const found = await ask(worker, { type: "scan", files: batch, left: MAX_MATCHES - matches.length }, deadline, ctx.signal);
        matches.push(...found);
        batch = [];
        batchBytes = 0;
      };
      for (const f of files) {
        if (matches.length >= MAX_MATCHES) break;
        if (ctx.signal.aborted) throw new Stopped("grep was stopped: the session was cancelled");
        if (searched >= MAX_FILES) {
          tooManyFiles = true;
          break;
        }
        const text = readText(ctx, { abs: f.abs, rel: f.rel, stat: inside.stat });
        if (text === "binary" || text === "large" || text === "unreadable") {
          skipped[text]++;
          // A single file named outright says why it was not searched.
          if (!inside.stat.isDirectory()) return toolError(`${inside.rel} ${text === "binary" ? "is a binary file" : text === "large" ? `is larger than ${MAX_FILE_BYTES} bytes` : "cannot be read"}; grep searches text files only`);
          continue;
        }
        searched++;
        batch.push({ name: f.rel, text });
        batchBytes += text.length;
        if (batchBytes >= BATCH_BYTES) await flush();
      }
      if (matches.length < MAX_MATCHES) await flush();
    } catch (err) {
      if (!(err instanceof Stopped)) throw err;
      stopped = err.message;
    } finally {
      worker.terminate();
    }
    const notes: string[] = [];
    if (matches.length >= MAX_MATCHES) notes.push(`[stopped at ${MAX_MATCHES} matching lines: narrow the pattern or the path]`);
    if (tooManyFiles) notes.push(`[stopped after searching ${MAX_FILES} files: give a narrower path]`);
    const left = [
      skipped.binary && `${skipped.binary} binary`,
      skipped.large && `${skipped.large} over ${MAX_FILE_BYTES / 1024 / 1024} MB`,
      skipped.unreadable && `${skipped.unreadable} unreadable`,
      skipped.dirs && `${skipped.dirs} unreadable folder${skipped.dirs === 1 ? "" : "s"}`,
    ].filter(Boolean);
    if (left.length) notes.push(`[files left out: ${left.join(", ")}]`);
    const lines = matches.slice(0, MAX_MATCHES).map(([file, line, text]) => `${file}:${line}:${text}`);
    if (stopped) return toolError([stopped, ...(lines.length ? ["matches found before it stopped:", ...lines] : []), ...notes].join("\n"));
    if (!lines.length) return { output: [`no lines match /${pattern}/${flags} in ${inside.rel} (${searched} file${searched === 1 ? "" : "s"} searched)`, ...notes].join("\n") };
    return { output: [...lines, ...notes].join("\n") };
  },
};
