/**
 * How deep does a JSON or YAML text nest? Checked on the raw text before parsing, because parsing
 * (and later serialising) a body of 40 KB of brackets nested 20,000 deep costs seconds and
 * hundreds of MB; the scan is one pass over the characters with no allocation.
 */

/** Nesting allowed in request bodies and manifests: deep enough for any real event payload. */
export const MAX_NESTING = 64;

const OPEN_BRACE = 0x7b; // {
const OPEN_BRACKET = 0x5b; // [
const CLOSE_BRACE = 0x7d; // }
const CLOSE_BRACKET = 0x5d; // ]
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \

/**
 * True when the JSON text opens more than `max` objects/arrays inside each other. Brackets inside
 * strings do not count. Works on malformed text too (it only over-counts, never under-counts).
 */
export function jsonTooDeep(text: string, max = MAX_NESTING): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
      continue;
    }
    if (c === QUOTE) inString = true;
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > max) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth--;
  }
  return false;
}

/**
 * True when flow collections (`{`/`[`) in a YAML text nest deeper than `max`. Block nesting is
 * bounded by indentation (each level costs at least one character per line), flow nesting is not;
 * quoted scalars and comments are skipped. An over-estimate on odd input is fine: the caller only
 * refuses what is absurdly deep.
 */
export function yamlFlowTooDeep(text: string, max = MAX_NESTING): boolean {
  let depth = 0;
  let quote = 0;
  let comment = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (comment) {
      if (c === 0x0a) comment = false;
      continue;
    }
    if (quote) {
      if (quote === QUOTE && c === BACKSLASH) i++;
      else if (c === quote) quote = 0;
      continue;
    }
    if (c === QUOTE || c === 0x27 /* ' */) {
      // A quote only opens a scalar at the start of a token; "it's" inside plain text does not.
      const prev = i > 0 ? text.charCodeAt(i - 1) : 0x20;
      if (prev === 0x20 || prev === 0x0a || prev === 0x09 || prev === OPEN_BRACE || prev === OPEN_BRACKET || prev === 0x2c || prev === 0x3a || prev === 0x2d) quote = c;
    } else if (c === 0x23 /* # */ && (i === 0 || /\s/.test(text[i - 1]!))) comment = true;
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > max) return true;
    } else if ((c === CLOSE_BRACE || c === CLOSE_BRACKET) && depth > 0) depth--;
  }
  return false;
}
