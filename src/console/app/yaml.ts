/**
 * JSON values as YAML, for showing an agent read-only (`kubectl get -o yaml` style). A few dozen
 * lines instead of a YAML library in the bundle: the console only ever writes YAML, and only
 * plain data. Strings that could read as anything else (numbers, booleans, null, indicators) are
 * double-quoted, JSON style, which YAML reads back as the same string; multi-line strings that
 * allow it are literal blocks.
 */

const PLAIN = /^[A-Za-z0-9_./$][A-Za-z0-9_ ./@$:,()+=\-]*$/;
const RESERVED = /^(?:true|false|yes|no|on|off|y|n|null|~|[-+]?(?:\d[\d_]*(?:\.\d*)?(?:e[-+]?\d+)?|\.\d+(?:e[-+]?\d+)?|\.inf|\.nan|0x[0-9a-f]+|0o[0-7]+))$/i;

function plainOk(s: string): boolean {
  return PLAIN.test(s) && !RESERVED.test(s) && !s.endsWith(" ") && !s.endsWith(":") && !s.includes(": ") && !s.includes(" #");
}

export function scalar(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : v > 0 ? ".inf" : v < 0 ? "-.inf" : ".nan";
  if (typeof v === "boolean") return String(v);
  const s = String(v);
  return plainOk(s) ? s : JSON.stringify(s);
}

/** A literal block for a multi-line string, or undefined when one cannot hold it exactly. */
function block(s: string, pad: string): string[] | undefined {
  if (!s.includes("\n") || /[\u0000-\u0008\u000b-\u001f\u007f\u0085\u2028\u2029\ufeff]/.test(s) || /[ \t]\n|[ \t]$/.test(s)) return undefined;
  const body = s.replace(/\n+$/, "");
  const trailing = s.length - body.length;
  // The first line with content decides the indentation: one starting with a space or tab, or no content at all, would be misread.
  if (!body || /^\n*[ \t]/.test(body)) return undefined;
  const head = trailing === 0 ? "|-" : trailing === 1 ? "|" : "|+";
  const lines = (trailing > 1 ? s.slice(0, -1) : body).split("\n");
  return [head, ...lines.map((l) => (l ? pad + l : ""))];
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function lines(v: unknown, indent: number): string[] {
  const pad = " ".repeat(indent);
  if (Array.isArray(v)) {
    if (!v.length) return [`${pad}[]`];
    return v.flatMap((item) => {
      if ((isMap(item) && Object.keys(item).length) || (Array.isArray(item) && item.length)) {
        const inner = lines(item, indent + 2);
        return [`${pad}- ${inner[0]!.slice(indent + 2)}`, ...inner.slice(1)];
      }
      if (typeof item === "string") {
        const b = block(item, `${pad}  `);
        if (b) return [`${pad}- ${b[0]}`, ...b.slice(1)];
      }
      return [`${pad}- ${inlineValue(item)}`];
    });
  }
  if (isMap(v)) {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined);
    if (!entries.length) return [`${pad}{}`];
    return entries.flatMap(([k, x]) => {
      const key = `${pad}${scalar(k)}:`;
      if ((isMap(x) && Object.keys(x).length) || (Array.isArray(x) && x.length)) return [key, ...lines(x, indent + 2)];
      if (typeof x === "string") {
        const b = block(x, `${pad}  `);
        if (b) return [`${key} ${b[0]}`, ...b.slice(1)];
      }
      return [`${key} ${inlineValue(x)}`];
    });
  }
  return [`${pad}${scalar(v)}`];
}

const inlineValue = (v: unknown) => (Array.isArray(v) ? "[]" : isMap(v) ? "{}" : scalar(v));

export function toYaml(value: unknown): string {
  return `${lines(value, 0).join("\n")}\n`;
}
