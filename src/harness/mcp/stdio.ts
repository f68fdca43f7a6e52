/**
 * The stdio transport for MCP servers the session starts. The SDK's own StdioClientTransport
 * cannot be used as is: it runs the server in our process group (so its children survive a kill)
 * and adds variables of its own to the env. This one starts the sandbox's argv in a new process
 * group with exactly the env it is given, kills the whole group on close, and keeps the server's
 * stderr, capped, in a log file.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, constants, fstatSync, ftruncateSync, lstatSync, mkdirSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";

/** What the server wrote to stderr is kept up to this many bytes (the newest). */
export const LOG_CAP_BYTES = 64 * 1024;
/** One JSON-RPC line from a server may be this long at most (a runaway server is cut off). */
const MAX_LINE_BYTES = 16 * 1024 * 1024;

/** Every live server's process group, so they can all be killed when the harness exits. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function killGroup(pid: number, signal: NodeJS.Signals) {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * The tail of a server's stderr in `.pai/mcp-<name>.log`. The file is opened once, through a real
 * `.pai` folder and without following a symbolic link, and only written through that descriptor:
 * a process in the sandbox that later swaps the path for a link cannot redirect our writes.
 */
export class StderrLog {
  private fd: number | null;
  private tail: Buffer = Buffer.alloc(0);
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Why the file could not be opened (the server still runs, its stderr is kept in memory only). */
  readonly problem?: string;

  constructor(
    cwd: string,
    name: string,
    private cap = LOG_CAP_BYTES,
  ) {
    try {
      this.fd = openLog(cwd, `mcp-${name}.log`);
    } catch (err) {
      this.fd = null;
      this.problem = `its stderr log could not be written: ${err instanceof Error ? err.message : String(err)}`;
    }
  }

  append(chunk: Buffer) {
    const joined = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
    this.tail = joined.length > this.cap ? Buffer.from(joined.subarray(joined.length - this.cap)) : joined;
    // Writes are grouped: a chatty server costs one small rewrite per tick, not one per line.
    if (this.fd !== null && !this.timer) this.timer = setTimeout(() => this.flush(), 50);
  }

  /** The last line or so of stderr, for a start failure's message. */
  lastWords(max = 400): string {
    const text = this.tail.toString("utf8").trim();
    const lines = text.split("\n").filter((l) => l.trim());
    let out = lines.slice(-3).join(" | ");
    if (out.length > max) out = `…${out.slice(out.length - max)}`;
    return out;
  }

  flush() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.fd === null) return;
    try {
      writeSync(this.fd, this.tail, 0, this.tail.length, 0);
      ftruncateSync(this.fd, this.tail.length);
    } catch {
      // A full disk must not take the session down; the log is a convenience.
    }
  }

  close() {
    this.flush();
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {}
      this.fd = null;
    }
  }
}

/** Opens (creates or empties) `<cwd>/.pai/<file>` for writing, refusing links, FIFOs and hard-linked files. */
function openLog(cwd: string, file: string): number {
  const dir = join(cwd, ".pai");
  try {
    mkdirSync(dir, { mode: 0o755 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  if (!lstatSync(dir).isDirectory()) throw new Error(".pai is not a folder");
  // O_NONBLOCK: a FIFO planted there fails to open instead of hanging the harness.
  const fd = openSync(join(dir, file), constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o644);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`${file} is not a regular file`);
    if (st.nlink !== 1) throw new Error(`${file} has other hard links`);
    ftruncateSync(fd, 0);
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

export interface StdioOptions {
  /** The full command line (already wrapped by the sandbox). */
  argv: string[];
  cwd: string;
  /** The server's whole environment: nothing is added to it. */
  env: Record<string, string>;
  log: StderrLog;
}

/** An MCP client transport over a child process's stdin/stdout, in its own process group. */
export class SandboxedStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  private child?: ChildProcess;
  private buffer: Buffer = Buffer.alloc(0);
  private closed = false;
  /** How the process ended (null while it runs). */
  exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  /** Resolves when the process has exited (or could not be started). */
  readonly exited: Promise<void>;
  private markExited!: () => void;
  private parse?: (line: string) => JSONRPCMessage;

  constructor(private opts: StdioOptions) {
    this.exited = new Promise((resolve) => (this.markExited = resolve));
  }

  /** The last lines the server wrote to stderr. */
  logTail(): string {
    return this.opts.log.lastWords();
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    if (this.child) throw new Error("already started");
    const { deserializeMessage } = await import("@modelcontextprotocol/sdk/shared/stdio.js");
    this.parse = deserializeMessage;
    const [command, ...args] = this.opts.argv;
    if (!command) throw new Error("empty command line");
    await new Promise<void>((resolve, reject) => {
      let child: ChildProcess;
      try {
        // detached: a new session and process group, so a kill reaches every process it starts.
        child = spawn(command, args, { cwd: this.opts.cwd, env: this.opts.env, stdio: ["pipe", "pipe", "pipe"], detached: true, shell: false });
      } catch (err) {
        this.markExited();
        reject(err);
        return;
      }
      this.child = child;
      child.once("error", (err) => {
        if (!child.pid) {
          this.markExited();
          reject(err);
        } else this.onerror?.(err);
      });
      child.once("spawn", () => {
        if (child.pid) {
          liveGroups.add(child.pid);
          installExitHook();
        }
        resolve();
      });
      child.once("exit", (code, signal) => {
        this.exit = { code, signal };
        // The leader is gone; anything it left in its group goes too.
        if (child.pid) {
          killGroup(child.pid, "SIGKILL");
          liveGroups.delete(child.pid);
        }
        // A process that left the group may still hold the pipes open; stop waiting for it.
        setTimeout(() => {
          child.stdin?.destroy();
          child.stdout?.destroy();
          child.stderr?.destroy();
        }, 500).unref();
      });
      child.once("close", () => {
        this.opts.log.flush();
        this.markExited();
        if (!this.closed) {
          this.closed = true;
          this.onclose?.();
        }
      });
      child.stdin!.on("error", (err) => this.onerror?.(err));
      child.stdout!.on("data", (chunk: Buffer) => this.receive(chunk));
      child.stdout!.on("error", (err) => this.onerror?.(err));
      child.stderr!.on("data", (chunk: Buffer) => this.opts.log.append(chunk));
      child.stderr!.on("error", () => {});
    });
  }

  private receive(chunk: Buffer) {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    for (;;) {
      const nl = this.buffer.indexOf(10);
      if (nl < 0) break;
      const line = this.buffer.toString("utf8", 0, nl).replace(/\r$/, "");
      this.buffer = this.buffer.subarray(nl + 1);
      if (!line.trim()) continue;
      let message: JSONRPCMessage;
      try {
        message = this.parse!(line);
      } catch (err) {
        // A server that prints something else on stdout: report it, keep reading.
        this.onerror?.(new Error(`the server wrote a line that is not JSON-RPC: ${line.slice(0, 200)}`));
        continue;
      }
      this.onmessage?.(message);
    }
    if (this.buffer.length > MAX_LINE_BYTES) {
      this.onerror?.(new Error(`the server wrote more than ${MAX_LINE_BYTES} bytes without a newline`));
      void this.close();
    }
  }

  send(message: JSONRPCMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      const stdin = this.child?.stdin;
      if (!stdin || this.closed || !stdin.writable) return reject(new Error("the server is not running"));
      const ok = stdin.write(`${JSON.stringify(message)}\n`, (err) => {
        if (err) reject(err);
      });
      if (ok) resolve();
      else stdin.once("drain", resolve);
    });
  }

  /** Kills the server and everything it started at once (SIGKILL to the group). */
  kill() {
    const pid = this.child?.pid;
    if (pid && !this.exit) killGroup(pid, "SIGKILL");
  }

  /**
   * Ends the server: closes its stdin and asks the group to stop (SIGTERM), then kills what is left
   * after a short grace.
   */
  async close(): Promise<void> {
    const child = this.child;
    const wasClosed = this.closed;
    this.closed = true;
    if (child?.pid && !this.exit) {
      try {
        child.stdin?.end();
      } catch {}
      killGroup(child.pid, "SIGTERM");
      const grace = setTimeout(() => killGroup(child.pid!, "SIGKILL"), 1000);
      // Bounded: a process stuck in the kernel must not hold the session's end.
      await Promise.race([this.exited, new Promise((r) => setTimeout(r, 3000).unref())]);
      clearTimeout(grace);
    }
    this.opts.log.close();
    if (!wasClosed) this.onclose?.();
  }
}

/** When the harness exits (SIGTERM, the supervisor gone), no server outlives it. */
function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const pid of liveGroups) killGroup(pid, "SIGKILL");
  });
}
