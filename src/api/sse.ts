/**
 * Server-Sent Events for one session: stored events first (after Last-Event-ID), then live ones,
 * each with `id:`; keep-alive comments; the stream ends right after `session.status_closed`.
 * Live events are buffered while the replay runs, so none is lost or sent twice.
 */
import { EventType, type SessionEvent } from "../domain/session";
import type { SessionService } from "../service/sessions";
import { sessionKey } from "../service/topics";

const encoder = new TextEncoder();
const frame = (e: SessionEvent) => encoder.encode(`id: ${e.id}\ndata: ${JSON.stringify({ type: e.type, content: e.content, timestamp: e.timestamp })}\n\n`);

export function sseResponse(sessions: SessionService, namespace: string, name: string, lastEventId: number, keepAliveMs = 15_000): Response {
  let cleanup = () => {};
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      let last = lastEventId;
      let replaying = true;
      let closed = false;
      const buffered: SessionEvent[] = [];
      const close = () => {
        if (closed) return;
        closed = true;
        cleanup();
        controller.close();
      };
      const write = (e: SessionEvent) => {
        if (closed || e.id <= last) return;
        last = e.id;
        controller.enqueue(frame(e));
        if (e.type === EventType.StatusClosed) close();
      };
      const unsubscribe = sessions.topics.sessionEvent.subscribeKey(sessionKey(namespace, name), ({ event: e }) => (replaying ? buffered.push(e) : write(e)));
      const timer = setInterval(() => !closed && controller.enqueue(encoder.encode(": keep-alive\n\n")), keepAliveMs);
      cleanup = () => {
        unsubscribe();
        clearInterval(timer);
      };
      controller.enqueue(encoder.encode("retry: 2000\n\n"));
      const replay = (stored: SessionEvent[]) => {
        for (const e of stored) write(e);
        replaying = false;
        for (const e of buffered) write(e);
      };
      const stored = sessions.events(namespace, name, { after: last });
      // The local store answers at once; a shared database later (live events are buffered meanwhile).
      if (stored instanceof Promise)
        stored.then(replay, (err) => {
          if (closed) return;
          closed = true;
          cleanup();
          controller.error(err);
        });
      else replay(stored);
    },
    cancel() {
      cleanup();
    },
  });
  return new Response(stream, {
    headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive", "x-accel-buffering": "no" },
  });
}
