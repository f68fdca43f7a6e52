/**
 * The console's overview: sessions started and finished, and webhook answers by code, per minute
 * over the last hour, with the running and pending counts now. Read from the same counters as
 * /metrics: a snapshot of them is kept at the start of every minute (61 at most), and a minute's
 * figures are the difference between two snapshots (the current minute's, between the last one
 * and now). Minutes before this process started count zero. With replicas, each one counts its own.
 */
import type { Metrics } from "../lib/metrics";

export interface OverviewMinute {
  /** The minute's start (ISO). */
  start: string;
  sessionsStarted: number;
  sessionsFinished: number;
  /** Webhook answers by HTTP status code. */
  answers: Record<string, number>;
}

export interface Overview {
  running: number;
  pending: number;
  /** The last 60 minutes, oldest first; the last one is the current minute so far. */
  minutes: OverviewMinute[];
}

interface Snapshot {
  minute: number;
  started: number;
  finished: number;
  answers: Record<string, number>;
}

const MINUTE = 60_000;
const KEEP = 61;

export function createOverview(deps: { metrics: Metrics; running: () => number; pending: () => number; now?: () => number; tickMs?: number }) {
  const now = deps.now ?? Date.now;
  const snapshots: Snapshot[] = [];
  const sum = (name: string) => deps.metrics.read(name).reduce((n, c) => n + c.n, 0);

  function read(minute: number): Snapshot {
    const answers: Record<string, number> = {};
    for (const c of deps.metrics.read("pai_webhook_requests_total")) {
      const code = c.labels.code ?? "?";
      answers[code] = (answers[code] ?? 0) + c.n;
    }
    return { minute, started: sum("pai_sessions_started_total"), finished: sum("pai_sessions_finished_total"), answers };
  }

  /** Takes the snapshot of a new minute (a cheap check, run every second). */
  function tick() {
    const minute = Math.floor(now() / MINUTE) * MINUTE;
    if (snapshots.at(-1)?.minute === minute) return;
    snapshots.push(read(minute));
    if (snapshots.length > KEEP) snapshots.splice(0, snapshots.length - KEEP);
  }

  const diff = (a: Snapshot, b: Snapshot): Omit<OverviewMinute, "start"> => {
    const answers: Record<string, number> = {};
    for (const [code, n] of Object.entries(b.answers)) {
      const d = n - (a.answers[code] ?? 0);
      if (d > 0) answers[code] = d;
    }
    return { sessionsStarted: b.started - a.started, sessionsFinished: b.finished - a.finished, answers };
  };

  tick();
  const timer = setInterval(tick, deps.tickMs ?? 1000);
  timer.unref?.();

  return {
    report(): Overview {
      tick();
      const current = Math.floor(now() / MINUTE) * MINUTE;
      const byMinute = new Map<number, Omit<OverviewMinute, "start">>();
      for (let i = 0; i + 1 < snapshots.length; i++) byMinute.set(snapshots[i]!.minute, diff(snapshots[i]!, snapshots[i + 1]!));
      const last = snapshots.at(-1)!;
      byMinute.set(last.minute, diff(last, read(current)));
      const minutes: OverviewMinute[] = [];
      for (let m = current - 59 * MINUTE; m <= current; m += MINUTE)
        minutes.push({ start: new Date(m).toISOString(), ...(byMinute.get(m) ?? { sessionsStarted: 0, sessionsFinished: 0, answers: {} }) });
      return { running: deps.running(), pending: deps.pending(), minutes };
    },
    stop: () => clearInterval(timer),
  };
}

export type OverviewService = ReturnType<typeof createOverview>;
