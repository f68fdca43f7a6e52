/**
 * The webhook benchmark's load generator, run as its own Bun process (`bun bench/load.ts`) so it
 * never shares an event loop with the server it measures. It opens `--connections` keep-alive
 * HTTP/1.1 connections to a loopback URL and POSTs the same JSON body on each in a closed loop
 * (one request outstanding per connection): `--warmup` seconds untimed, then `--duration` seconds
 * counted, then it stops sending and waits for the answers still on the way. It prints one JSON
 * line (LoadResult) on stdout.
 *
 * Two clients, `--client raw|fetch`:
 * - raw (the default): `Bun.connect` sockets writing a pre-built request and reading the answer by
 *   its Content-Length (or chunked framing). Exactly `--connections` connections, each carrying
 *   one request at a time, so the server sees precisely the load asked for.
 * - fetch: `--connections` loops awaiting Bun's `fetch`. Its keep-alive pool does open one socket
 *   per loop (64 established connections at the server, counted with `ss`), but the client costs
 *   more CPU per request: against bench/bare-webhook.ts on 2 CPUs, raw ~110k 200s/s (p50 0.5 ms),
 *   fetch ~70k/s (p50 0.85 ms). The generator shares the machine with the server, so the cheaper
 *   client is also the more faithful one; raw is what bench/webhooks.ts uses.
 */

export interface LoadResult {
  client: "raw" | "fetch";
  connections: number;
  /** The counted window, in seconds (as measured). */
  seconds: number;
  /** 200 answers completed inside the counted window, and their rate. */
  ok: number;
  rate: number;
  /** Latency of those answers, ms (send to complete answer). */
  p50: number;
  p99: number;
  /** Every 200 received during warm-up, window and drain: each one is an accepted request. */
  okTotal: number;
  /** Answers other than 200 (whole run), by status, and transport errors. */
  statuses: Record<string, number>;
  errors: number;
  /** The first non-200 answer's body, to say why. */
  firstError?: string;
}

interface Options {
  url: URL;
  connections: number;
  warmupMs: number;
  durationMs: number;
  body: string;
  client: "raw" | "fetch";
  drainMs: number;
}

function parseArgs(argv: string[]): Options {
  const get = (name: string, fallback?: string) => {
    const i = argv.indexOf(`--${name}`);
    const v = i >= 0 ? argv[i + 1] : fallback;
    if (v === undefined) throw new Error(`--${name} is required`);
    return v;
  };
  const client = get("client", "raw");
  if (client !== "raw" && client !== "fetch") throw new Error("--client takes raw or fetch");
  const url = new URL(get("url"));
  if (url.protocol !== "http:") throw new Error("only http: URLs");
  return {
    url,
    connections: Number(get("connections", "64")),
    warmupMs: Number(get("warmup", "1")) * 1000,
    durationMs: Number(get("duration", "5")) * 1000,
    body: get("body", '{"title":"Analyse Q1 results"}'),
    client,
    drainMs: Number(get("drain", "10")) * 1000,
  };
}

/** Counts and timings shared by both clients. */
function recorder(opts: Options) {
  const t0 = performance.now();
  const from = t0 + opts.warmupMs;
  const until = from + opts.durationMs;
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let ok = 0;
  let okTotal = 0;
  let errors = 0;
  let firstError: string | undefined;
  return {
    /** True while new requests may be sent. */
    sending: () => performance.now() < until,
    done(status: number, sentAt: number, body: () => string) {
      const now = performance.now();
      if (status === 200) {
        okTotal++;
        if (now >= from && now < until) {
          ok++;
          latencies.push(now - sentAt);
        }
      } else {
        statuses[status] = (statuses[status] ?? 0) + 1;
        firstError ??= `HTTP ${status}: ${body().slice(0, 300)}`;
      }
    },
    error(err: unknown) {
      errors++;
      firstError ??= String((err as Error)?.message ?? err);
    },
    result(): LoadResult {
      const seconds = opts.durationMs / 1000;
      const sorted = latencies.sort((a, b) => a - b);
      const pct = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]! : NaN);
      return { client: opts.client, connections: opts.connections, seconds, ok, rate: ok / seconds, p50: pct(50), p99: pct(99), okTotal, statuses, errors, firstError };
    },
  };
}

type Recorder = ReturnType<typeof recorder>;

// ---- raw sockets ------------------------------------------------------------------------------

const CRLFCRLF = Buffer.from("\r\n\r\n");

/**
 * One HTTP/1.1 response from the front of `buf`, or null if it is not complete yet. Handles
 * Content-Length and chunked bodies (Bun.serve sends Content-Length for these answers).
 */
function takeResponse(buf: Buffer): { status: number; body: Buffer; rest: Buffer } | null {
  const headEnd = buf.indexOf(CRLFCRLF);
  if (headEnd < 0) return null;
  const head = buf.toString("latin1", 0, headEnd);
  const status = Number(head.slice(9, 12));
  const start = headEnd + 4;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  if (length) {
    const end = start + Number(length[1]);
    if (buf.length < end) return null;
    return { status, body: buf.subarray(start, end), rest: buf.subarray(end) };
  }
  if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
    const parts: Buffer[] = [];
    let at = start;
    for (;;) {
      const lineEnd = buf.indexOf("\r\n", at);
      if (lineEnd < 0) return null;
      const size = parseInt(buf.toString("latin1", at, lineEnd), 16);
      const dataEnd = lineEnd + 2 + size;
      if (buf.length < dataEnd + 2) return null;
      if (size === 0) return { status, body: Buffer.concat(parts), rest: buf.subarray(dataEnd + 2) };
      parts.push(buf.subarray(lineEnd + 2, dataEnd));
      at = dataEnd + 2;
    }
  }
  if (status === 204 || status === 304) return { status, body: Buffer.alloc(0), rest: buf.subarray(start) };
  throw new Error(`response without Content-Length or chunked framing:\n${head}`);
}

async function runRaw(opts: Options, rec: Recorder): Promise<void> {
  const path = opts.url.pathname + opts.url.search;
  const body = Buffer.from(opts.body);
  const request = Buffer.concat([
    Buffer.from(`POST ${path} HTTP/1.1\r\nHost: ${opts.url.host}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`, "latin1"),
    body,
  ]);
  const port = Number(opts.url.port || 80);

  /** One connection's closed loop; resolves when it has stopped sending and its last answer came. */
  const connection = () =>
    new Promise<void>((resolve) => {
      let buf: Buffer = Buffer.alloc(0);
      let sentAt = 0;
      let pending: Buffer | null = null; // the unsent tail of a partial write
      let finished = false;
      const finish = (socket?: { end(): void }) => {
        if (finished) return;
        finished = true;
        socket?.end();
        resolve();
      };
      const send = (socket: { write(b: Buffer): number }) => {
        sentAt = performance.now();
        const n = socket.write(request);
        pending = n < request.length ? request.subarray(Math.max(0, n)) : null;
      };
      Bun.connect({
        hostname: opts.url.hostname,
        port,
        socket: {
          open(socket) {
            socket.setNoDelay(true);
            if (rec.sending()) send(socket);
            else finish(socket);
          },
          drain(socket) {
            if (!pending) return;
            const n = socket.write(pending);
            pending = n < pending.length ? pending.subarray(Math.max(0, n)) : null;
          },
          data(socket, chunk) {
            buf = buf.length ? Buffer.concat([buf, chunk]) : Buffer.from(chunk);
            let res;
            try {
              res = takeResponse(buf);
            } catch (err) {
              rec.error(err);
              return finish(socket);
            }
            if (!res) return;
            buf = res.rest;
            rec.done(res.status, sentAt, () => res.body.toString());
            if (rec.sending()) send(socket);
            else finish(socket);
          },
          close() {
            if (!finished) rec.error(new Error("the server closed a connection"));
            finish();
          },
          error(_socket, err) {
            rec.error(err);
            finish();
          },
          connectError(_socket, err) {
            rec.error(err);
            finish();
          },
        },
      }).catch((err) => {
        rec.error(err);
        finish();
      });
    });

  await Promise.all(Array.from({ length: opts.connections }, connection));
}

// ---- fetch ------------------------------------------------------------------------------------

async function runFetch(opts: Options, rec: Recorder): Promise<void> {
  const url = opts.url.href;
  const init = { method: "POST", headers: { "content-type": "application/json" }, body: opts.body } as const;
  await Promise.all(
    Array.from({ length: opts.connections }, async () => {
      while (rec.sending()) {
        const sentAt = performance.now();
        try {
          const res = await fetch(url, init);
          const text = await res.text();
          rec.done(res.status, sentAt, () => text);
        } catch (err) {
          rec.error(err);
          await Bun.sleep(10);
        }
      }
    }),
  );
}

// ---- main -------------------------------------------------------------------------------------

if (import.meta.main) {
  const opts = parseArgs(process.argv.slice(2));
  const rec = recorder(opts);
  const run = opts.client === "raw" ? runRaw(opts, rec) : runFetch(opts, rec);
  // A server that stops answering must not hang the benchmark: give up `drainMs` after the window.
  const give = setTimeout(() => {
    rec.error(new Error(`answers still missing ${opts.drainMs} ms after the window ended`));
    process.stdout.write(JSON.stringify(rec.result()) + "\n");
    process.exit(3);
  }, opts.warmupMs + opts.durationMs + opts.drainMs);
  await run;
  clearTimeout(give);
  process.stdout.write(JSON.stringify(rec.result()) + "\n");
  process.exit(0);
}
