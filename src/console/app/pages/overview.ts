/**
 * Overview: running and pending sessions now, and the last hour per minute (sessions started and
 * finished, webhook answers by code), from GET /apis/pai.io/v1/overview, refreshed every 5 s.
 */
import { getJson, type Auth, type Overview as OverviewData } from "../api";
import { BarChart, Legend, type Series } from "../charts";
import { ErrorNote, h, useLoad } from "../ui";

const KNOWN_CODES = new Set(["200", "202", "400", "401", "403", "404", "413", "415", "429", "503"]);
/** A code's colour class: its own for the usual ones, else its class (2xx, 4xx, 5xx). */
export const codeSeriesClass = (code: string) => (KNOWN_CODES.has(code) ? `c-${code}` : `c-${code[0]}xx`);

const minuteLabel = (iso: string, i: number, n: number) => (i === n - 1 ? "now" : `-${n - 1 - i}m`);

export function OverviewPage({ auth }: { auth: Auth }) {
  const { data, error } = useLoad((signal) => getJson<OverviewData>(auth.token, "/apis/pai.io/v1/overview", { signal }), [auth.token], 5000);
  if (!data) return h("section", null, h("h1", null, "Overview"), error ? h(ErrorNote, { error }) : h("p", { class: "muted" }, "Loading…"));
  const minutes = data.minutes;
  const labels = minutes.map((m, i) => minuteLabel(m.start, i, minutes.length));
  const started = minutes.map((m) => m.sessionsStarted);
  const finished = minutes.map((m) => m.sessionsFinished);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const codes = [...new Set(minutes.flatMap((m) => Object.keys(m.answers)))].sort();
  const answerSeries: Series[] = codes.map((code) => ({ name: code, cls: codeSeriesClass(code), values: minutes.map((m) => m.answers[code] ?? 0) }));
  const sessionSeries: Series[] = [
    { name: "started", cls: "s-started", values: started },
    { name: "finished", cls: "s-finished", values: finished },
  ];
  const stat = (label: string, value: number, id: string) => h("div", { class: "stat", id }, h("span", { class: "value" }, String(value)), h("span", { class: "label" }, label));
  return h(
    "section",
    { class: "overview" },
    h("h1", null, "Overview"),
    h(ErrorNote, { error }),
    h(
      "div",
      { class: "stats" },
      stat("running", data.running, "stat-running"),
      stat("pending", data.pending, "stat-pending"),
      stat("started in the last hour", sum(started), "stat-started"),
      stat("webhook requests in the last hour", sum(answerSeries.map((s) => sum(s.values))), "stat-webhooks"),
    ),
    h(
      "div",
      { class: "card chart-card" },
      h("h2", null, "Sessions per minute"),
      h(BarChart, { labels, series: sessionSeries, label: "Sessions started and finished per minute over the last hour" }),
      h(Legend, { series: sessionSeries.map((s) => ({ name: s.name, cls: s.cls, total: sum(s.values) })) }),
    ),
    h(
      "div",
      { class: "card chart-card" },
      h("h2", null, "Webhook answers by code"),
      h(BarChart, { labels, series: answerSeries, stacked: true, label: "Webhook answers per minute by HTTP status code over the last hour" }),
      answerSeries.length ? h(Legend, { series: answerSeries.map((s) => ({ name: s.name, cls: s.cls, total: sum(s.values) })) }) : h("p", { class: "muted" }, "No webhook requests in the last hour."),
    ),
    h("p", { class: "muted small" }, "From the same counters as /metrics, counted by this server since it started; refreshed every 5 s."),
  );
}
