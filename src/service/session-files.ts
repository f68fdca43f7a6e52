/**
 * The files in a session's working folder (`<workDir>/<namespace>/<session>`): listed, and opened
 * for download. The folder is written by the agent, and an agent can be steered by whoever wrote
 * its prompt or webhook payload, so nothing in it is trusted: symbolic links (to a file or a
 * folder, anywhere in the path), special files (FIFOs, sockets, devices) and files with more than
 * one hard link (which may be another name for a file outside the folder) are neither listed nor
 * served. Every component is checked with lstat, the file is opened with O_NOFOLLOW, and the
 * opened file must be the very inode checked, so swapping a folder for a link in between does
 * not redirect the read.
 */
import * as fs from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { BadRequestError, ConflictError, ForbiddenError, NotFoundError } from "../domain/errors";
import type { SessionService } from "./sessions";

export interface SessionFile {
  /** Relative to the session's folder, `/`-separated. */
  path: string;
  size: number;
  modifiedAt: string;
}

export interface FileListing {
  files: SessionFile[];
  /** True when the listing stopped at `maxFiles` files (or `maxEntries` entries looked at). */
  truncated: boolean;
}

export interface OpenedFile {
  path: string;
  /** The file's own name (the last path component). */
  name: string;
  size: number;
  modifiedAt: string;
  /**
   * The file's bytes: read whole when small (so the answer has a Content-Length), else a stream
   * read as it is sent, the file closed at its end or when the reader cancels.
   */
  body: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array>;
}

export const MAX_LISTED_FILES = 10_000;
/** Entries (files, folders, links) looked at per listing, so a huge tree costs a bounded walk. */
const MAX_VISITED_ENTRIES = 100_000;
/** Folder depth walked; a path deeper than this is not listed or served. */
const MAX_DEPTH = 64;
const MAX_PATH_CHARS = 4096;
const CHUNK_BYTES = 64 * 1024;
/** Files up to this size are read whole; larger ones are streamed. */
const READ_WHOLE_BYTES = 1024 * 1024;

/** Names a session's folder and the namespace folder may have: what we create, never a path trick. */
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Why a relative path (as its decoded components) may not be served, or undefined when it may. */
export function filePathProblem(segments: string[]): string | undefined {
  if (!segments.length) return "the path is empty";
  if (segments.join("/").length > MAX_PATH_CHARS) return `the path is longer than ${MAX_PATH_CHARS} characters`;
  if (segments.length > MAX_DEPTH) return `the path is more than ${MAX_DEPTH} folders deep`;
  for (const s of segments) {
    if (s === "") return "the path has an empty component (a leading, doubled or trailing /): give it relative to the session's folder";
    if (s === "." || s === "..") return `the path may not contain "${s}": give it relative to the session's folder`;
    if (s.includes("\0")) return "the path may not contain NUL";
    if (s.includes("/")) return "a path component may not contain an encoded /";
  }
  return undefined;
}

const kindOf = (st: fs.Stats) =>
  st.isSymbolicLink() ? "a symbolic link" : st.isDirectory() ? "a folder" : st.isFIFO() ? "a FIFO" : st.isSocket() ? "a socket" : st.isCharacterDevice() || st.isBlockDevice() ? "a device" : "not a regular file";

const code = (err: unknown) => (err as NodeJS.ErrnoException | null)?.code;

export function createSessionFileService(deps: {
  sessions: Pick<SessionService, "get">;
  workDir: string;
  maxFiles?: number;
  /** Replicas: the replica that ran a session, when it is another one (its files are on that replica's disk). */
  ranElsewhere?: (namespace: string, session: string) => Promise<string | undefined>;
}) {
  const { sessions, workDir } = deps;
  const maxFiles = deps.maxFiles ?? MAX_LISTED_FILES;

  /**
   * The session's folder, after checking that it and its namespace's folder are real folders, not
   * links (the work dir itself is the operator's and may be one); undefined when it does not
   * exist (yet, or any more).
   */
  async function folderOf(namespace: string, session: string): Promise<string | undefined> {
    // The session must exist in this namespace (404 otherwise), which also vouches for both names.
    await sessions.get(namespace, session);
    if (!SAFE_NAME.test(namespace) || !SAFE_NAME.test(session)) throw new NotFoundError(`session "${session}" has no folder`);
    let dir = workDir;
    const parts = ["", namespace, session];
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      dir = join(dir, part);
      let st: fs.Stats;
      try {
        st = await (part ? fs.promises.lstat(dir) : fs.promises.stat(dir));
      } catch (err) {
        if (code(err) === "ENOENT" || code(err) === "ENOTDIR") {
          const other = await deps.ranElsewhere?.(namespace, session);
          if (other)
            throw new ConflictError(
              `session "${session}" ran on another replica (${other}); its files are on that replica's disk, which this one cannot read (files are not shared between replicas)`,
            );
          return undefined;
        }
        throw err;
      }
      if (st.isDirectory()) continue;
      if (!part) return undefined;
      const what = i === 1 ? `the sessions folder of namespace "${namespace}"` : `the working folder of session "${session}"`;
      throw new BadRequestError(`${what} is ${kindOf(st)}, not a folder; it is not read`);
    }
    return dir;
  }

  /** Every regular file under the session's folder, sorted by path; links are not followed or listed. */
  async function list(namespace: string, session: string): Promise<FileListing> {
    const root = await folderOf(namespace, session);
    const files: SessionFile[] = [];
    if (!root) return { files, truncated: false };
    let visited = 0;
    let truncated = false;
    // Breadth first, a folder at a time: memory holds one folder's names, not the whole tree's.
    const queue: { dir: string; rel: string; depth: number }[] = [{ dir: root, rel: "", depth: 0 }];
    walk: while (queue.length) {
      const { dir, rel, depth } = queue.shift()!;
      let entries: fs.Dirent[];
      try {
        // Checked before and after reading: a folder swapped for a link meanwhile shows as a different inode.
        const before = await fs.promises.lstat(dir);
        if (!before.isDirectory()) continue;
        entries = await fs.promises.readdir(dir, { withFileTypes: true });
        const after = await fs.promises.lstat(dir);
        if (!after.isDirectory() || after.ino !== before.ino || after.dev !== before.dev) continue;
      } catch {
        continue; // Gone or unreadable meanwhile: the agent may still be writing.
      }
      for (const e of entries) {
        if (++visited > MAX_VISITED_ENTRIES) {
          truncated = true;
          break walk;
        }
        const path = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) {
          if (depth + 1 < MAX_DEPTH) queue.push({ dir: join(dir, e.name), rel: path, depth: depth + 1 });
          continue;
        }
        if (!e.isFile()) continue; // links, FIFOs, sockets, devices
        let st: fs.Stats;
        try {
          st = await fs.promises.lstat(join(dir, e.name));
        } catch {
          continue;
        }
        if (!st.isFile() || st.nlink > 1) continue;
        if (files.length >= maxFiles) {
          truncated = true;
          break walk;
        }
        files.push({ path, size: st.size, modifiedAt: st.mtime.toISOString() });
      }
    }
    files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return { files, truncated };
  }

  /** Opens one file of the session's folder for reading; `segments` are the decoded path components. */
  async function open(namespace: string, session: string, segments: string[]): Promise<OpenedFile> {
    const problem = filePathProblem(segments);
    if (problem) throw new BadRequestError(`invalid file path: ${problem}`);
    const path = segments.join("/");
    const missing = () => new NotFoundError(`session "${session}" has no file "${path}"`);
    const root = await folderOf(namespace, session);
    if (!root) throw missing();
    let full = root;
    let st!: fs.Stats;
    for (let i = 0; i < segments.length; i++) {
      full = join(full, segments[i]!);
      try {
        st = await fs.promises.lstat(full);
      } catch (err) {
        if (code(err) === "ENOENT" || code(err) === "ENOTDIR") throw missing();
        if (code(err) === "EACCES") throw new ForbiddenError(`"${segments.slice(0, i + 1).join("/")}" in the session's folder cannot be read by the server (permission denied)`);
        throw err;
      }
      const last = i === segments.length - 1;
      if (st.isSymbolicLink()) throw new BadRequestError(`"${segments.slice(0, i + 1).join("/")}" is a symbolic link; links are not followed, only regular files in the session's folder are served`);
      if (!last && !st.isDirectory()) throw missing();
    }
    if (!st.isFile()) throw new BadRequestError(`"${path}" is ${kindOf(st)}; only regular files are served`);
    if (st.nlink > 1) throw new BadRequestError(`"${path}" has ${st.nlink} hard links; only files with a single link are served (another link may be a file outside the session's folder)`);

    let fh: FileHandle;
    try {
      // O_NOFOLLOW: a last component swapped for a link is refused; O_NONBLOCK: one swapped for a FIFO does not hang the open.
      fh = await fs.promises.open(full, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
    } catch (err) {
      if (code(err) === "ELOOP") throw new BadRequestError(`"${path}" is a symbolic link; links are not followed, only regular files in the session's folder are served`);
      if (code(err) === "ENOENT" || code(err) === "ENOTDIR") throw missing();
      if (code(err) === "EACCES") throw new ForbiddenError(`"${path}" cannot be read by the server (permission denied)`);
      throw err;
    }
    try {
      // The file opened must be the one checked above: a folder on the way swapped for a link
      // meanwhile would have led the open elsewhere, to another inode.
      const opened = await fh.stat();
      if (!opened.isFile() || opened.ino !== st.ino || opened.dev !== st.dev || opened.nlink > 1)
        throw new BadRequestError(`"${path}" changed while it was being opened; try again`);
      const file = { path, name: segments[segments.length - 1]!, size: opened.size, modifiedAt: opened.mtime.toISOString() };
      if (opened.size > READ_WHOLE_BYTES) return { ...file, body: streamOf(fh, opened.size) };
      const bytes = new Uint8Array(opened.size);
      let got = 0;
      while (got < bytes.length) {
        const { bytesRead } = await fh.read(bytes, got, bytes.length - got, got);
        if (bytesRead === 0) break; // truncated meanwhile
        got += bytesRead;
      }
      await fh.close().catch(() => {});
      return { ...file, size: got, body: got === bytes.length ? bytes : bytes.subarray(0, got) };
    } catch (err) {
      await fh.close().catch(() => {});
      throw err;
    }
  }

  return { list, open };
}

/** The first `size` bytes of an open file as a stream, read a chunk at a time as the reader pulls. */
function streamOf(fh: FileHandle, size: number): ReadableStream<Uint8Array> {
  let position = 0;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await fh.close().catch(() => {});
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const want = Math.min(CHUNK_BYTES, size - position);
          if (want <= 0) {
            await close();
            controller.close();
            return;
          }
          const buf = new Uint8Array(want);
          const { bytesRead } = await fh.read(buf, 0, want, position);
          if (bytesRead === 0) {
            // Truncated since it was opened: what there was has been sent.
            await close();
            controller.close();
            return;
          }
          position += bytesRead;
          controller.enqueue(bytesRead === want ? buf : buf.subarray(0, bytesRead));
        } catch (err) {
          await close();
          controller.error(err);
        }
      },
      cancel: close,
    },
    { highWaterMark: 0 },
  );
}

export type SessionFileService = ReturnType<typeof createSessionFileService>;
