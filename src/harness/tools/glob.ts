/**
 * `glob`: files in the working folder whose paths match a pattern, sorted. Hidden files and
 * folders (a name starting with a dot) are left out, and nothing is found through a symlink: the
 * scan does not follow them, and a match whose path has a symlink on it (a pattern can name one
 * outright, e.g. `link/*`) is dropped.
 */
import { lstatSync } from "node:fs";
import { join } from "node:path";
import { checkInput } from "./paths";
import { toolError, type Tool } from "./types";

export const MAX_GLOB_RESULTS = 1000;

export const globTool: Tool = {
  name: "glob",
  description:
    "List the files in the working folder whose paths match a glob pattern, e.g. `**/*.ts` or `src/{lib,api}/*.json` (`*` within a folder name, `**` across folders). " +
    `Paths are relative to the working folder; hidden files and symbolic links are left out; results are sorted, at most ${MAX_GLOB_RESULTS}.`,
  inputSchema: {
    type: "object",
    properties: { pattern: { type: "string", description: "The glob pattern, relative to the working folder." } },
    required: ["pattern"],
    additionalProperties: false,
  },
  async run(input, ctx) {
    const bad = checkInput("glob", input, { pattern: { type: "string", required: true } });
    if (bad) return bad;
    const pattern = input.pattern as string;
    if (!pattern) return toolError("the pattern is empty");
    if (pattern.includes("\0")) return toolError("the pattern contains a NUL byte");
    if (pattern.startsWith("/")) return toolError(`${pattern} is absolute; give a pattern relative to the working folder (e.g. src/**/*.ts)`);
    if (pattern.includes("..")) return toolError(`${pattern} contains ".."; patterns must stay inside the working folder`);
    if (pattern.includes("\\")) return toolError(`${pattern} contains a backslash; use / between folder names`);
    const dirOk = new Map<string, boolean>();
    // Every folder on a match's path must be a real folder, not a symlink.
    const isPlain = (rel: string): boolean => {
      const parts = rel.split("/");
      let dir = "";
      for (let i = 0; i < parts.length - 1; i++) {
        dir = dir ? `${dir}/${parts[i]}` : parts[i]!;
        let ok = dirOk.get(dir);
        if (ok === undefined) {
          try {
            const st = lstatSync(join(ctx.cwd, dir));
            ok = st.isDirectory() && !st.isSymbolicLink();
          } catch {
            ok = false;
          }
          dirOk.set(dir, ok);
        }
        if (!ok) return false;
      }
      try {
        return lstatSync(join(ctx.cwd, rel)).isFile();
      } catch {
        return false;
      }
    };
    const found: string[] = [];
    let more = false;
    for await (const f of new Bun.Glob(pattern).scan({ cwd: ctx.cwd, onlyFiles: true, followSymlinks: false, dot: false })) {
      if (ctx.signal.aborted) return toolError("glob was stopped: the session was cancelled");
      if (f.startsWith("/") || f.split("/").includes("..") || !isPlain(f)) continue;
      if (found.length === MAX_GLOB_RESULTS) {
        more = true;
        break;
      }
      found.push(f);
    }
    if (!found.length) return { output: `no files match ${pattern}` };
    found.sort();
    return { output: found.join("\n") + (more ? `\n[more than ${MAX_GLOB_RESULTS} files match; only ${MAX_GLOB_RESULTS} are shown: narrow the pattern]` : "") };
  },
};
