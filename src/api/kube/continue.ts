/**
 * `continue` tokens of paged lists (`limit` + `continue`). A token holds where the next page starts
 * and which list it belongs to, sealed with AES-256-GCM under a key made when the server starts:
 * callers cannot read it (a session's position in the global order stays private) nor forge or
 * alter it. A token that does not open is 410 Expired (it may come from before a restart: list
 * again), one that is not even shaped like a token is 400.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { BadRequestError, ExpiredError } from "../../domain/errors";

const KEY = randomBytes(32);
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Tokens are small (a list's name and a position); anything longer is not one of ours. */
const MAX_TOKEN_CHARS = 1024;

export interface ContinuePosition {
  /** Which list: the resource and the namespace scope ("" for all namespaces). */
  list: string;
  /** Where the next page starts: after this key (namespace, name), or before this sequence number. */
  after: (string | number)[];
}

export function sealContinue(p: ContinuePosition): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", KEY, iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(p), "utf8"), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString("base64url");
}

/** Opens a token for `list`; throws 400 (malformed, another list) or 410 (does not open). */
export function openContinue(token: string, list: string): ContinuePosition {
  if (token.length > MAX_TOKEN_CHARS || !/^[A-Za-z0-9_-]+$/.test(token)) throw new BadRequestError("continue: not a continue token this server made (use the metadata.continue of a list response)");
  const bytes = Buffer.from(token, "base64url");
  if (bytes.length <= IV_BYTES + TAG_BYTES) throw new BadRequestError("continue: not a continue token this server made (use the metadata.continue of a list response)");
  let text: string;
  try {
    const decipher = createDecipheriv("aes-256-gcm", KEY, bytes.subarray(0, IV_BYTES));
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    text = Buffer.concat([decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]).toString("utf8");
  } catch {
    throw new ExpiredError("the provided continue parameter is too old or was not made by this server (it restarted?): start a new list without continue");
  }
  // Sealed by us, so well-formed; checked anyway, as everything decoded is.
  const p = JSON.parse(text) as ContinuePosition;
  if (typeof p?.list !== "string" || !Array.isArray(p.after)) throw new BadRequestError("continue: not a continue token this server made");
  if (p.list !== list) throw new BadRequestError("continue: this token belongs to another list (another resource or namespace); continue the list it came from");
  return p;
}
