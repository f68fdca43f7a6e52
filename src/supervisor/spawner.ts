/**
 * Where session children are started: on a thread of their own (a Worker), not on the server's
 * event loop. Bun.spawn uses vfork, which suspends the calling thread until the child has called
 * exec; with CPU-busy sessions on every core that wait is a few ms per spawn (the new child must
 * first be scheduled), and on the main thread it stalled accepting and answering HTTP. The thread
 * also makes each child's working folder, writes webhook.json, reads the child's stderr and IPC
 * pipe, and removes the folder when it is left empty, and it reports everything in order.
 *
 * The thread runs at the children's nice value, so a child is at its lower priority from its first
 * instruction (nice is per thread on Linux and inherited at fork) rather than from when the server
 * gets round to renicing it, and so are the threads its runtime starts early. One child per
 * session, each with its own environment and folder, exactly as before; only the thread that
 * calls spawn changed. If no Worker can be made, the same code runs on the main thread.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import type { HarnessMessage, StartMessage } from "../harness/protocol";

/** Supervisor → spawner. */
export type SpawnRequest =
  | {
      t: "spawn";
      id: number;
      cmd: string[];
      cwd: string;
      env: Record<string, string>;
      /** Written to `<cwd>/webhook.json` as compact JSON when `hasPayload`. */
      payload?: unknown;
      hasPayload: boolean;
      start: StartMessage;
    }
  | { t: "kill"; id: number; signal: "SIGTERM" | "SIGKILL" };

/** Spawner → supervisor, in the order things happened to each child. */
export type SpawnEvent =
  /** The child runs. `niceError`: it could not be given its lower priority; `sendError`: the start message could not be sent. */
  | { t: "spawned"; id: number; pid: number; niceError?: string; sendError?: string }
  /** The folder or the child could not be made; nothing runs (an empty folder made for it is gone). */
  | { t: "failed"; id: number; message: string }
  | { t: "message"; id: number; msg: HarnessMessage }
  /** The child is gone and its folder removed if empty; `stderr` is the tail read so far. */
  | { t: "exit"; id: number; code: number | null; signal: string | null; stderr: string };

export interface SpawnerOptions {
  /** The nice value children get (-1: leave them at the server's). */
  childNice: number;
  /** Characters of a child's stderr kept for the error message. */
  stderrTail: number;
}

/**
 * The spawner's code. Self-contained (it references nothing outside itself but globals and its
 * arguments), because for a Worker it is shipped as source text: `inThread` says whether it owns
 * its thread (then it renices that thread once) or runs on the server's (then it renices each child).
 */
export function spawnerBody(post: (e: SpawnEvent) => void, nodeFs: typeof fs, nodeOs: typeof os, opts: SpawnerOptions, inThread: boolean) {
  const procs = new Map<number, import("bun").Subprocess>();
  let reniceEach = opts.childNice >= 0;
  let threadNiceError: string | undefined;
  if (inThread && reniceEach) {
    try {
      nodeOs.setPriority(0, opts.childNice); // 0: this thread only (Linux), inherited by what it spawns
      reniceEach = false;
    } catch (err) {
      threadNiceError = String((err as Error)?.message ?? err);
    }
  }
  const removeIfEmpty = (dir: string) => {
    try {
      if (nodeFs.readdirSync(dir).length === 0) nodeFs.rmSync(dir, { recursive: true });
    } catch {
      // Already gone.
    }
  };
  /** rmdir removes a folder only when it is empty: the same as removeIfEmpty, off this thread. */
  const removeIfEmptyLater = (dir: string) => nodeFs.promises.rmdir(dir).catch(() => {});

  async function drain(proc: import("bun").Subprocess, tail: { text: string }) {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) tail.text = (tail.text + decoder.decode(chunk)).slice(-opts.stderrTail);
    } catch {
      // The pipe closes with the child.
    }
  }

  return (req: SpawnRequest) => {
    if (req.t === "kill") {
      try {
        procs.get(req.id)?.kill(req.signal);
      } catch {
        // Gone already: its exit is on the way.
      }
      return;
    }
    const { id, cwd } = req;
    let proc: import("bun").Subprocess;
    try {
      nodeFs.mkdirSync(cwd, { recursive: true, mode: 0o700 });
      // Compact: the payload came as compact JSON; indenting a deeply nested body multiplies its size.
      if (req.hasPayload) nodeFs.writeFileSync(`${cwd}/webhook.json`, JSON.stringify(req.payload), { mode: 0o600 });
      proc = Bun.spawn(req.cmd, {
        cwd,
        env: req.env,
        stdin: "ignore",
        stdout: "ignore",
        stderr: "pipe",
        serialization: "json",
        ipc: (msg: HarnessMessage) => post({ t: "message", id, msg }),
      });
    } catch (err) {
      removeIfEmpty(cwd);
      post({ t: "failed", id, message: String((err as Error)?.message ?? err) });
      return;
    }
    let niceError = threadNiceError;
    if (reniceEach) {
      try {
        nodeOs.setPriority(proc.pid, opts.childNice);
      } catch (err) {
        niceError = String((err as Error)?.message ?? err);
      }
    }
    procs.set(id, proc);
    const tail = { text: "" };
    drain(proc, tail);
    let sendError: string | undefined;
    try {
      proc.send(req.start);
    } catch (err) {
      sendError = String((err as Error)?.message ?? err);
    }
    post({ t: "spawned", id, pid: proc.pid, ...(niceError ? { niceError } : {}), ...(sendError ? { sendError } : {}) });
    proc.exited.then(async (code) => {
      procs.delete(id);
      await removeIfEmptyLater(cwd);
      post({ t: "exit", id, code, signal: proc.signalCode ? String(proc.signalCode) : null, stderr: tail.text });
    });
  };
}

export interface Spawner {
  send(req: SpawnRequest): void;
  /** Stops the thread (once no child is left). */
  close(): void;
}

/**
 * A spawner on a Worker thread (created now), or on this thread if no Worker can be made or
 * `inline` asks for it. `onError`: the thread failed (the caller deals with the children it held).
 */
export function createSpawner(opts: SpawnerOptions, onEvent: (e: SpawnEvent) => void, onError: (err: unknown) => void, inline = false): Spawner {
  if (!inline) try {
    const source =
      `const h = (${spawnerBody.toString()})((e) => postMessage(e), require("node:fs"), require("node:os"), ${JSON.stringify(opts)}, true);\n` +
      `onmessage = (e) => h(e.data);\n`;
    const url = URL.createObjectURL(new Blob([source], { type: "application/javascript" }));
    const worker = new Worker(url);
    worker.onmessage = (e: MessageEvent<SpawnEvent>) => onEvent(e.data);
    worker.onerror = (e) => onError((e as ErrorEvent).error ?? new Error((e as ErrorEvent).message));
    // The HTTP server and the children's own handles keep the process alive, not this thread.
    (worker as Worker & { unref(): void }).unref();
    return {
      send: (req) => worker.postMessage(req),
      close() {
        worker.terminate();
        URL.revokeObjectURL(url);
      },
    };
  } catch {
    // No Worker here: spawn on this thread, as below.
  }
  const handle = spawnerBody(onEvent, fs, os, opts, false);
  return { send: handle, close() {} };
}
