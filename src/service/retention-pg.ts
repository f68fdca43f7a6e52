/**
 * Session retention for replicas on Postgres: each replica removes what finished before
 * `--session-retention` among the sessions it ran (their working folders are on its disk: folder
 * first, then the rows, as ./retention.ts does) and among those of replicas that are gone (their
 * folders went with them). Rows go in batches, events with their session, deliveries naming it
 * too. Session names never repeat here (they come from per-agent counters in the database), so no
 * session is held back to keep a counter.
 */
import { formatDuration } from "../lib/duration";
import type { Logger } from "../lib/log";
import type { PgRunRepo } from "../store/pg/run-repo";
import { DEFAULT_RETENTION_INTERVAL_MS, removeSessionFolder } from "./retention";

export function createPgRetentionService(deps: {
  repo: PgRunRepo;
  replicaId: string;
  /** Heartbeats older than this mark a replica gone. */
  leaseMs: number;
  workDir: string;
  log: Logger;
  retentionMs: number;
  intervalMs?: number;
  now?: () => number;
  batchSize?: number;
}) {
  const { repo, log, retentionMs } = deps;
  const intervalMs = deps.intervalMs ?? DEFAULT_RETENTION_INTERVAL_MS;
  const now = deps.now ?? Date.now;
  const batchSize = deps.batchSize ?? 500;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = false;

  async function runOnce(): Promise<number> {
    if (!retentionMs) return 0;
    const cutoff = new Date(now() - retentionMs).toISOString();
    let removed = 0;
    while (!stopped) {
      const batch = await repo.retentionCandidates(deps.replicaId, cutoff, Date.now(), deps.leaseMs, batchSize);
      if (!batch.length) break;
      for (const c of batch) if (c.mine) await removeSessionFolder(deps.workDir, c.namespace, c.name, log);
      if (stopped) break;
      const n = await repo.removeSessions(batch, cutoff);
      removed += n;
      // Another replica removed them meanwhile, or they changed: nothing left to do now.
      if (!n) break;
    }
    if (removed) log.info(`retention: removed ${removed} session${removed === 1 ? "" : "s"} that finished more than ${formatDuration(retentionMs)} ago`, { removed });
    return removed;
  }

  function schedule(ms: number) {
    if (stopped) return;
    timer = setTimeout(() => {
      running = runOnce()
        .catch((err) => log.error("retention: failed to remove old sessions", { error: (err as Error).message }))
        .finally(() => {
          running = undefined;
          schedule(intervalMs);
        });
    }, ms);
    (timer as { unref?: () => void }).unref?.();
  }

  return {
    start() {
      if (!retentionMs || timer || stopped) return;
      schedule(0);
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
    runOnce,
  };
}
