/**
 * The console's event stream reader: the SSE parser against the format's corner cases, and
 * followStream against a real server on loopback that drops the connection mid-stream: it
 * reconnects with Last-Event-ID, passes no event twice, stops after the closing event, on 204,
 * and on a refusal (which retrying cannot fix). The token goes in the Authorization header only.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { SseParser, followStream } from "../../src/console/app/sse";
import type { SessionEvent } from "../../src/console/app/api";

describe("SseParser", () => {
  test("fields, multi-line data, comments, every line ending, chunks split anywhere", () => {
    const stream = "retry: 2000\n\n: keep-alive\n\nid: 1\ndata: {\"a\":1}\n\nid: 2\r\nevent: x\r\ndata: line1\r\ndata: line2\r\n\r\nid: 3\rdata:no-space\r\r";
    // Fed one character at a time: a \r\n split between chunks is still one line ending.
    const p = new SseParser();
    const got = [...stream].flatMap((c) => p.push(c));
    expect(got).toEqual([
      { id: "1", event: "message", data: '{"a":1}' },
      { id: "2", event: "x", data: "line1\nline2" },
      { id: "3", event: "message", data: "no-space" },
    ]);
    expect(p.retryMs).toBe(2000);
    expect(p.lastEventId).toBe("3");
  });

  test("a block without data is no message; an incomplete one waits for its blank line", () => {
    const p = new SseParser();
    expect(p.push("id: 7\n\n")).toEqual([]);
    expect(p.lastEventId).toBe("7");
    expect(p.push("data: half")).toEqual([]);
    expect(p.push("\n")).toEqual([]);
    expect(p.push("\n")).toEqual([{ event: "message", data: "half" }]);
  });
});

const frame = (id: number, type: string, content: unknown = {}) => `id: ${id}\ndata: ${JSON.stringify({ type, content, timestamp: "2026-01-01T00:00:00Z" })}\n\n`;

describe("followStream", () => {
  const seen: { auth: string | null; lastEventId: string | null; url: string }[] = [];
  let mode: "drop" | "gone" | "forbidden" = "drop";
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      seen.push({ auth: req.headers.get("authorization"), lastEventId: req.headers.get("last-event-id"), url: req.url });
      if (mode === "gone") return new Response(null, { status: 204 });
      if (mode === "forbidden") return Response.json({ kind: "Status", code: 403, message: 'this token is for namespace "a", not "b"' }, { status: 403 });
      const enc = new TextEncoder();
      if (seen.length === 1)
        // The first connection: two events, then the connection breaks without the closing event.
        return new Response(
          new ReadableStream({
            start(c) {
              c.enqueue(enc.encode(`retry: 30\n\n${frame(1, "session.status_running")}${frame(2, "agent.message", { text: "hi" })}`));
              // The reader may have gone already (the abort test): closing then is a no-op, not an error.
              setTimeout(() => {
                try {
                  c.close();
                } catch {}
              }, 20);
            },
          }),
          { headers: { "content-type": "text/event-stream" } },
        );
      // The resumed one: the server repeats event 2 (the reader must not pass it on again), then closes.
      return new Response(`${frame(2, "agent.message", { text: "hi" })}${frame(3, "session.status_closed", { phase: "Complete" })}`, { headers: { "content-type": "text/event-stream" } });
    },
  });
  afterAll(() => server.stop(true));
  const url = `http://127.0.0.1:${server.port}/agents/s1/stream?namespace=default`;

  test("a dropped stream resumes with Last-Event-ID; no event twice; ends after the closing event", async () => {
    const events: SessionEvent[] = [];
    const states: string[] = [];
    const errors: unknown[] = [];
    await followStream("tok-123", url, { onEvent: (e) => events.push(e), onState: (s) => states.push(s), onError: (e) => errors.push(e) }, new AbortController().signal);
    expect(events.map((e) => [e.id, e.type])).toEqual([
      [1, "session.status_running"],
      [2, "agent.message"],
      [3, "session.status_closed"],
    ]);
    expect(states).toEqual(["connecting", "live", "reconnecting", "live", "ended"]);
    expect(errors).toEqual([]);
    expect(seen.map((s) => s.lastEventId)).toEqual([null, "2"]);
    expect(seen.every((s) => s.auth === "Bearer tok-123" && !s.url.includes("tok-123"))).toBe(true);
  });

  test("204 (nothing more to read) ends it; a refusal is reported, not retried", async () => {
    mode = "gone";
    const states: string[] = [];
    await followStream("t", url, { onEvent: () => {}, onState: (s) => states.push(s), onError: () => {} }, new AbortController().signal, "9");
    expect(states.at(-1)).toBe("ended");
    expect(seen.at(-1)!.lastEventId).toBe("9");

    mode = "forbidden";
    const before = seen.length;
    const errors: { status: number; message: string }[] = [];
    await followStream("t", url, { onEvent: () => {}, onState: () => {}, onError: (e) => errors.push(e) }, new AbortController().signal);
    expect(errors.map((e) => [e.status, e.message])).toEqual([[403, 'this token is for namespace "a", not "b"']]);
    expect(seen.length).toBe(before + 1);
  });

  test("aborting stops it", async () => {
    mode = "drop";
    seen.length = 0;
    const ctrl = new AbortController();
    const events: SessionEvent[] = [];
    const done = followStream("t", url, { onEvent: (e) => (events.push(e), e.id === 2 && ctrl.abort()), onState: () => {}, onError: () => {} }, ctrl.signal);
    await done;
    expect(events.map((e) => e.id)).toEqual([1, 2]);
    expect(seen.length).toBe(1);
  });
});
