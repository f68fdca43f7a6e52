/**
 * Path safety for the file tools. A path from the model is relative to the session's folder and
 * stays inside it: absolute paths, `..`, NUL bytes and symlinks anywhere on the path are refused
 * (even a symlink that points inside: following none is the rule that cannot be talked around).
 * Files are opened with O_NOFOLLOW and the opened file's real path is checked again, so a folder
 * swapped for a symlink between the check and the open (by a command running at the same time) is
 * caught too.
 */
import { closeSync, constants, existsSync, fstatSync, lstatSync, mkdirSync, openSync, readSync, readlinkSync, realpathSync, rmdirSync, statSync, unlinkSync, type Stats } from "node:fs";
import { isAbsolute, join } from "node:path";
import { toolError, type ToolOutput } from "./types";

export interface Inside {
  /** The absolute path (cwd joined with the cleaned relative path). */
  abs: string;
  /** The cleaned relative path, as shown to the model (`.` for the folder itself). */
  rel: string;
  /** lstat of the path, or null when it does not exist (or a folder on the way does not). */
  stat: Stats | null;
}

/** The refusal, as an error result for the model. */
export type Refused = ToolOutput & { isError: true };

export const isRefused = (r: unknown): r is Refused => typeof r === "object" && r !== null && (r as Refused).isError === true;

const refuse = (msg: string) => toolError(msg) as Refused;

/** Parts of a relative path, or a refusal. */
function parts(path: string): string[] | Refused {
  if (path.includes("\0")) return refuse("the path contains a NUL byte");
  if (path === "") return refuse("the path is empty");
  if (isAbsolute(path)) return refuse(`${path} is an absolute path; give a path relative to the working folder (e.g. src/main.ts)`);
  const segs = path.split("/").filter((s) => s !== "" && s !== ".");
  if (segs.includes("..")) return refuse(`${path} contains "..": paths must stay inside the working folder, so ".." is not allowed`);
  return segs;
}

const symlinkRefusal = (rel: string, full: string) =>
  refuse(`${rel} is a symbolic link${rel === full ? "" : ` (on the path ${full})`}; the file tools do not follow symbolic links, even ones that point inside the working folder`);

/**
 * Resolves `path` inside `cwd`: every part that exists is lstat'ed; a symlink, or a file where a
 * folder should be, is refused. What does not exist yet is fine (write_file creates it).
 */
export function resolveInside(cwd: string, path: string): Inside | Refused {
  const segs = parts(path);
  if (isRefused(segs)) return segs;
  const rel = segs.length ? segs.join("/") : ".";
  let abs = cwd;
  let stat: Stats | null = null;
  try {
    // The working folder itself is the supervisor's choice, not the model's: it may sit behind a symlink.
    stat = statSync(cwd);
  } catch {
    return refuse("the working folder does not exist");
  }
  for (let i = 0; i < segs.length; i++) {
    if (!stat!.isDirectory()) return refuse(`${segs.slice(0, i).join("/")} is not a folder, so ${rel} cannot exist`);
    abs = join(abs, segs[i]!);
    try {
      stat = lstatSync(abs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { abs: join(cwd, rel), rel, stat: null };
      return refuse(`cannot look at ${segs.slice(0, i + 1).join("/")}: ${(err as Error).message}`);
    }
    if (stat.isSymbolicLink()) return symlinkRefusal(segs.slice(0, i + 1).join("/"), rel);
  }
  return { abs, rel, stat };
}

/** `p` is `dir` or inside it. */
export const within = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith("/") ? dir : `${dir}/`);

const HAS_PROC_FD = process.platform === "linux" && existsSync("/proc/self/fd");

/** Where an open descriptor really is (Linux); null when that cannot be told. */
function fdPath(fd: number): string | null {
  if (!HAS_PROC_FD) return null;
  try {
    return readlinkSync(`/proc/self/fd/${fd}`).replace(/ \(deleted\)$/, "");
  } catch {
    return null;
  }
}

function realCwd(cwd: string): string {
  try {
    return realpathSync(cwd);
  } catch {
    return cwd;
  }
}

/**
 * Opens a resolved path without following a symlink at its last part, then checks the file
 * opened really is inside the working folder (a folder on the way may have been swapped for a
 * symlink since resolveInside looked). With O_CREAT, a file that did not exist is created with
 * O_EXCL: so if the check fails, the file out there is surely ours and is removed again.
 */
export function openInside(cwd: string, inside: Inside, flags: number, mode = 0o644): { fd: number; stat: Stats } | Refused {
  const creating = !!(flags & constants.O_CREAT) && !inside.stat;
  if (inside.stat) flags &= ~constants.O_CREAT;
  if (creating) flags |= constants.O_EXCL;
  let fd: number;
  try {
    fd = openSync(inside.abs, flags | constants.O_NOFOLLOW, mode);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return refuse(`${inside.rel} appeared while it was being written; try again`);
    if (code === "ELOOP") return symlinkRefusal(inside.rel, inside.rel);
    if (code === "ENOENT") return refuse(`${inside.rel} does not exist`);
    if (code === "EISDIR") return refuse(`${inside.rel} is a folder, not a file`);
    return refuse(`cannot open ${inside.rel}: ${(err as Error).message}`);
  }
  const where = fdPath(fd);
  if (where !== null && !within(where, realCwd(cwd))) {
    closeSync(fd);
    // Created through a swapped folder: take back the empty file we just made out there.
    if (creating) {
      try {
        unlinkSync(where);
      } catch {}
    }
    return refuse(`${inside.rel} leads outside the working folder (a folder on its path was replaced by a symbolic link); refused`);
  }
  return { fd, stat: fstatSync(fd) };
}

/** Creates the missing folders of `rel`'s parent, one at a time, refusing symlinks and files on the way. */
export function makeParents(cwd: string, rel: string): Refused | undefined {
  const segs = rel.split("/").slice(0, -1);
  const root = realCwd(cwd);
  let abs = cwd;
  for (let i = 0; i < segs.length; i++) {
    abs = join(abs, segs[i]!);
    const shown = segs.slice(0, i + 1).join("/");
    let st: Stats | null = null;
    try {
      st = lstatSync(abs);
    } catch {}
    if (!st) {
      let made = false;
      try {
        mkdirSync(abs, 0o755);
        made = true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") return refuse(`cannot create the folder ${shown}: ${(err as Error).message}`);
      }
      // A folder on the way may have been swapped for a symlink: the new folder must be inside.
      let real: string;
      try {
        real = realpathSync(abs);
      } catch (err) {
        return refuse(`cannot create the folder ${shown}: ${(err as Error).message}`);
      }
      if (!within(real, root)) {
        if (made)
          try {
            rmdirSync(real);
          } catch {}
        return refuse(`${shown} leads outside the working folder (a folder on its path was replaced by a symbolic link); refused`);
      }
      st = lstatSync(abs);
    }
    if (st.isSymbolicLink()) return symlinkRefusal(shown, rel);
    if (!st.isDirectory()) return refuse(`${shown} is a file, not a folder, so ${rel} cannot be created`);
  }
  return undefined;
}

/** Input checks shared by the tools: the error result for the first bad field, or undefined. */
export function checkInput(
  tool: string,
  input: Record<string, unknown>,
  fields: Record<string, { type: "string" | "integer" | "number" | "boolean"; required?: boolean }>,
): Refused | undefined {
  for (const key of Object.keys(input))
    if (!(key in fields)) return refuse(`${tool} has no input "${key}"; its inputs are: ${Object.keys(fields).join(", ")}`);
  for (const [key, f] of Object.entries(fields)) {
    const v = input[key];
    if (v === undefined || v === null) {
      if (f.required) return refuse(`${tool} needs "${key}" (${f.type})`);
      continue;
    }
    const ok =
      f.type === "string" ? typeof v === "string" : f.type === "integer" ? Number.isInteger(v) : f.type === "number" ? typeof v === "number" && Number.isFinite(v) : typeof v === "boolean";
    if (!ok) return refuse(`"${key}" of ${tool} must be ${f.type === "integer" ? "an integer" : `a ${f.type}`}, not ${JSON.stringify(v)?.slice(0, 100) ?? typeof v}`);
  }
  return undefined;
}

/** Text files only: a NUL byte in the first 8 KB marks a binary file (as git and grep do). */
/** Reads `size` bytes of an open file from its start (fewer if it shrank meanwhile). */
export function readAll(fd: number, size: number): Buffer {
  const buf = Buffer.alloc(size);
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

export const looksBinary = (buf: Uint8Array) => buf.subarray(0, 8192).includes(0);
