/** Output for humans (tables, describe-style lines) and for programs (-o yaml|json). */
import { stringify } from "yaml";
import { CliError } from "./client";

export type OutputFormat = "table" | "yaml" | "json";

export function outputFormat(value: unknown): OutputFormat {
  if (value === undefined) return "table";
  if (value === "yaml" || value === "json") return value;
  throw new CliError(`-o must be yaml or json (got "${String(value)}")`, 2);
}

export function printObject(obj: unknown, format: "yaml" | "json") {
  process.stdout.write(format === "json" ? JSON.stringify(obj, null, 2) + "\n" : stringify(obj, { lineWidth: 0 }));
}

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 3))).join("").trimEnd();
  return [line(headers), ...rows.map(line)].join("\n") + "\n";
}

/** `5s`, `3m`, `2h`, `4d`, as kubectl shows ages. */
export function age(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** `Label value` lines with labels padded to one column, so `Webhook URL <url>` reads as one line. */
export function describe(pairs: [string, string | undefined][]): string {
  const shown = pairs.filter(([, v]) => v !== undefined) as [string, string][];
  const width = Math.max(...shown.map(([k]) => k.length));
  return shown.map(([k, v]) => `${k.padEnd(width)} ${v}`).join("\n") + "\n";
}
