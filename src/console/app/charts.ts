/**
 * Small SVG bar charts drawn here (no chart library): one bar per minute, series side by side or
 * stacked, a y-axis maximum, and a <title> per bar for the exact figures. Colours come from the
 * stylesheet, by class, so the page needs no inline style.
 */
import { h } from "./ui";

export interface Series {
  name: string;
  /** A class of the stylesheet (s-started, c-2xx …). */
  cls: string;
  values: number[];
}

const W = 1000;
const H = 170;
const LEFT = 30;
const BOTTOM = 16;

/** A rounded-up axis maximum: 1, 2, 5, 10, 20, 50 … */
export function niceMax(n: number): number {
  if (n <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 5, 10]) if (m * p >= n) return m * p;
  return 10 * p;
}

export function BarChart(props: { labels: string[]; series: Series[]; stacked?: boolean; label: string }) {
  const { labels, series, stacked } = props;
  const n = labels.length;
  const totals = labels.map((_, i) => (stacked ? series.reduce((s, x) => s + (x.values[i] ?? 0), 0) : Math.max(0, ...series.map((x) => x.values[i] ?? 0))));
  const max = niceMax(Math.max(0, ...totals));
  const plotW = W - LEFT;
  const plotH = H - BOTTOM;
  const slot = plotW / Math.max(1, n);
  const y = (v: number) => plotH - (v / max) * (plotH - 4);
  const bars = labels.flatMap((label, i) => {
    const x0 = LEFT + i * slot;
    if (stacked) {
      let base = 0;
      return series.flatMap((s) => {
        const v = s.values[i] ?? 0;
        if (!v) return [];
        const top = base + v;
        const rect = h("rect", { key: `${i}-${s.name}`, class: s.cls, x: x0 + 1, width: Math.max(1, slot - 2), y: y(top), height: y(base) - y(top) }, h("title", null, `${label} · ${s.name}: ${v}`));
        base = top;
        return [rect];
      });
    }
    const w = Math.max(1, (slot - 2) / series.length);
    return series.flatMap((s, j) => {
      const v = s.values[i] ?? 0;
      if (!v) return [];
      return [h("rect", { key: `${i}-${s.name}`, class: s.cls, x: x0 + 1 + j * w, width: w, y: y(v), height: plotH - y(v) }, h("title", null, `${label} · ${s.name}: ${v}`))];
    });
  });
  const ticks = [0, Math.floor(n / 2), n - 1].filter((i, k, all) => i >= 0 && all.indexOf(i) === k);
  return h(
    "svg",
    { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": props.label },
    h("line", { class: "axis", x1: LEFT, x2: W, y1: plotH, y2: plotH }),
    h("line", { class: "grid", x1: LEFT, x2: W, y1: y(max), y2: y(max) }),
    h("text", { class: "tick", x: LEFT - 4, y: y(max) + 4, "text-anchor": "end" }, String(max)),
    h("text", { class: "tick", x: LEFT - 4, y: plotH, "text-anchor": "end" }, "0"),
    ...bars,
    ...ticks.map((i) => h("text", { key: `t${i}`, class: "tick", x: LEFT + i * slot + slot / 2, y: H - 3, "text-anchor": i === 0 ? "start" : i === n - 1 ? "end" : "middle" }, labels[i] ?? "")),
  );
}

export function Legend(props: { series: { name: string; cls: string; total: number }[] }) {
  return h(
    "ul",
    { class: "legend" },
    props.series.map((s) => h("li", { key: s.name }, h("span", { class: `swatch ${s.cls}` }), `${s.name} `, h("b", null, String(s.total)))),
  );
}
