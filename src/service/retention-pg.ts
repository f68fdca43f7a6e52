/**
 * Session retention for replicas on Postgres: each replica removes what finished before
 * `--session-retention` among the sessions it ran (their working folders are on its disk: folder
 * first, then the rows, as ./retention.ts does) and among those of replicas that are gone (their
 * folders went with them). Rows go in batches, events with their session, deliveries naming it
 * too. Session names never repeat here (they come from per-agent counters in the database), so no
 * session is held back to keep a counter.
 */
import { formatDuration } from "../lib/duration";
import type { PgRunRepo } from "../store/pg/run-repo";
import { DEFAULT_RETENTION_INTERVAL_MS, removeOldDeliveries, removeSessionFolder, retentionLoop, type RetentionDeps } from "./retention";

export function createPgRetentionService(
  deps: Pick<RetentionDeps, "workDir" | "log" | "retentionMs" | "intervalMs" | "now" | "batchSize" | "deliveries"> & {
    repo: PgRunRepo;
    replicaId: string;
    /** Heartbeats older than this mark a replica gone. */
    leaseMs: number;
  },
) {
  const { repo, log, retentionMs } = deps;
  const intervalMs = deps.intervalMs ?? DEFAULT_RETENTION_INTERVAL_MS;
  const now = deps.now ?? Date.now;
  const batchSize = deps.batchSize ?? 500;

  async function runOnce(): Promise<number> {
    if (!retentionMs) return 0;
    const cutoff = new Date(now() - retentionMs).toISOString();
    let removed = 0;
    while (!loop.stopped()) {
      const batch = await repo.retentionCandidates(deps.replicaId, cutoff, Date.now(), deps.leaseMs, batchSize);
      if (!batch.length) break;
      for (const c of batch) if (c.mine) await removeSessionFolder(deps.workDir, c.namespace, c.name, log);
      if (loop.stopped()) break;
      const n = await repo.removeSessions(batch, cutoff);
      removed += n;
      // Another replica removed them meanwhile, or they changed: nothing left to do now.
      if (!n) break;
    }
    // Any replica may remove old entries of the shared log: deleting them twice deletes nothing.
    await removeOldDeliveries(deps.deliveries, cutoff, batchSize, loop.stopped);
    if (removed) log.info(`retention: removed ${removed} session${removed === 1 ? "" : "s"} that finished more than ${formatDuration(retentionMs)} ago`, { removed });
    return removed;
  }

  const loop = retentionLoop({ enabled: !!retentionMs, intervalMs, log, pass: runOnce });
  return { start: loop.start, stop: loop.stop, runOnce };
}
