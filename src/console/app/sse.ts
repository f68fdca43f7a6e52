/**
 * A session's events over Server-Sent Events, read with fetch(): EventSource cannot send an
 * Authorization header, and the token must not go in the URL. The parser follows the SSE rules
 * (any line ending, multi-line data, comments, id, retry); the reader reconnects with
 * Last-Event-ID, so a dropped connection resumes where it stopped, and stops after the closing
 * event (or on 204, the server's "nothing more").
 */
import { ApiError, type SessionEvent } from "./api";

export interface SseMessage {
  id?: string;
  event: string;
  data: string;
}

/** Turns chunks of an event stream into messages; feed it text as it arrives. */
export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private event = "";
  private id: string | undefined;
  /** The last id seen, kept across messages (what Last-Event-ID carries). */
  lastEventId = "";
  /** The latest `retry:` (milliseconds). */
  retryMs: number | undefined;

  /** The last chunk ended in \r: a \n starting the next one belongs to the same line ending. */
  private afterCR = false;

  push(chunk: string): SseMessage[] {
    if (this.afterCR && chunk.startsWith("\n")) chunk = chunk.slice(1);
    this.afterCR = false;
    this.buffer += chunk;
    const out: SseMessage[] = [];
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (c !== "\n" && c !== "\r") continue;
      this.line(this.buffer.slice(start, i), out);
      if (c === "\r" && i === this.buffer.length - 1) this.afterCR = true;
      else if (c === "\r" && this.buffer[i + 1] === "\n") i++;
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
    return out;
  }

  private line(line: string, out: SseMessage[]) {
    if (line === "") {
      if (this.data.length) out.push({ event: this.event || "message", data: this.data.join("\n"), ...(this.id !== undefined ? { id: this.id } : {}) });
      this.data = [];
      this.event = "";
      this.id = undefined;
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    else if (field === "id" && !value.includes("\0")) this.id = this.lastEventId = value;
    else if (field === "retry" && /^\d+$/.test(value)) this.retryMs = Number(value);
  }
}

export interface StreamHandlers {
  onEvent(e: SessionEvent): void;
  /** "live" once connected, "reconnecting" between attempts, "ended" after the closing event. */
  onState(state: "connecting" | "live" | "reconnecting" | "ended"): void;
  /** A failure that retrying cannot fix (401, 403, 404): the stream stops. */
  onError(err: ApiError): void;
}

const CLOSED = "session.status_closed";

const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });

/**
 * Follows `path` (GET /agents/{s}/stream?namespace=…) until the session's closing event, `signal`
 * aborts, or the server refuses. Events already delivered are never passed on twice.
 */
export async function followStream(token: string, path: string, handlers: StreamHandlers, signal: AbortSignal, lastEventId = ""): Promise<void> {
  let last = lastEventId;
  let retryMs = 2000;
  handlers.onState("connecting");
  while (!signal.aborted) {
    try {
      const res = await fetch(path, {
        headers: { authorization: `Bearer ${token}`, accept: "text/event-stream", ...(last ? { "last-event-id": last } : {}) },
        signal,
        cache: "no-store",
        credentials: "omit",
      });
      if (res.status === 204) return handlers.onState("ended");
      if (!res.ok || !res.body) {
        const message = ((await res.json().catch(() => ({}))) as { message?: string }).message ?? `${res.status} ${res.statusText}`;
        // Client errors will not go away by retrying; server errors may.
        if (res.status >= 400 && res.status < 500) return handlers.onError(new ApiError(res.status, message));
        throw new Error(message);
      }
      handlers.onState("live");
      const parser = new SseParser();
      const decoder = new TextDecoder();
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        const messages = parser.push(decoder.decode(value, { stream: true }));
        if (parser.retryMs !== undefined) retryMs = parser.retryMs;
        for (const m of messages) {
          const id = Number(m.id);
          if (!m.id || !Number.isSafeInteger(id) || (last && id <= Number(last))) continue;
          last = m.id;
          let parsed: { type?: unknown; content?: unknown; timestamp?: unknown };
          try {
            parsed = JSON.parse(m.data) as typeof parsed;
          } catch {
            continue;
          }
          handlers.onEvent({ id, type: String(parsed.type ?? ""), content: parsed.content, timestamp: String(parsed.timestamp ?? "") });
          if (parsed.type === CLOSED) {
            await reader.cancel().catch(() => {});
            return handlers.onState("ended");
          }
        }
      }
    } catch {
      if (signal.aborted) return;
    }
    handlers.onState("reconnecting");
    await pause(retryMs, signal);
  }
}
