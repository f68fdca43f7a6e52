/**
 * Webhook bodies as senders send them, bytes to value: JSON (any charset, `+json` types, and
 * text/plain, which some tools put on JSON) or forms (GitHub's `payload=…`, curl's `-d '{…}'`
 * labelled as a form). Nesting is checked before anything is parsed.
 */
import { BadRequestError, UnsupportedMediaTypeError } from "../domain/errors";
import { jsonTooDeep, MAX_NESTING } from "../lib/nesting";

/** The media type of a Content-Type header, lower-cased, without parameters. */
function mediaType(contentType: string | null): string {
  if (contentType === "application/json") return contentType; // what nearly every sender sends
  return (contentType ?? "").split(";")[0]!.trim().toLowerCase();
}

/** Stateless between calls (no `stream`), so one serves every request without a charset. */
const utf8 = new TextDecoder("utf-8");

/** Bytes → text by the declared charset (UTF-8 when none is given; a byte-order mark is dropped). */
export function decodeText(contentType: string | null, bytes: Uint8Array): string {
  const charset = contentType?.includes(";") ? /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType)?.[1] : undefined;
  if (charset === undefined) return utf8.decode(bytes);
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(charset);
  } catch {
    throw new UnsupportedMediaTypeError(`charset ${JSON.stringify(charset)} is not supported: send UTF-8 (or another charset the WHATWG Encoding standard names)`);
  }
  return decoder.decode(bytes);
}

function parseJson(text: string, what = "request body"): unknown {
  // Checked before parsing: 40 KB of brackets nested 20,000 deep would cost seconds and hundreds of MB.
  if (jsonTooDeep(text)) throw new BadRequestError(`${what} is nested more than ${MAX_NESTING} levels deep`);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BadRequestError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * Reads a body the way senders send it: JSON (any charset, +json types, and text/plain, which some
 * tools put on JSON), or forms; an empty body is `{}`.
 */
export function parseBody(contentType: string | null, raw: Uint8Array): unknown {
  const type = mediaType(contentType);
  const isJson = type === "application/json" || type.endsWith("+json") || type === "text/json" || type === "text/plain" || type === "";
  const isForm = type === "application/x-www-form-urlencoded";
  if (!isJson && !isForm) throw new UnsupportedMediaTypeError(`Content-Type ${type} is not supported: send application/json or application/x-www-form-urlencoded`);
  const text = decodeText(contentType, raw).trim();
  if (!text) return {};
  // `curl -d '{"title": …}'` without -H sends JSON labelled as a form: read it as the JSON it is.
  if (isJson || text.startsWith("{") || text.startsWith("[")) return parseJson(text);
  const form = new URLSearchParams(text);
  // GitHub's "application/x-www-form-urlencoded" deliveries carry the JSON event in `payload`.
  const payload = form.get("payload");
  if (payload !== null && [...form.keys()].length === 1) return parseJson(payload, "form field payload");
  const out: Record<string, unknown> = {};
  for (const [k, v] of form) {
    if (k === "wait") out[k] = /^\d+$/.test(v) ? Number(v) : v === "true" ? true : v === "false" || v === "" ? false : v;
    else if (k === "env") {
      try {
        out[k] = parseJson(v, "form field env");
      } catch {
        throw new BadRequestError('form field env must be JSON: [{"name": …, "value": …}]');
      }
    } else out[k] = v;
  }
  return out;
}
