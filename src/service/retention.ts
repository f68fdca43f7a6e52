/**
 * Session retention: sessions that finished more than `--session-retention` ago are removed
 * whole, their working folder first (so a crash in between leaves a row to retry, never a folder
 * nobody knows of), then their events, the webhook deliveries naming them and the row. Runs at
 * start and then every `intervalMs`, in small transactions with a pause between them, so a large
 * first clean-up never holds the store for long. Pending and Running sessions, and finished ones
 * whose callback is still being delivered, are never removed. Entries of the delivery log made
 * before the same cutoff go too.
 */
import * as fs from "node:fs";
import { join } from "node:path";
import { formatDuration } from "../lib/duration";
import type { Logger } from "../lib/log";
import type { RetentionRepo } from "../store/retention";

export const DEFAULT_SESSION_RETENTION_MS = 30 * 86_400_000;
export const DEFAULT_RETENTION_INTERVAL_MS = 3_600_000;

export interface RetentionDeps {
  /** Runs a function in one transaction. */
  tx: <T>(fn: () => T) => T;
  repo: RetentionRepo;
  /** Sessions' working folders are `<workDir>/<namespace>/<session>`. */
  workDir: string;
  log: Logger;
  /** How long after it finished a session is kept; 0 keeps every session. */
  retentionMs: number;
  /** Time between runs (default an hour). */
  intervalMs?: number;
  /** The clock, in epoch milliseconds. */
  now?: () => number;
  /** Sessions per transaction (default 500). */
  batchSize?: number;
  /** Events deleted per transaction at most (default 20000): a session with a huge history is removed over several. */
  maxEventsPerBatch?: number;
  /** The delivery log: its entries older than the retention go with the old sessions. */
  deliveries?: DeliveryLogRetention;
}

/** What retention asks of the delivery log (src/service/deliveries.ts). */
export interface DeliveryLogRetention {
  /** Removes entries made before `cutoff` (ISO) among the `limit` oldest; how many went. */
  removeBefore(cutoff: string, limit: number): Promise<number>;
}

/**
 * Removes the delivery log's entries made before `cutoff`, a batch of the oldest at a time, until
 * a batch has none (ids grow with time, so none are left), between `stopped` checks.
 */
export async function removeOldDeliveries(log: DeliveryLogRetention | undefined, cutoff: string, batchSize: number, stopped: () => boolean) {
  while (log && !stopped()) {
    if ((await log.removeBefore(cutoff, batchSize)) === 0) return;
    await pause();
  }
}

/** Names we create folders for; anything else (a path trick) is never joined into a path to delete. */
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

const pause = () => new Promise<void>((resolve) => setTimeout(resolve, 1));

/**
 * `rm -rf` of exactly `<workDir>/<namespace>/<session>`. Only when the namespace's folder is a
 * real folder: were it a link (an agent can reach it as `..`), the path would lead elsewhere.
 * rm does not follow links inside the folder; a link as the folder itself is removed, not its target.
 */
export async function removeSessionFolder(workDir: string, namespace: string, session: string, log: Logger) {
  if (!SAFE_NAME.test(namespace) || !SAFE_NAME.test(session)) {
    log.warn("retention: not removing a folder with an unexpected name", { namespace, session });
    return;
  }
  const nsDir = join(workDir, namespace);
  try {
    const st = await fs.promises.lstat(nsDir);
    if (!st.isDirectory()) {
      log.warn("retention: the namespace's sessions folder is not a folder (a link?); its session folders are left alone", { folder: nsDir });
      return;
    }
  } catch {
    return; // No folder for this namespace: nothing to remove.
  }
  const dir = join(nsDir, session);
  await fs.promises.rm(dir, { recursive: true, force: true }).catch((err) => log.warn("retention: failed to remove a session's folder; remove it by hand", { folder: dir, error: (err as Error).message }));
}

export function createRetentionService(deps: RetentionDeps) {
  const { repo, log, workDir, retentionMs } = deps;
  const intervalMs = deps.intervalMs ?? DEFAULT_RETENTION_INTERVAL_MS;
  const now = deps.now ?? Date.now;
  const batchSize = deps.batchSize ?? 500;
  const maxEvents = deps.maxEventsPerBatch ?? 20_000;
  const removeFolder = (namespace: string, session: string) => removeSessionFolder(workDir, namespace, session, log);

  /** One pass: removes every session that finished before now − retention. Returns how many were removed. */
  async function runOnce(): Promise<number> {
    if (!retentionMs) return 0;
    const cutoff = new Date(now() - retentionMs).toISOString();
    let removed = 0;
    while (!loop.stopped()) {
      const batch = repo.finishedBefore(cutoff, batchSize);
      if (!batch.length) break;
      for (const c of batch) await removeFolder(c.namespace, c.name);
      if (loop.stopped()) break;
      let progress = false;
      deps.tx(() => {
        let budget = maxEvents;
        for (const c of batch) {
          const r = repo.remove(c, cutoff, budget);
          budget -= r.events;
          if (r.removed) removed++;
          if (r.events || r.removed) progress = true;
          if (budget <= 0) break;
        }
      });
      if (!progress) break;
      await pause();
    }
    // Deliveries whose session is gone (a signed delivery's second key, or what an earlier run left).
    let cursor: number | null = 0;
    while (!loop.stopped() && cursor !== null) {
      const from: number = cursor;
      cursor = deps.tx(() => repo.sweepDeliveries(from, cutoff, batchSize)).next;
      if (cursor !== null) await pause();
    }
    await removeOldDeliveries(deps.deliveries, cutoff, batchSize, loop.stopped);
    if (removed) log.info(`retention: removed ${removed} session${removed === 1 ? "" : "s"} that finished more than ${formatDuration(retentionMs)} ago`, { removed });
    return removed;
  }

  const loop = retentionLoop({ enabled: !!retentionMs, intervalMs, log, pass: runOnce });
  return { start: loop.start, stop: loop.stop, runOnce };
}

/**
 * Runs `pass` now (in the background) and then every `intervalMs` after the previous one ended,
 * never keeping the process alive; nothing when not `enabled`. `stop()` ends the timer and waits
 * for a pass in progress, which looks at `stopped()` between its batches.
 */
export function retentionLoop(opts: { enabled: boolean; intervalMs: number; log: Logger; pass: () => Promise<unknown> }) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = false;
  function schedule(ms: number) {
    if (stopped) return;
    timer = setTimeout(() => {
      running = opts
        .pass()
        .catch((err) => opts.log.error("retention: failed to remove old sessions", { error: (err as Error).message }))
        .finally(() => {
          running = undefined;
          schedule(opts.intervalMs);
        });
    }, ms);
    (timer as { unref?: () => void }).unref?.();
  }
  return {
    start() {
      if (!opts.enabled || timer || stopped) return;
      schedule(0);
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
    stopped: () => stopped,
  };
}

export type RetentionService = ReturnType<typeof createRetentionService>;
