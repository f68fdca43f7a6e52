/**
 * The delivery log: a record of how the server answered each webhook request that named an
 * existing agent (accepted or refused, with the session and the reason), so that a user can see
 * why a sender's delivery did or did not start anything. Requests to unknown agents are not kept:
 * nothing to attach them to, and probing names must not fill the store.
 *
 * Webhook URLs are public, so the log is built to be spammed:
 * - `record` only queues (no write on the request's path); the queue is written every `flushMs`
 *   in one batch (one transaction in SQLite), and a read writes it first, so what was answered
 *   before a read is in it.
 * - Each agent keeps its newest `perAgent` entries (1000), of which at most half refused, so a
 *   flood of bad tokens cannot push the accepted deliveries out of the log. The queue is trimmed
 *   the same way as it grows, so between two writes it holds at most 2 × perAgent per agent,
 *   whatever the request rate.
 * - Refused deliveries are recorded at most `refusedPerSecond` (20) a second per agent; beyond,
 *   they are counted, and when the second is over one entry says how many were not recorded.
 *   Replicas count each their own.
 */
import type { Logger } from "../lib/log";
import type { DeliveryCaps, DeliveryEntry, DeliveryRepo, StoredDelivery } from "../store/deliveries";

export const DEFAULT_DELIVERIES_PER_AGENT = 1000;
export const DEFAULT_REFUSED_PER_SECOND = 20;
export const DEFAULT_DELIVERY_FLUSH_MS = 1000;
/** Longest reason kept (the caller got the whole message). */
export const MAX_REASON = 300;
const MAX_EVENT = 100;
const MAX_DELIVERY = 200;
const WINDOW_MS = 1000;

/** An entry to record: the time is stamped here when not given. */
export type DeliveryInput = Omit<DeliveryEntry, "time"> & { time?: string };

export interface DeliveryLogDeps {
  repo: DeliveryRepo;
  log: Logger;
  /** Entries kept per agent (default 1000); half of them at most may be refused ones. */
  perAgent?: number;
  /** Refused deliveries recorded per agent and second (default 20). */
  refusedPerSecond?: number;
  /** Time between writes of the queue (default 1 s). */
  flushMs?: number;
  /** The clock, in epoch milliseconds. */
  now?: () => number;
}

/** A page of an agent's log, newest first; `next` is the position to pass as `before` for the page after. */
export interface DeliveryPage {
  items: StoredDelivery[];
  next?: number;
}

const clip = (s: string | undefined, max: number) => (s === undefined || s.length <= max ? s : `${s.slice(0, max - 1)}…`);
const key = (namespace: string, agent: string) => `${namespace}/${agent}`;

interface Queued {
  n: number;
  entry: DeliveryEntry;
}

/** One agent's current second of refused deliveries. */
interface Window {
  start: number;
  recorded: number;
  /** Refused deliveries not recorded in this second, by code, and the last of them. */
  suppressed: number;
  codes: Map<number, number>;
  last?: DeliveryEntry;
  timer?: ReturnType<typeof setTimeout>;
}

export function createDeliveryLog(deps: DeliveryLogDeps) {
  const { repo, log } = deps;
  const perAgent = Math.max(1, deps.perAgent ?? DEFAULT_DELIVERIES_PER_AGENT);
  const caps: DeliveryCaps = { perAgent, refusedPerAgent: Math.max(1, Math.floor(perAgent / 2)) };
  const refusedPerSecond = deps.refusedPerSecond ?? DEFAULT_REFUSED_PER_SECOND;
  const flushMs = deps.flushMs ?? DEFAULT_DELIVERY_FLUSH_MS;
  const now = deps.now ?? Date.now;
  // Many answers share a millisecond under load: its ISO text is made once.
  let lastMs = NaN;
  let lastIso = "";
  const iso = () => {
    const ms = now();
    if (ms !== lastMs) {
      lastMs = ms;
      lastIso = new Date(ms).toISOString();
    }
    return lastIso;
  };

  /** Entries not written yet, per agent, oldest first, each with its place in the arrival order (the log's order across agents). */
  let pending = new Map<string, Queued[]>();
  let arrivals = 0;
  const windows = new Map<string, Window>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let flushing: Promise<void> | undefined;
  let stopped = false;

  /**
   * What of an agent's entries (oldest first) its caps keep, as the store trims: refused entries
   * beyond the newest `refusedPerAgent` refused go, then everything beyond the newest `perAgent`.
   */
  function capped(list: Queued[]): Queued[] {
    let refused = 0;
    let kept = 0;
    const out: Queued[] = [];
    for (let i = list.length - 1; i >= 0 && kept < caps.perAgent; i--) {
      const q = list[i]!;
      if (q.entry.code >= 400 && refused++ >= caps.refusedPerAgent) continue;
      out.push(q);
      kept++;
    }
    return out.reverse();
  }

  function enqueue(e: DeliveryEntry) {
    const k = key(e.namespace, e.agent);
    let list = pending.get(k);
    if (!list) pending.set(k, (list = []));
    list.push({ n: arrivals++, entry: e });
    if (list.length >= 2 * caps.perAgent) pending.set(k, capped(list));
    if (!timer && !stopped) {
      timer = setTimeout(() => {
        timer = undefined;
        void flush();
      }, flushMs);
      (timer as { unref?: () => void }).unref?.();
    }
  }

  /** Ends an agent's second: if refused deliveries went unrecorded, one entry says how many. */
  function closeWindow(k: string, w: Window) {
    clearTimeout(w.timer);
    if (windows.get(k) === w) windows.delete(k);
    if (!w.suppressed || !w.last) return;
    const last = w.last;
    const codes = w.codes.size > 1 ? ` (${[...w.codes].map(([code, n]) => `${code} ×${n}`).join(", ")})` : "";
    const reason =
      `${w.suppressed} more refused ${w.suppressed === 1 ? "delivery" : "deliveries"} like this one${codes} were not recorded ` +
      `(at most ${refusedPerSecond} a second per agent are); the last: ${last.reason ?? `HTTP ${last.code}`}`;
    enqueue({ ...last, reason: clip(reason, MAX_REASON) });
  }

  /** Whether a refused delivery is recorded (within its agent's second) or only counted. */
  function admitRefused(e: DeliveryEntry): boolean {
    const k = key(e.namespace, e.agent);
    const t = now();
    let w = windows.get(k);
    if (w && t - w.start >= WINDOW_MS) {
      closeWindow(k, w);
      w = undefined;
    }
    if (!w) windows.set(k, (w = { start: t, recorded: 0, suppressed: 0, codes: new Map() }));
    if (w.recorded < refusedPerSecond) {
      w.recorded++;
      return true;
    }
    w.suppressed++;
    w.codes.set(e.code, (w.codes.get(e.code) ?? 0) + 1);
    w.last = e;
    if (!w.timer) {
      const window = w;
      // The count is recorded when the second is over, even if nothing else comes.
      window.timer = setTimeout(() => closeWindow(k, window), Math.max(0, window.start + WINDOW_MS - t));
      (window.timer as { unref?: () => void }).unref?.();
    }
    return false;
  }

  /** Records how a webhook request to an existing agent was answered. Never throws; costs no write now. */
  function record(input: DeliveryInput) {
    if (stopped) return;
    const e: DeliveryEntry = {
      time: input.time ?? iso(),
      namespace: input.namespace,
      agent: input.agent,
      sender: input.sender,
      code: input.code,
    };
    if (input.event !== undefined) e.event = clip(input.event, MAX_EVENT);
    if (input.delivery !== undefined) e.delivery = clip(input.delivery, MAX_DELIVERY);
    if (input.session !== undefined) e.session = input.session;
    if (input.reason !== undefined) e.reason = clip(input.reason, MAX_REASON);
    if (e.code >= 400 && !admitRefused(e)) return;
    enqueue(e);
  }

  /** Writes what is queued; resolves once it is stored (or its failure logged: the log is not worth a retry loop). */
  function flush(): Promise<void> {
    if (flushing) return flushing.then(() => (pending.size ? flush() : undefined));
    clearTimeout(timer);
    timer = undefined;
    // Seconds that ended quietly are forgotten (an agent's window lives while refusals come).
    const t = now();
    for (const [k, w] of windows) if (!w.suppressed && t - w.start >= WINDOW_MS) windows.delete(k);
    if (!pending.size) return Promise.resolve();
    // In arrival order: ids follow time across agents too, which retention relies on.
    const batch = [...pending.values()]
      .flatMap(capped)
      .sort((a, b) => a.n - b.n)
      .map((q) => q.entry);
    pending = new Map();
    flushing = (async () => {
      try {
        await repo.append(batch, caps);
      } catch (err) {
        log.warn("failed to write the delivery log; these entries are lost", { entries: batch.length, error: (err as Error).message });
      }
    })().finally(() => {
      flushing = undefined;
    });
    return flushing;
  }

  return {
    record,
    /** An agent's entries, newest first: up to `limit` (default 100) before position `before`. */
    async list(namespace: string, agent: string, opts: { limit?: number; before?: number } = {}): Promise<DeliveryPage> {
      await flush();
      const limit = opts.limit ?? 100;
      const items = await repo.list(namespace, agent, limit, opts.before);
      return items.length === limit && items.length ? { items, next: items[items.length - 1]!.id } : { items };
    },
    /** Retention: removes entries made before `cutoff` (ISO) among the `limit` oldest; how many went. */
    removeBefore: async (cutoff: string, limit: number): Promise<number> => repo.removeBefore(cutoff, limit),
    flush,
    /** Entries waiting to be written (at most 2 × perAgent per agent). */
    queued: () => [...pending.values()].reduce((n, l) => n + l.length, 0),
    /** Writes the counts of seconds in progress and the queue; records nothing after. */
    async stop() {
      for (const [k, w] of [...windows]) closeWindow(k, w);
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
      await flush();
    },
    caps,
  };
}

export type DeliveryLog = ReturnType<typeof createDeliveryLog>;
