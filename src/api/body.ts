/**
 * Reading request bodies that anonymous callers send: at most `maxBytes` each (413 beyond, also for
 * chunked bodies that announce no length), and at most `budget` bytes of bodies being read or
 * decoded at once across the whole server (503 + Retry-After beyond), so many slow or large
 * requests cannot together exhaust memory.
 */
import { BadRequestError, PayloadTooLargeError, ServiceUnavailableError } from "../domain/errors";

/** Bytes of request bodies the server holds at once; every reader reserves before it reads. */
export class BodyBudget {
  private used = 0;
  constructor(readonly limit: number) {}

  get inUse() {
    return this.used;
  }

  tryReserve(n: number): boolean {
    if (this.used + n > this.limit) return false;
    this.used += n;
    return true;
  }

  release(n: number) {
    this.used = Math.max(0, this.used - n);
  }
}

export const BODY_RETRY_AFTER_SECONDS = 2;

const busy = () =>
  new ServiceUnavailableError("the server is reading too many request bodies at once; nothing was accepted, retry shortly", BODY_RETRY_AFTER_SECONDS);
const tooLarge = (max: number) => new PayloadTooLargeError(`request body is larger than ${max} bytes (--max-body-bytes)`);

/**
 * The body's bytes. The reservation is held until `release` is called, so a caller keeps it for
 * as long as it holds the body (and what it decodes from it).
 */
export async function readBody(request: Request, maxBytes: number, budget: BodyBudget): Promise<{ bytes: Uint8Array; release: () => void }> {
  let reserved = 0;
  const release = () => {
    budget.release(reserved);
    reserved = 0;
  };
  const declared = request.headers.get("content-length");
  if (declared !== null) {
    const n = Number(declared);
    if (Number.isFinite(n) && n > maxBytes) throw tooLarge(maxBytes);
    // The common case (a length announced, within the cap): reserve it all, then read in one go.
    if (Number.isInteger(n) && n >= 0) {
      if (!budget.tryReserve(n)) throw busy();
      reserved = n;
      try {
        const bytes = await request.bytes();
        if (bytes.byteLength > maxBytes) throw tooLarge(maxBytes);
        return { bytes, release };
      } catch (err) {
        release();
        if (err instanceof PayloadTooLargeError) throw err;
        throw new BadRequestError("request body could not be read completely");
      }
    }
  }
  if (!request.body) return { bytes: new Uint8Array(0), release };
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of request.body as unknown as AsyncIterable<Uint8Array>) {
      total += chunk.byteLength;
      if (total > maxBytes) throw tooLarge(maxBytes);
      if (!budget.tryReserve(chunk.byteLength)) throw busy();
      reserved += chunk.byteLength;
      chunks.push(chunk);
    }
  } catch (err) {
    release();
    if (err instanceof PayloadTooLargeError || err instanceof ServiceUnavailableError) throw err;
    // The runtime cut the stream (its own size cap, or the client went away mid-body).
    throw total >= maxBytes ? tooLarge(maxBytes) : new BadRequestError("request body could not be read completely");
  }
  if (chunks.length === 1) return { bytes: chunks[0]!, release };
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  return { bytes, release };
}
