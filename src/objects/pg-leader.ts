/**
 * One writer among replicas sharing Postgres: the replica holding a session-level advisory lock
 * runs the controller. The lock lives on one connection reserved for it; Postgres releases it when
 * that connection ends, so a replica that dies (or is cut off) frees it without a lease to expire,
 * and another takes it at its next try. The holder checks its connection every `retryMs`; if the
 * check fails it stops leading at once (it cannot know whether it still holds the lock).
 */
import type { SQL } from "bun";
import type { Logger } from "../lib/log";
import type { LeaderElector } from "../kube/lease";

/** The lock's key: hashtext('pai-controller'), computed by Postgres. */
const LOCK = "pai-controller";

export function createPgLeader(opts: { sql: SQL; log: Logger; retryMs?: number; onStartedLeading(): void; onStoppedLeading(): void }): LeaderElector {
  const { sql, log } = opts;
  const retryMs = opts.retryMs ?? 2000;
  let conn: Awaited<ReturnType<SQL["reserve"]>> | undefined;
  let leading = false;
  let started = false;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let busy: Promise<void> = Promise.resolve();
  const stats = { acquired: 0, lost: 0, renewals: 0, errors: 0 };

  function drop() {
    const c = conn;
    conn = undefined;
    try {
      c?.release();
    } catch {
      // Already closed.
    }
  }

  function endTerm(lost: boolean) {
    if (!leading) return;
    leading = false;
    if (lost) stats.lost++;
    opts.onStoppedLeading();
  }

  async function attempt() {
    try {
      if (leading) {
        await conn!`SELECT 1`;
        stats.renewals++;
        return;
      }
      conn ??= await sql.reserve();
      const [r] = await conn`SELECT pg_try_advisory_lock(hashtext(${LOCK})) AS ok`;
      if (r?.ok && !stopped) {
        leading = true;
        stats.acquired++;
        opts.onStartedLeading();
      }
    } catch (err) {
      stats.errors++;
      log.warn(leading ? "lost the connection holding the controller lock: no longer leading" : "could not try the controller lock", { error: (err as Error).message });
      endTerm(true);
      drop();
    }
  }

  function loop() {
    if (stopped) return;
    busy = attempt().finally(() => {
      if (!stopped) {
        timer = setTimeout(loop, retryMs);
        timer.unref?.();
      }
    });
  }

  return {
    start() {
      if (started) return;
      started = true;
      loop();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await busy.catch(() => {});
      const wasLeading = leading;
      endTerm(false);
      if (wasLeading && conn) await conn`SELECT pg_advisory_unlock(hashtext(${LOCK}))`.catch(() => {});
      drop();
    },
    isLeader: () => leading,
    stats: () => ({ ...stats }),
  };
}
