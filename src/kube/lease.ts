/**
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's tools/leaderelection rules,
 * so that only one pai replica runs the controller and kubectl (or a Go tool) reading the Lease
 * sees the same record client-go would write.
 *
 * The rules that make two leaders impossible while clocks run at the same rate (not in sync):
 * - Whether another holder's lease has expired is judged by when WE last saw its record change
 *   (our clock), plus the record's leaseDurationSeconds, never by its renewTime (their clock).
 * - A leader's term ends renewDeadline after the last successful write was SENT: the write took
 *   effect after that, and any other replica saw it later still, so it waits leaseDuration
 *   (> renewDeadline) from a later moment than ours. An answer that comes back too late does not
 *   extend the term.
 * - Every write is an update at the resourceVersion we read, so of two replicas racing for an
 *   expired lease one gets 409 Conflict.
 * Unlike client-go, whose Run() returns after the term ends, a lost term goes back to trying to
 * acquire; and stop() ends the term (onStoppedLeading) before releasing the lease, so no other
 * replica can lead while this one still thinks it does.
 */
import type { Logger } from "../lib/log";
import { KubeApiError, type KubeClient, type KubeObject } from "./client";

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface Lease extends KubeObject {
  spec?: LeaseSpec;
}

export interface LeaderElector {
  /** Begins trying to acquire; calling it again does nothing. */
  start(): void;
  /** Stops; a leader ends its term (onStoppedLeading) and releases the lease so another replica takes over at once. */
  stop(): Promise<void>;
  isLeader(): boolean;
  /** acquired: terms begun; lost: terms ended other than by stop(); renewals: successful renewals; errors: failed requests. */
  stats(): { acquired: number; lost: number; renewals: number; errors: number };
}

export interface LeaderElectorOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  /** Unique per replica and per process start, e.g. hostname + "_" + random. */
  identity: string;
  log: Logger;
  /** How long others wait, from when they last saw the lease change, before taking it. Default 15000; sent in whole seconds, rounded up. */
  leaseDurationMs?: number;
  /** How long a leader keeps leading without a successful renewal. Default 10000. */
  renewDeadlineMs?: number;
  /** Between attempts to acquire (with client-go's jitter) or renew. Default 2000. */
  retryPeriodMs?: number;
  /** Called when a term begins. */
  onStartedLeading(): void;
  /** Called when a term ends: no renewal within renewDeadline, the lease taken by another, or stop(). */
  onStoppedLeading(): void;
  now?: () => number;
}

/** client-go's JitterFactor: waits between acquire attempts are retryPeriod × (1 + up to 1.2). */
const JITTER_FACTOR = 1.2;

/** A metav1.MicroTime: RFC 3339 with microseconds ("2006-01-02T15:04:05.000000Z"). */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

const isConflict = (err: unknown) => err instanceof KubeApiError && err.status === 409;

/** The outcome of one attempt: the lease is ours (written at `sentAt`), or someone else holds it. */
type Attempt = { ours: true; sentAt: number } | { ours: false; holder: string };

export function createLeaderElector(opts: LeaderElectorOptions): LeaderElector {
  const { client, namespace, name, identity, log } = opts;
  const leaseDurationMs = opts.leaseDurationMs ?? 15_000;
  const renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
  const retryPeriodMs = opts.retryPeriodMs ?? 2_000;
  const now = opts.now ?? Date.now;
  // client-go's own checks: without them the safety argument above does not hold.
  if (!identity) throw new Error("leader election: identity must not be empty");
  if (!(retryPeriodMs > 0)) throw new Error("leader election: retryPeriod must be positive");
  if (!(leaseDurationMs > renewDeadlineMs)) throw new Error("leader election: leaseDuration must be greater than renewDeadline");
  if (!(renewDeadlineMs > JITTER_FACTOR * retryPeriodMs)) throw new Error(`leader election: renewDeadline must be greater than ${JITTER_FACTOR} × retryPeriod`);
  const leaseSeconds = Math.ceil(leaseDurationMs / 1000);
  const collection = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
  const path = `${collection}/${encodeURIComponent(name)}`;
  const fields = { lease: `${namespace}/${name}`, identity };

  const counts = { acquired: 0, lost: 0, renewals: 0, errors: 0 };
  let started = false;
  let stopped = false;
  let stopping: Promise<void> | undefined;
  let leading = false;
  /** The Lease as last read or written: the next update goes at its resourceVersion. */
  let lease: Lease | undefined;
  /** The last record seen and when it was first seen so (our clock): what expiry is judged by. */
  let observed: { spec: LeaseSpec; raw: string; at: number } | undefined;
  /** When the write that last renewed the current term was sent. */
  let renewedAt = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  let inFlight: Promise<void> | undefined;
  /** Aborted when a term is lost, so a renewal still waiting cannot outlive it. */
  let termAbort = new AbortController();

  function call(what: string, fn: () => void) {
    try {
      fn();
    } catch (err) {
      log.error(`leader election: ${what} threw`, { ...fields, error: (err as Error).message });
    }
  }

  function observe(obj: Lease) {
    lease = obj;
    const s = obj.spec ?? {};
    const raw = JSON.stringify([s.holderIdentity ?? "", s.leaseDurationSeconds ?? 0, s.acquireTime ?? "", s.renewTime ?? "", s.leaseTransitions ?? 0]);
    if (observed?.raw === raw) return;
    if ((observed?.spec.holderIdentity ?? "") !== (s.holderIdentity ?? "") && s.holderIdentity && s.holderIdentity !== identity)
      log.info("leader election: lease held by another replica", { ...fields, holder: s.holderIdentity });
    observed = { spec: s, raw, at: now() };
  }

  /** Whether the observed record is still in force at `t`. A record without a duration gets ours: waiting is the safe side. */
  function observedValid(t: number): boolean {
    if (!observed) return false;
    const seconds = observed.spec.leaseDurationSeconds || leaseSeconds;
    return observed.at + seconds * 1000 > t;
  }

  async function update(spec: LeaseSpec, signal: AbortSignal): Promise<void> {
    const body: Lease = { ...lease!, apiVersion: "coordination.k8s.io/v1", kind: "Lease", spec };
    observe(await client.request<Lease>("PUT", path, { body, signal }));
  }

  /** client-go's tryAcquireOrRenew. Throws on a failed request (a 409 included: someone else wrote first). */
  async function tryAcquireOrRenew(signal: AbortSignal): Promise<Attempt> {
    const sentAt = now();
    const stamp = microTime(sentAt);
    // Fast path: a leader updates the lease it last wrote, without reading it first.
    if (leading && lease) {
      try {
        await update({ ...lease.spec, holderIdentity: identity, leaseDurationSeconds: leaseSeconds, renewTime: stamp }, signal);
        return { ours: true, sentAt };
      } catch (err) {
        // Changed since (by us, by another, or by someone editing labels): read it and see.
        if (!isConflict(err)) throw err;
      }
    }
    let current: Lease;
    try {
      current = await client.request<Lease>("GET", path, { signal });
    } catch (err) {
      if (!(err instanceof KubeApiError && err.status === 404)) throw err;
      const created = await client.request<Lease>("POST", collection, {
        body: {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name, namespace },
          spec: { holderIdentity: identity, leaseDurationSeconds: leaseSeconds, acquireTime: stamp, renewTime: stamp, leaseTransitions: 0 },
        },
        signal,
      });
      observe(created);
      return { ours: true, sentAt };
    }
    observe(current);
    const spec = current.spec ?? {};
    const holder = spec.holderIdentity ?? "";
    if (holder !== "" && holder !== identity && observedValid(now())) return { ours: false, holder };
    await update(
      holder === identity
        ? { ...spec, holderIdentity: identity, leaseDurationSeconds: leaseSeconds, renewTime: stamp }
        : { holderIdentity: identity, leaseDurationSeconds: leaseSeconds, acquireTime: stamp, renewTime: stamp, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 },
      signal,
    );
    return { ours: true, sentAt };
  }

  function endTerm(reason: string) {
    if (!leading) return;
    leading = false;
    clearTimeout(deadlineTimer);
    termAbort.abort(new Error(`leadership lost: ${reason}`));
    termAbort = new AbortController();
    counts.lost++;
    log.warn("leader election: stopped leading", { ...fields, reason });
    call("onStoppedLeading", opts.onStoppedLeading);
  }

  function armDeadline() {
    clearTimeout(deadlineTimer);
    deadlineTimer = setTimeout(
      () => {
        if (!leading || stopped) return;
        // A clock that has not moved as far as the timer (a test's `now`) is asked again later.
        if (now() - renewedAt >= renewDeadlineMs) endTerm(`no renewal within renewDeadline (${renewDeadlineMs} ms)`);
        else armDeadline();
      },
      Math.max(0, renewedAt + renewDeadlineMs - now()),
    );
  }

  async function step(): Promise<void> {
    const wasLeading = leading;
    let result: Attempt | undefined;
    try {
      const signal = AbortSignal.any([termAbort.signal, AbortSignal.timeout(renewDeadlineMs)]);
      result = await tryAcquireOrRenew(signal);
    } catch (err) {
      if (isConflict(err)) log.debug("leader election: lost a race to write the lease", { ...fields, error: (err as Error).message });
      else {
        counts.errors++;
        log.warn(`leader election: ${wasLeading ? "renewing" : "acquiring"} the lease failed`, { ...fields, error: (err as Error).message });
      }
    }
    // stop() ends the term and releases what this step may have written.
    if (stopped) return;
    if (result?.ours && now() - result.sentAt < renewDeadlineMs) {
      renewedAt = result.sentAt;
      if (leading) counts.renewals++;
      else if (!wasLeading) {
        leading = true;
        counts.acquired++;
        log.info("leader election: started leading", fields);
        call("onStartedLeading", opts.onStartedLeading);
      }
      if (leading) armDeadline();
    } else if (result && !result.ours && leading) {
      endTerm(`lease taken by ${result.holder}`);
    }
    // A term lost while this step ran is taken up again by the next attempt, not by this one's answer.
    schedule(leading ? retryPeriodMs : retryPeriodMs * (1 + Math.random() * JITTER_FACTOR));
  }

  function schedule(ms: number) {
    if (stopped) return;
    timer = setTimeout(() => {
      timer = undefined;
      const run = step().finally(() => {
        if (inFlight === run) inFlight = undefined;
      });
      inFlight = run;
    }, ms);
  }

  async function release(): Promise<void> {
    for (let attempt = 0; attempt < 2 && lease?.spec?.holderIdentity === identity; attempt++) {
      const t = microTime(now());
      try {
        // client-go's ReleaseOnCancel record: no holder, and a 1 s lease should an old reader still care.
        await update({ holderIdentity: "", leaseDurationSeconds: 1, acquireTime: t, renewTime: t, leaseTransitions: lease.spec.leaseTransitions ?? 0 }, AbortSignal.timeout(renewDeadlineMs));
        log.info("leader election: released the lease", fields);
        return;
      } catch (err) {
        if (isConflict(err) && attempt === 0) {
          // Changed since we wrote it: release it only if it is still ours.
          try {
            observe(await client.request<Lease>("GET", path, { signal: AbortSignal.timeout(renewDeadlineMs) }));
            continue;
          } catch (getErr) {
            err = getErr;
          }
        }
        counts.errors++;
        log.warn("leader election: releasing the lease failed; another replica takes over when it expires", { ...fields, error: (err as Error).message });
        return;
      }
    }
  }

  return {
    start() {
      if (started || stopped) return;
      started = true;
      schedule(0);
    },
    stop() {
      if (stopping) return stopping;
      stopped = true;
      stopping = (async () => {
        clearTimeout(timer);
        clearTimeout(deadlineTimer);
        if (leading) {
          leading = false;
          log.info("leader election: stopped leading", { ...fields, reason: "stopped" });
          call("onStoppedLeading", opts.onStoppedLeading);
        }
        // An attempt under way may yet make the lease ours: let it finish (its requests time out), then release.
        await inFlight;
        await release();
      })();
      return stopping;
    },
    isLeader: () => leading,
    stats: () => ({ ...counts }),
  };
}
