/**
 * Sessions: the newest sessions the token may see, filtered by namespace, agent, phase and age,
 * polled every 2 s, so new sessions appear and phases change without a reload. The filters are
 * in the address (shareable, kept on back/forward); the server filters agent and phase
 * (fieldSelector), the age is cut here from the newest-first list.
 */
import { useEffect, useState } from "preact/hooks";
import { isFinal, type Auth, type Session } from "../api";
import { listSessions } from "../data";
import { navigate, sessionHref, sessionsHref } from "../routes";
import { duration, Empty, ErrorNote, h, Link, PhaseBadge, Time, useLoad } from "../ui";

export const SINCE: Record<string, number | undefined> = { "15m": 15 * 60_000, "1h": 3600_000, "24h": 24 * 3600_000, "7d": 7 * 24 * 3600_000, all: undefined };
const PHASES = ["Pending", "Running", "Complete", "Error", "Cancelled"];
const PAGE = 100;

export const originWords = (s: Session) => (s.origin.kind === "webhook" ? `webhook${s.origin.sender && s.origin.sender !== "generic" ? ` (${s.origin.sender})` : ""}` : s.origin.kind);

export function sessionDuration(s: Session, now = Date.now()): string {
  if (!s.startedAt) return "";
  const end = s.finishedAt ? Date.parse(s.finishedAt) : isFinal(s.phase) ? NaN : now;
  return duration(end - Date.parse(s.startedAt));
}

export function SessionsPage({ auth, query }: { auth: Auth; query: URLSearchParams }) {
  const filters = {
    namespace: query.get("namespace") ?? "",
    agent: query.get("agent") ?? "",
    phase: query.get("phase") ?? "",
    since: query.get("since") ?? "all",
  };
  const [agentText, setAgentText] = useState(filters.agent);
  // Back and forward change the address, not the field: follow it.
  useEffect(() => setAgentText(filters.agent), [filters.agent]);
  const set = (patch: Partial<typeof filters>) => navigate(sessionsHref({ ...filters, ...patch, since: (patch.since ?? filters.since) === "all" ? undefined : (patch.since ?? filters.since) }), true);
  const key = JSON.stringify(filters);
  const list = useLoad(
    (signal) => {
      const window = SINCE[filters.since];
      return listSessions(auth, { namespace: filters.namespace || undefined, agent: filters.agent || undefined, phase: filters.phase || undefined, since: window ? Date.now() - window : undefined }, { pageSize: PAGE, maxPages: 1, signal });
    },
    [auth.token, key],
    2000,
  );
  const select = (id: string, label: string, value: string, options: [string, string][], onChange: (v: string) => void) =>
    h(
      "label",
      { for: id },
      label,
      h(
        "select",
        { id, value, onChange: (e: Event) => onChange((e.target as HTMLSelectElement).value) },
        options.map(([v, text]) => h("option", { key: v, value: v }, text)),
      ),
    );
  const sessions = list.data?.sessions;
  return h(
    "section",
    null,
    h("h1", null, "Sessions"),
    h(
      "form",
      {
        class: "filters",
        id: "session-filters",
        onSubmit: (e: Event) => {
          e.preventDefault();
          set({ agent: agentText.trim() });
        },
      },
      auth.admin || auth.namespaces.length > 1
        ? select("filter-namespace", "Namespace", filters.namespace, [["", "all"], ...auth.namespaces.map((n): [string, string] => [n, n])], (v) => set({ namespace: v }))
        : null,
      h(
        "label",
        { for: "filter-agent" },
        "Agent",
        h("input", { id: "filter-agent", value: agentText, placeholder: "any", onInput: (e: Event) => setAgentText((e.target as HTMLInputElement).value), onChange: () => set({ agent: agentText.trim() }) }),
      ),
      select("filter-phase", "Phase", filters.phase, [["", "any"], ...PHASES.map((p): [string, string] => [p, p])], (v) => set({ phase: v })),
      select("filter-since", "Created", filters.since, [["15m", "last 15 minutes"], ["1h", "last hour"], ["24h", "last 24 hours"], ["7d", "last 7 days"], ["all", "any time"]], (v) => set({ since: v })),
      h("span", { class: "live-dot", title: "Refreshed every 2 s" }, "live"),
    ),
    h(ErrorNote, { error: list.error }),
    !sessions
      ? list.error
        ? null
        : h("p", { class: "muted" }, "Loading…")
      : !sessions.length
        ? h(Empty, null, "No sessions match.")
        : h(
            "table",
            { class: "list", id: "sessions" },
            h("thead", null, h("tr", null, ["Session", "Namespace", "Agent", "Phase", "Origin", "Title", "Created", "Duration"].map((c) => h("th", { key: c }, c)))),
            h(
              "tbody",
              null,
              sessions.map((s) =>
                h(
                  "tr",
                  { key: `${s.namespace}/${s.session}`, "data-session": s.session },
                  h("td", null, h(Link, { href: sessionHref(s.namespace, s.session), class: "mono" }, s.session)),
                  h("td", null, s.namespace),
                  h("td", null, s.agentDefinition),
                  h("td", null, h(PhaseBadge, { phase: s.phase })),
                  h("td", null, originWords(s)),
                  h("td", { class: "title-cell", title: s.title.slice(0, 500) }, s.title.split("\n")[0]!.slice(0, 80)),
                  h("td", null, h(Time, { iso: s.createdAt })),
                  h("td", { class: "num" }, sessionDuration(s)),
                ),
              ),
            ),
          ),
    sessions && sessions.length >= PAGE ? h("p", { class: "muted small" }, `The newest ${PAGE} are shown; narrow the filters to see older ones.`) : null,
  );
}
