/**
 * `write_file`: writes a whole file inside the working folder, creating the folders on its path.
 * Never through a symlink: resolveInside refuses one anywhere on the path, the last part is opened
 * with O_NOFOLLOW, and the opened file is checked to be inside the folder before a byte is written.
 */
import { closeSync, constants, ftruncateSync, writeSync } from "node:fs";
import { checkInput, isRefused, makeParents, openInside, resolveInside } from "./paths";
import { toolError, type Tool } from "./types";

/** Largest content accepted (bytes, UTF-8). */
export const MAX_WRITE_BYTES = 10 * 1024 * 1024;

export const writeFileTool: Tool = {
  name: "write_file",
  description:
    "Write a text file in the working folder, replacing it if it exists; folders on its path are created. " +
    "Paths are relative to the working folder; symbolic links are not followed. Returns the number of bytes written.",
  inputSchema: {
    type: "object",
    properties: {
      path: { type: "string", description: "The file, relative to the working folder, e.g. notes/summary.md." },
      content: { type: "string", description: "The whole new content of the file." },
    },
    required: ["path", "content"],
    additionalProperties: false,
  },
  async run(input, ctx) {
    const bad = checkInput("write_file", input, { path: { type: "string", required: true }, content: { type: "string", required: true } });
    if (bad) return bad;
    const data = Buffer.from(input.content as string, "utf8");
    if (data.length > MAX_WRITE_BYTES) return toolError(`the content is ${data.length} bytes; write_file writes at most ${MAX_WRITE_BYTES}`);
    let inside = resolveInside(ctx.cwd, input.path as string);
    if (isRefused(inside)) return inside;
    if (inside.rel === ".") return toolError("give the path of a file, not the working folder");
    if (inside.stat && !inside.stat.isFile())
      return toolError(`${inside.rel} is ${inside.stat.isDirectory() ? "a folder" : "not a regular file"}; write_file writes regular files only`);
    if (!inside.stat) {
      const refused = makeParents(ctx.cwd, inside.rel);
      if (refused) return refused;
      // Look again now that the folders exist (and to catch anything that changed meanwhile).
      inside = resolveInside(ctx.cwd, inside.rel);
      if (isRefused(inside)) return inside;
    }
    // No O_TRUNC at open: the file is emptied only once it is known to be the right one.
    const opened = openInside(ctx.cwd, inside, constants.O_WRONLY | constants.O_CREAT | constants.O_NONBLOCK);
    if (isRefused(opened)) return opened;
    const { fd, stat } = opened;
    try {
      if (!stat.isFile()) return toolError(`${inside.rel} is not a regular file; write_file writes regular files only`);
      ftruncateSync(fd, 0);
      let done = 0;
      while (done < data.length) done += writeSync(fd, data, done, data.length - done, done);
      return { output: `wrote ${data.length} bytes to ${inside.rel}` };
    } finally {
      closeSync(fd);
    }
  },
};
