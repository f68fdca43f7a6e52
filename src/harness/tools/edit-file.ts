/**
 * `edit_file`: replaces one exact piece of text in a file inside the working folder. The piece
 * must occur exactly once (overlapping occurrences count), so an edit never lands in the wrong
 * place; the file is rewritten in place (same inode and mode), opened as read_file and write_file
 * open files: no symlinks, checked to be inside the folder.
 */
import { closeSync, constants, ftruncateSync, writeSync } from "node:fs";
import { checkInput, isRefused, looksBinary, openInside, readAll, resolveInside } from "./paths";
import { toolError, type Tool } from "./types";

/** Largest file edited. */
export const MAX_EDIT_BYTES = 10 * 1024 * 1024;

/** Occurrences of `needle` in `text`, overlapping ones included, counting no further than `stop`. */
function occurrences(text: string, needle: string, stop = 1000): number[] {
  const at: number[] = [];
  for (let i = text.indexOf(needle); i !== -1 && at.length < stop; i = text.indexOf(needle, i + 1)) at.push(i);
  return at;
}

export const editFileTool: Tool = {
  name: "edit_file",
  description:
    "Replace text in a file in the working folder: old_string must occur exactly once in the file (include enough surrounding lines to make it unique), and is replaced by new_string. " +
    "Whitespace and indentation must match exactly. Paths are relative to the working folder; symbolic links are not followed.",
  inputSchema: {
    type: "object",
    properties: {
      path: { type: "string", description: "The file, relative to the working folder." },
      old_string: { type: "string", description: "The exact text to replace; it must occur exactly once." },
      new_string: { type: "string", description: "The text to put in its place." },
    },
    required: ["path", "old_string", "new_string"],
    additionalProperties: false,
  },
  async run(input, ctx) {
    const bad = checkInput("edit_file", input, {
      path: { type: "string", required: true },
      old_string: { type: "string", required: true },
      new_string: { type: "string", required: true },
    });
    if (bad) return bad;
    const oldString = input.old_string as string;
    const newString = input.new_string as string;
    if (oldString === "") return toolError("old_string is empty; give the exact text to replace (use write_file to create a file)");
    if (oldString === newString) return toolError("old_string and new_string are the same; there is nothing to change");
    const inside = resolveInside(ctx.cwd, input.path as string);
    if (isRefused(inside)) return inside;
    if (!inside.stat) return toolError(`${inside.rel} does not exist (use write_file to create it)`);
    if (!inside.stat.isFile()) return toolError(`${inside.rel} is ${inside.stat.isDirectory() ? "a folder" : "not a regular file"}; edit_file edits regular files only`);
    if (inside.stat.size > MAX_EDIT_BYTES) return toolError(`${inside.rel} is ${inside.stat.size} bytes; edit_file edits files of at most ${MAX_EDIT_BYTES} bytes`);
    const opened = openInside(ctx.cwd, inside, constants.O_RDWR | constants.O_NONBLOCK);
    if (isRefused(opened)) return opened;
    const { fd, stat } = opened;
    try {
      if (!stat.isFile()) return toolError(`${inside.rel} is not a regular file; edit_file edits regular files only`);
      if (stat.size > MAX_EDIT_BYTES) return toolError(`${inside.rel} is ${stat.size} bytes; edit_file edits files of at most ${MAX_EDIT_BYTES} bytes`);
      const bytes = readAll(fd, stat.size);
      if (looksBinary(bytes)) return toolError(`${inside.rel} is a binary file (it contains NUL bytes); edit_file edits text files only`);
      let text: string;
      try {
        // fatal: rewriting would turn invalid bytes into U+FFFD all over the file. ignoreBOM: keep a BOM.
        text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
      } catch {
        return toolError(`${inside.rel} is not valid UTF-8 text; edit_file edits UTF-8 text files only`);
      }
      const at = occurrences(text, oldString);
      if (at.length === 0) return toolError(`old_string does not occur in ${inside.rel}; read the file and copy the text exactly, whitespace included`);
      if (at.length > 1)
        return toolError(`old_string occurs ${at.length >= 1000 ? "1000 or more" : at.length} times in ${inside.rel}; it must occur exactly once: include more of the surrounding text`);
      // Concatenation, not String.replace: `$&` and friends in new_string stay as written.
      const out = Buffer.from(text.slice(0, at[0]) + newString + text.slice(at[0]! + oldString.length), "utf8");
      ftruncateSync(fd, 0);
      let done = 0;
      while (done < out.length) done += writeSync(fd, out, done, out.length - done, done);
      const line = text.slice(0, at[0]).split("\n").length;
      return { output: `edited ${inside.rel}: replaced 1 occurrence at line ${line} (${out.length} bytes now)` };
    } finally {
      closeSync(fd);
    }
  },
};
