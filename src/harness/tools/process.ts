/**
 * Runs one command for a tool: through the session's sandbox, in a process group of its own (so
 * a timeout, a cancelled session or the harness's exit kills it and everything it started), stdin
 * closed, stdout and stderr captured up to a cap. Background jobs do not outlive the command: once
 * it exits, what is left of its group is killed (inside bubblewrap the PID namespace goes with it).
 */
import type { Sandbox } from "../sandbox";

export interface RunOptions {
  cwd: string;
  env: Record<string, string>;
  signal?: AbortSignal;
  /** Kill the command (its whole group) after this long. */
  timeoutMs?: number;
  sandbox: Sandbox;
  /** Bytes kept of each of stdout and stderr (default 30,000); the rest is counted, not kept. */
  maxOutput?: number;
}

export interface RunResult {
  /** null when the process was killed by a signal. */
  exitCode: number | null;
  /** The signal that ended it (`SIGKILL`, …), or null. */
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Stopped because `signal` was aborted (or it was aborted before the start: then nothing ran). */
  aborted: boolean;
  /** stdout or stderr was longer than maxOutput; the text says how much was cut. */
  truncated: boolean;
}

/** Thrown when the sandbox forbids starting processes at all (`sandbox.refusal`). */
export class ProcessRefused extends Error {}

/** How long to wait for the output pipes to close after the command and its group are gone. */
const PIPE_GRACE_MS = 2_000;

/** Process groups started and not yet ended. */
const live = new Set<number>();

function killGroup(pgid: number) {
  try {
    process.kill(-pgid, "SIGKILL");
  } catch {
    // Already gone.
  }
}

/** Kills every process group still running (synchronous: called on SIGTERM and at exit). */
export function killAllProcesses() {
  for (const pgid of live) killGroup(pgid);
}

/** The number of process groups still running (for tests and diagnostics). */
export const liveProcessGroups = () => live.size;

interface Capture {
  done: Promise<void>;
  stop(): void;
  text(): string;
  truncated(): boolean;
}

/** Reads a pipe to its end, keeping the first `max` bytes and counting the rest (the pipe is always drained, so the writer never blocks). */
function capture(stream: ReadableStream<Uint8Array>, max: number): Capture {
  const chunks: Uint8Array[] = [];
  let kept = 0;
  let cut = 0;
  const reader = stream.getReader();
  const done = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        const room = max - kept;
        if (room > 0) {
          const take = value.length <= room ? value : value.subarray(0, room);
          chunks.push(take);
          kept += take.length;
        }
        cut += Math.max(0, value.length - Math.max(room, 0));
      }
    } catch {
      // Cancelled or broken pipe: keep what was read.
    }
  })();
  return {
    done,
    stop: () => void reader.cancel().catch(() => {}),
    truncated: () => cut > 0,
    text() {
      // stream: true leaves a multi-byte character cut at the cap out instead of garbling it.
      const head = new TextDecoder().decode(Buffer.concat(chunks), { stream: true });
      return cut > 0 ? `${head}\n[output cut: ${cut} more bytes not shown]` : head;
    },
  };
}

export async function runProcess(argv: string[], o: RunOptions): Promise<RunResult> {
  if (o.sandbox.refusal) throw new ProcessRefused(o.sandbox.refusal);
  if (o.signal?.aborted) return { exitCode: null, signal: null, stdout: "", stderr: "", timedOut: false, aborted: true, truncated: false };
  const cmd = o.sandbox.wrap(argv);
  let proc;
  try {
    // detached: setsid(), so the command leads a new process group (and has no controlling terminal).
    proc = Bun.spawn(cmd, { cwd: o.cwd, env: o.env, stdin: "ignore", stdout: "pipe", stderr: "pipe", detached: true });
  } catch (err) {
    throw new Error(`could not start ${cmd[0]}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const pgid = proc.pid;
  live.add(pgid);
  let timedOut = false;
  let aborted = false;
  // Set once the command has exited: a timeout or abort during the wait for its pipes is not its fault.
  let exited = false;
  const timer =
    o.timeoutMs !== undefined
      ? setTimeout(() => {
          if (!exited) timedOut = true;
          killGroup(pgid);
        }, o.timeoutMs)
      : undefined;
  const onAbort = () => {
    if (!exited) aborted = true;
    killGroup(pgid);
  };
  o.signal?.addEventListener("abort", onAbort, { once: true });
  const max = o.maxOutput ?? 30_000;
  const out = capture(proc.stdout, max);
  const err = capture(proc.stderr, max);
  try {
    await proc.exited;
    exited = true;
    // The command is done: what it left running in its group goes too.
    killGroup(pgid);
    // The pipes close when the last process holding them is gone; one that left the group
    // (setsid, when unsandboxed) must not hold the call open.
    let grace: Timer | undefined;
    await Promise.race([Promise.all([out.done, err.done]), new Promise<void>((r) => (grace = setTimeout(r, PIPE_GRACE_MS)))]);
    clearTimeout(grace);
    out.stop();
    err.stop();
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener("abort", onAbort);
    live.delete(pgid);
  }
  return {
    exitCode: proc.exitCode,
    signal: proc.signalCode === null || proc.signalCode === undefined ? null : String(proc.signalCode),
    stdout: out.text(),
    stderr: err.text(),
    timedOut,
    aborted,
    truncated: out.truncated() || err.truncated(),
  };
}
