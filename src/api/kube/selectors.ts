/**
 * Label and field selectors with Kubernetes' grammar (`kubectl get -l`, `--field-selector`).
 *
 * Labels: requirements joined by commas, each `key`, `!key`, `key=value`, `key==value`,
 * `key!=value`, `key in (a,b)`, `key notin (a,b)`, `key>N`, `key<N`. Keys are qualified names
 * (`prefix/name`), values label values, both checked as Kubernetes checks them.
 * Fields: terms joined by commas, each `field=value`, `field==value` or `field!=value`, with `\,`,
 * `\=` and `\\` escapes; which fields are supported is the resource's choice.
 *
 * Every parse is linear in the input and bounded in size; bad input is a 400 naming the problem.
 */
import { BadRequestError } from "../../domain/errors";

export const MAX_SELECTOR_LENGTH = 4096;
const MAX_REQUIREMENTS = 100;

export type LabelOp = "exists" | "!exists" | "=" | "!=" | "in" | "notin" | ">" | "<";
export interface LabelRequirement {
  key: string;
  op: LabelOp;
  values: string[];
}
export type LabelSelector = LabelRequirement[];

const NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Why `key` is not a label key (`[prefix/]name`), or null. */
export function labelKeyProblem(key: string): string | null {
  const slash = key.indexOf("/");
  const [prefix, name] = slash === -1 ? [undefined, key] : [key.slice(0, slash), key.slice(slash + 1)];
  if (prefix !== undefined && (!prefix || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix)))
    return `"${key}": the prefix before '/' must be a DNS subdomain (lower-case letters, digits, '-' and '.')`;
  if (!name || name.length > 63 || !NAME.test(name))
    return `"${key}": a label key's name must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  return null;
}

/** Why `value` is not a label value, or null. */
export function labelValueProblem(value: string): string | null {
  if (value === "") return null;
  if (value.length > 63 || !NAME.test(value))
    return `"${value}": a label value must be empty or at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  return null;
}

type Token = { kind: "id"; text: string } | { kind: "op"; text: "!" | "=" | "==" | "!=" | "(" | ")" | "," | ">" | "<" };

function lex(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      i++;
      continue;
    }
    const two = input.slice(i, i + 2);
    if (two === "==" || two === "!=") {
      tokens.push({ kind: "op", text: two });
      i += 2;
      continue;
    }
    if ("!=(),<>".includes(c)) {
      tokens.push({ kind: "op", text: c as "!" });
      i++;
      continue;
    }
    let j = i;
    while (j < input.length && !" \t\n\r!=(),<>".includes(input[j]!)) j++;
    tokens.push({ kind: "id", text: input.slice(i, j) });
    i = j;
  }
  return tokens;
}

const bad = (selector: string, why: string) => new BadRequestError(`unable to parse label selector "${selector.slice(0, 200)}": ${why}`);

/** Parses `labelSelector`; an empty selector matches everything. */
export function parseLabelSelector(input: string): LabelSelector {
  if (input.length > MAX_SELECTOR_LENGTH) throw new BadRequestError(`labelSelector is longer than ${MAX_SELECTOR_LENGTH} characters`);
  const tokens = lex(input);
  const out: LabelSelector = [];
  let i = 0;
  const peek = () => tokens[i];
  const describe = (t: Token | undefined) => (t ? `'${t.text}'` : "the end");
  const key = (): string => {
    const t = tokens[i++];
    if (t?.kind !== "id") throw bad(input, `expected a label key, found ${describe(t)}`);
    const problem = labelKeyProblem(t.text);
    if (problem) throw bad(input, problem);
    return t.text;
  };
  const value = (): string => {
    const t = peek();
    // `key=` (nothing after the operator) selects the empty value, as in Kubernetes.
    if (!t || (t.kind === "op" && t.text === ",")) return "";
    if (t.kind !== "id") throw bad(input, `expected a value, found ${describe(t)}`);
    i++;
    const problem = labelValueProblem(t.text);
    if (problem) throw bad(input, problem);
    return t.text;
  };
  while (i < tokens.length) {
    if (out.length >= MAX_REQUIREMENTS) throw bad(input, `more than ${MAX_REQUIREMENTS} requirements`);
    const first = peek()!;
    if (first.kind === "op" && first.text === "!") {
      i++;
      out.push({ key: key(), op: "!exists", values: [] });
    } else {
      const k = key();
      const op = peek();
      if (!op || (op.kind === "op" && op.text === ",")) out.push({ key: k, op: "exists", values: [] });
      else if (op.kind === "op" && (op.text === "=" || op.text === "==" || op.text === "!=")) {
        i++;
        out.push({ key: k, op: op.text === "!=" ? "!=" : "=", values: [value()] });
      } else if (op.kind === "op" && (op.text === ">" || op.text === "<")) {
        i++;
        const t = tokens[i++];
        if (t?.kind !== "id" || !/^-?\d{1,15}$/.test(t.text)) throw bad(input, `'${op.text}' needs a whole number, found ${describe(t)}`);
        out.push({ key: k, op: op.text, values: [t.text] });
      } else if (op.kind === "id" && (op.text === "in" || op.text === "notin")) {
        i++;
        if (tokens[i]?.text !== "(") throw bad(input, `expected '(' after '${op.text}', found ${describe(tokens[i])}`);
        i++;
        const values: string[] = [];
        for (;;) {
          if (values.length >= MAX_REQUIREMENTS) throw bad(input, `more than ${MAX_REQUIREMENTS} values in a set`);
          const t = peek();
          if (t?.kind === "op" && t.text === ")" && values.length === 0) break;
          if (t?.kind === "op" && t.text === ",") values.push("");
          else values.push(value());
          const sep = tokens[i++];
          if (sep?.text === ")") break;
          if (sep?.text !== ",") throw bad(input, `expected ',' or ')' in the set of '${k}', found ${describe(sep)}`);
          // `in (a,)`: a trailing comma ends with an empty value, as Kubernetes reads it.
          if (peek()?.text === ")") {
            values.push("");
            i++;
            break;
          }
        }
        if (!values.length) throw bad(input, `'${op.text}' needs at least one value`);
        out.push({ key: k, op: op.text, values });
      } else throw bad(input, `expected '=', '==', '!=', 'in', 'notin', '>' or '<' after '${k}', found ${describe(op)}`);
    }
    const sep = tokens[i];
    if (sep === undefined) break;
    if (sep.kind !== "op" || sep.text !== ",") throw bad(input, `expected ',' between requirements, found ${describe(sep)}`);
    i++;
    if (i === tokens.length) throw bad(input, "a trailing ',' with no requirement after it");
  }
  return out;
}

export function matchesLabels(selector: LabelSelector, labels: Record<string, string> | null | undefined): boolean {
  for (const r of selector) {
    const has = !!labels && Object.hasOwn(labels, r.key);
    const v = has ? labels![r.key]! : undefined;
    switch (r.op) {
      case "exists":
        if (!has) return false;
        break;
      case "!exists":
        if (has) return false;
        break;
      case "=":
      case "in":
        if (!has || !r.values.includes(v!)) return false;
        break;
      case "!=":
      case "notin":
        if (has && r.values.includes(v!)) return false;
        break;
      case ">":
      case "<": {
        if (!has || !/^-?\d{1,15}$/.test(v!)) return false;
        const n = Number(v);
        const bound = Number(r.values[0]);
        if (r.op === ">" ? !(n > bound) : !(n < bound)) return false;
      }
    }
  }
  return true;
}

export interface FieldRequirement {
  field: string;
  op: "=" | "!=";
  value: string;
}
export type FieldSelector = FieldRequirement[];

/** Splits on unescaped `sep`; escapes stay in the parts (unescaped later). */
function splitUnescaped(s: string, sep: string): string[] {
  const parts: string[] = [];
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "\\") i++;
    else if (s[i] === sep) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(s.slice(start));
  return parts;
}

function unescapeValue(v: string, input: string): string {
  let out = "";
  for (let i = 0; i < v.length; i++) {
    if (v[i] !== "\\") {
      out += v[i];
      continue;
    }
    const next = v[++i];
    if (next !== "\\" && next !== "," && next !== "=")
      throw new BadRequestError(`invalid field selector "${input.slice(0, 200)}": '\\' may only escape '\\', ',' or '=' (found ${next === undefined ? "the end" : `'\\${next}'`})`);
    out += next;
  }
  return out;
}

/** Parses `fieldSelector`; `supported` are the fields this resource may be selected by. */
export function parseFieldSelector(input: string, supported: readonly string[]): FieldSelector {
  if (input.length > MAX_SELECTOR_LENGTH) throw new BadRequestError(`fieldSelector is longer than ${MAX_SELECTOR_LENGTH} characters`);
  if (input.trim() === "") return [];
  const terms = splitUnescaped(input, ",");
  if (terms.length > MAX_REQUIREMENTS) throw new BadRequestError(`fieldSelector has more than ${MAX_REQUIREMENTS} terms`);
  return terms.map((term) => {
    // The first operator in the term splits it (`!=` and `==` before `=`), as Kubernetes reads it.
    const m = /^(.*?)(!=|==|=)(.*)$/s.exec(term);
    if (!m) throw new BadRequestError(`invalid field selector "${input.slice(0, 200)}": "${term.slice(0, 100)}" is not field=value, field==value or field!=value`);
    const field = m[1]!.trim();
    if (!supported.includes(field))
      throw new BadRequestError(`field label not supported: ${field.slice(0, 100)} (supported: ${supported.join(", ")})`);
    return { field, op: m[2] === "!=" ? "!=" : "=", value: unescapeValue(m[3]!, input) };
  });
}

export function matchesFields(selector: FieldSelector, get: (field: string) => string | undefined): boolean {
  for (const r of selector) {
    const v = get(r.field) ?? "";
    if (r.op === "=" ? v !== r.value : v === r.value) return false;
  }
  return true;
}
