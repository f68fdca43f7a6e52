/** Durations as people write them in flags: `30d`, `12h`, `90m`, `45s`, or `0`. */

const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000 } as const;

/** Milliseconds, or undefined when `text` is not a whole number with a unit (d, h, m, s), or 0. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (/^0+$/.test(t)) return 0;
  const m = /^(\d{1,9})([dhms])$/.exec(t);
  if (!m) return undefined;
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

/** The largest whole unit that expresses `ms` exactly: 2592000000 → `30d`, 5400000 → `90m`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0";
  for (const [unit, size] of Object.entries(UNIT_MS)) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}
