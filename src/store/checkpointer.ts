/**
 * WAL checkpoints on a thread of their own. With SQLite's automatic checkpoints, the commit that
 * crosses `wal_autocheckpoint` pages copies the WAL back into the database file and fsyncs both,
 * on the server's event loop, in the middle of answering webhooks: under a burst of accepts that
 * was about 40% of what a commit costs (bench/webhooks.ts, `hold` case). Here a Worker with its
 * own connection runs PASSIVE checkpoints (they never block the writer, and the writer never
 * waits for them) every few hundred milliseconds while there is something to copy, so the WAL
 * stays small and the writer restarts it from the beginning once it is fully copied.
 *
 * The server's connection keeps a high automatic-checkpoint threshold as a backstop: if the thread
 * cannot keep up, or cannot be started at all, SQLite checkpoints on the writer as it always did,
 * only later. `journal_size_limit` truncates a WAL that a burst made large once it is reused. The
 * store starts the thread lazily (`lazyCheckpointer`), once writes make the WAL grow.
 */
import type { Database } from "bun:sqlite";
import { statSync } from "node:fs";

/** The server connection's own checkpoint threshold, in pages (4 KiB each): a backstop only. */
export const BACKSTOP_PAGES = 16_384;
/** Bytes a reused WAL is truncated to. */
export const WAL_SIZE_LIMIT = 64 * 1024 * 1024;

export interface CheckpointerOptions {
  /** Milliseconds between checkpoints while the WAL has frames to copy. */
  busyMs: number;
  /** Milliseconds between checkpoints while it has none (the interval grows to this when idle). */
  idleMs: number;
}

const DEFAULTS: CheckpointerOptions = { busyMs: 100, idleMs: 1000 };

/** What the thread reports, read by tests and the metrics. */
export interface CheckpointStats {
  /** Checkpoints run. */
  runs: number;
  /** Frames in the WAL at the last checkpoint, and how many of them are in the database file. */
  walFrames: number;
  backfilled: number;
  /** The last error, if the last checkpoint failed. */
  error?: string;
}

/**
 * The thread's code. Self-contained (globals and arguments only): it is shipped to the Worker as
 * source text, which also works inside the compiled binary. `state` is shared memory: [0] is set
 * to 1 by the server to stop, [1] is set to 1 by the thread once its connection is closed.
 * Returns the function that stops it now.
 */
export function checkpointerBody(
  sqlite: { Database: new (file: string, opts?: object) => Database },
  file: string,
  opts: CheckpointerOptions,
  state: Int32Array,
  report: (s: CheckpointStats) => void,
) {
  const db = new sqlite.Database(file, { strict: true });
  db.exec("PRAGMA busy_timeout = 1000");
  const checkpoint = db.prepare<{ busy: number; log: number; checkpointed: number }, []>("PRAGMA wal_checkpoint(PASSIVE)");
  const stats: CheckpointStats = { runs: 0, walFrames: 0, backfilled: 0 };
  let wait = opts.busyMs;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let done = false;
  const close = () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    try {
      checkpoint.finalize();
      db.close(true);
    } catch {
      // Closing can only fail on statements left open, and there are none; the flag is set regardless.
    } finally {
      Atomics.store(state, 1, 1);
      Atomics.notify(state, 1);
    }
  };
  const tick = () => {
    if (Atomics.load(state, 0) === 1) return close();
    const before = stats.walFrames;
    try {
      const r = checkpoint.get();
      stats.runs++;
      stats.walFrames = Math.max(0, r?.log ?? 0);
      stats.backfilled = Math.max(0, r?.checkpointed ?? 0);
      stats.error = undefined;
    } catch (err) {
      stats.error = String((err as Error)?.message ?? err);
    }
    report({ ...stats });
    // The WAL moved since last time (grew, or restarted): come back soon. Idle: back off, up to idleMs.
    wait = stats.walFrames !== before ? opts.busyMs : Math.min(opts.idleMs, wait * 2);
    timer = setTimeout(tick, wait);
  };
  timer = setTimeout(tick, wait);
  return close;
}

export interface Checkpointer {
  /** The thread's figures so far (as last reported). */
  stats(): CheckpointStats;
  /** Stops the thread and waits (up to 2 s) until its connection is closed. */
  close(): void;
}

/**
 * Starts the checkpoint thread for `sqlite` (a WAL database opened by this process) and lowers the
 * connection's own automatic checkpoints to a backstop. Returns null, leaving SQLite's default
 * behaviour, if no Worker can be made here.
 */
export function startCheckpointer(sqlite: Database, file: string, options: Partial<CheckpointerOptions> = {}): Checkpointer | null {
  const opts = { ...DEFAULTS, ...options };
  sqlite.exec(`PRAGMA journal_size_limit = ${WAL_SIZE_LIMIT}`);
  const state = new Int32Array(new SharedArrayBuffer(8));
  let last: CheckpointStats = { runs: 0, walFrames: 0, backfilled: 0 };
  let worker: Worker;
  let url: string;
  try {
    const source =
      `let stop; onmessage = (e) => { if (e.data === "stop") return stop?.(); const { file, opts, state } = e.data; ` +
      `stop = (${checkpointerBody.toString()})(require("bun:sqlite"), file, opts, state, (s) => postMessage(s)); };\n`;
    url = URL.createObjectURL(new Blob([source], { type: "application/javascript" }));
    worker = new Worker(url);
  } catch {
    return null;
  }
  worker.onmessage = (e: MessageEvent<CheckpointStats>) => (last = e.data);
  // A thread that fails leaves the backstop in charge; nothing else depends on it.
  worker.onerror = (e) => (last = { ...last, error: String((e as ErrorEvent).message ?? "checkpoint thread failed") });
  (worker as Worker & { unref(): void }).unref();
  worker.postMessage({ file, opts, state });
  sqlite.exec(`PRAGMA wal_autocheckpoint = ${BACKSTOP_PAGES}`);
  let closed = false;
  return {
    stats: () => last,
    close() {
      if (closed) return;
      closed = true;
      Atomics.store(state, 0, 1);
      worker.postMessage("stop");
      // The thread closes its connection on the message (or at its next tick); the server's
      // connection is closed after that, so it is the last one and removes the WAL.
      Atomics.wait(state, 1, 0, 2000);
      worker.terminate();
      URL.revokeObjectURL(url);
    },
  };
}

/** The WAL size at which a lazy checkpointer starts its thread (SQLite's own default checkpoints at ~4 MB). */
export const START_AT_BYTES = 2 * 1024 * 1024;

export interface LazyCheckpointer extends Checkpointer {
  /** Whether the thread runs (it starts once the WAL first reaches START_AT_BYTES). */
  running(): boolean;
  /** Tells it a transaction committed: every 64th commit it looks at the WAL's size. */
  committed(): void;
}

/** Commits between two looks at the WAL's size. */
const LOOK_EVERY = 64;

/**
 * A checkpointer whose thread starts only when writes make the WAL grow (looked at every 64th
 * commit, so a burst of webhooks starts it within a fraction of a second and an idle server never
 * wakes up for it): a server that writes a little keeps SQLite's own checkpoints and does not pay
 * for a thread (a few MB).
 */
export function lazyCheckpointer(sqlite: Database, file: string, options: Partial<CheckpointerOptions> & { startAtBytes?: number } = {}): LazyCheckpointer {
  const startAt = options.startAtBytes ?? START_AT_BYTES;
  let inner: Checkpointer | null = null;
  let closed = false;
  let commits = 0;
  return {
    running: () => inner !== null,
    committed() {
      if (inner || closed || ++commits % LOOK_EVERY !== 0) return;
      let size = 0;
      try {
        size = statSync(`${file}-wal`).size;
      } catch {
        return; // no WAL yet
      }
      if (size >= startAt) inner = startCheckpointer(sqlite, file, options) ?? null;
      // No Worker here: stop looking; SQLite's own checkpoints stay in charge.
      if (!inner && size >= startAt) closed = true;
    },
    stats: () => inner?.stats() ?? { runs: 0, walFrames: 0, backfilled: 0 },
    close() {
      closed = true;
      inner?.close();
    },
  };
}
