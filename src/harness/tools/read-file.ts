/**
 * `read_file`: a text file inside the working folder, with line numbers (as `cat -n` shows them),
 * from line `offset` for `limit` lines. Folders, devices, FIFOs and binary files are refused; long
 * lines are cut, and the output stops before it grows past the tool output cap, saying where to
 * read on.
 */
import { closeSync, constants, readSync } from "node:fs";
import { checkInput, isRefused, looksBinary, openInside, resolveInside } from "./paths";
import { MAX_OUTPUT_CHARS, toolError, type Tool } from "./types";

export const DEFAULT_LIMIT = 2000;
export const MAX_LINE_CHARS = 2000;
const CHUNK = 64 * 1024;

export const readFileTool: Tool = {
  name: "read_file",
  description:
    "Read a text file in the working folder. Lines are numbered from 1 (like `cat -n`); `offset` is the first line to show, `limit` how many " +
    `(default ${DEFAULT_LIMIT}). Lines longer than ${MAX_LINE_CHARS} characters are cut. Paths are relative to the working folder; symbolic links are not followed.`,
  inputSchema: {
    type: "object",
    properties: {
      path: { type: "string", description: "The file, relative to the working folder, e.g. src/index.ts." },
      offset: { type: "integer", minimum: 1, description: "The first line to show (1-based; default 1)." },
      limit: { type: "integer", minimum: 1, description: `How many lines to show (default ${DEFAULT_LIMIT}).` },
    },
    required: ["path"],
    additionalProperties: false,
  },
  async run(input, ctx) {
    const bad = checkInput("read_file", input, { path: { type: "string", required: true }, offset: { type: "integer" }, limit: { type: "integer" } });
    if (bad) return bad;
    const offset = (input.offset as number | undefined) ?? 1;
    const limit = (input.limit as number | undefined) ?? DEFAULT_LIMIT;
    if (offset < 1) return toolError("offset must be 1 or more (lines are numbered from 1)");
    if (limit < 1) return toolError("limit must be 1 or more");
    const inside = resolveInside(ctx.cwd, input.path as string);
    if (isRefused(inside)) return inside;
    if (!inside.stat) return toolError(`${inside.rel} does not exist`);
    if (inside.stat.isDirectory()) return toolError(`${inside.rel} is a folder; use glob to list its files`);
    if (!inside.stat.isFile()) return toolError(`${inside.rel} is not a regular file (a device, FIFO or socket); read_file reads regular files only`);
    // O_NONBLOCK: should a FIFO have been swapped in since the check, the open does not hang.
    const opened = openInside(ctx.cwd, inside, constants.O_RDONLY | constants.O_NONBLOCK);
    if (isRefused(opened)) return opened;
    const { fd, stat } = opened;
    try {
      if (!stat.isFile()) return toolError(`${inside.rel} is not a regular file; read_file reads regular files only`);
      return readLines(fd, inside.rel, offset, limit);
    } finally {
      closeSync(fd);
    }
  },
};

function readLines(fd: number, rel: string, offset: number, limit: number) {
  const buf = Buffer.alloc(CHUNK);
  const decoder = new TextDecoder();
  let lineNo = 1;
  let partial = "";
  let out = "";
  let shown = 0;
  let first = true;
  let stoppedAt = 0;
  let more = false;
  let nonEmpty = false;
  // Characters of the current (unfinished) line already dropped, so a huge line is never held whole.
  let partialExtra = 0;
  const add = (line: string, extra = 0): boolean => {
    if (lineNo >= offset) {
      if (shown >= limit) {
        more = true;
        return false;
      }
      const cut = line.length + extra - MAX_LINE_CHARS;
      const text = cut > 0 ? `${line.slice(0, MAX_LINE_CHARS)}… [line cut: ${cut} more characters]` : line;
      const entry = `${String(lineNo).padStart(6)}\t${text}\n`;
      // Leave room for the closing note within the registry's cap.
      if (out.length + entry.length > MAX_OUTPUT_CHARS - 200) {
        stoppedAt = lineNo;
        return false;
      }
      out += entry;
      shown++;
    }
    lineNo++;
    return true;
  };
  reading: for (;;) {
    const n = readSync(fd, buf, 0, CHUNK, null);
    if (n === 0) break;
    const bytes = buf.subarray(0, n);
    if (first && looksBinary(bytes)) return toolError(`${rel} is a binary file (it contains NUL bytes); read_file shows text files only`);
    first = false;
    nonEmpty = true;
    const lines = (partial + decoder.decode(bytes, { stream: true })).split("\n");
    partial = lines.pop()!;
    for (let i = 0; i < lines.length; i++) if (!add(lines[i]!, i === 0 ? partialExtra : 0)) break reading;
    if (lines.length) partialExtra = 0;
    if (partial.length > MAX_LINE_CHARS) {
      partialExtra += partial.length - MAX_LINE_CHARS;
      partial = partial.slice(0, MAX_LINE_CHARS);
    }
  }
  if (!stoppedAt && !more) {
    partial += decoder.decode();
    if (partial !== "" || partialExtra) add(partial, partialExtra);
  }
  if (!nonEmpty) return { output: `${rel} is empty` };
  if (stoppedAt) return { output: `${out}[stopped before line ${stoppedAt} to keep the output short; read on with offset ${stoppedAt}]` };
  if (shown === 0) return toolError(`${rel} has ${lineNo - 1} lines; offset ${offset} is past its end`);
  if (more) return { output: `${out}[more lines follow; read on with offset ${offset + shown}]` };
  return { output: out };
}
