/**
 * A Worker that polls a server's /readyz while the fuzz test runs, on its own thread and event loop,
 * so what it measures is the server's answer time, not the time the fuzzer's own thread spent
 * building request bodies. Started with {url}; answers "stop" with a ReadyzReport.
 */
declare const self: Worker;

export interface ReadyzReport {
  polls: number;
  /** Answers that were not 200 (a status, or the fetch error's message). */
  failures: string[];
  worstMs: number;
  /** When the worst answer was asked for, ms since the poller started. */
  worstAtMs: number;
  p99Ms: number;
}

const POLL_GAP_MS = 20;
/** An answer slower than this counts as a failure with this latency; far above any bound asserted. */
const GIVE_UP_MS = 15_000;

let stopping = false;
let url = "";
const latencies: number[] = [];
const failures: string[] = [];
let worst = 0;
let worstAt = 0;
const t0 = performance.now();

async function poll() {
  while (!stopping) {
    const start = performance.now();
    try {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(GIVE_UP_MS) });
      await res.arrayBuffer();
      if (res.status !== 200) failures.push(`status ${res.status}`);
    } catch (err) {
      failures.push((err as Error).message);
    }
    const ms = performance.now() - start;
    latencies.push(ms);
    if (ms > worst) {
      worst = ms;
      worstAt = start - t0;
    }
    await Bun.sleep(POLL_GAP_MS);
  }
}

let running: Promise<void> | undefined;
self.onmessage = async (event: MessageEvent) => {
  const msg = event.data as { start?: string; stop?: true };
  if (msg.start) {
    url = msg.start;
    running = poll();
    postMessage({ started: true });
  } else if (msg.stop) {
    stopping = true;
    await running;
    const sorted = [...latencies].sort((a, b) => a - b);
    const report: ReadyzReport = {
      polls: latencies.length,
      failures: failures.slice(0, 20),
      worstMs: Math.round(worst),
      worstAtMs: Math.round(worstAt),
      p99Ms: Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0),
    };
    postMessage({ report });
  }
};
