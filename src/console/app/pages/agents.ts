/**
 * Agents: one row per agent the token may see (namespace, name, models, triggers, Ready, sessions
 * in the last 24 h), refreshed every 5 s. The 24-hour counts come from the sessions list.
 */
import type { Agent, Auth } from "../api";
import { listAgents, listSessions, readyOf, webhooksOf } from "../data";
import { agentHref, sessionsHref } from "../routes";
import { Empty, ErrorNote, h, Link, useLoad } from "../ui";

const DAY = 24 * 3600_000;

/** Short words for an agent's triggers: "webhook", with what it checks. */
export function triggerWords(a: Agent): string[] {
  return webhooksOf(a).map((w) => {
    const checks = [w.githubSignatureSecret ? "GitHub signature" : "", w.linearSignatureSecret ? "Linear signature" : "", w.allowCIDRs?.length ? "CIDR" : ""].filter(Boolean);
    return checks.length ? `webhook (${checks.join(", ")})` : "webhook";
  });
}

export function AgentsPage({ auth }: { auth: Auth }) {
  const agents = useLoad((signal) => listAgents(auth, signal), [auth.token], 5000);
  const counts = useLoad(
    async (signal) => {
      const { sessions, more } = await listSessions(auth, { since: Date.now() - DAY }, { pageSize: 1000, maxPages: 10, signal });
      const by = new Map<string, number>();
      for (const s of sessions) by.set(`${s.namespace}/${s.agentDefinition}`, (by.get(`${s.namespace}/${s.agentDefinition}`) ?? 0) + 1);
      return { by, more };
    },
    [auth.token],
    5000,
  );
  const list = agents.data;
  return h(
    "section",
    null,
    h("h1", null, "Agents"),
    h(ErrorNote, { error: agents.error }),
    !list
      ? agents.error
        ? null
        : h("p", { class: "muted" }, "Loading…")
      : !list.length
        ? h(Empty, null, "No agents yet. Apply one with ", h("code", null, "pai apply -f agent.yaml"), " or kubectl.")
        : h(
            "table",
            { class: "list", id: "agents" },
            h("thead", null, h("tr", null, ["Namespace", "Name", "Models", "Triggers", "Ready", "Sessions (24 h)"].map((c) => h("th", { key: c }, c)))),
            h(
              "tbody",
              null,
              list.map((a) => {
                const ready = readyOf(a);
                const n = counts.data?.by.get(`${a.metadata.namespace}/${a.metadata.name}`) ?? 0;
                return h(
                  "tr",
                  { key: a.metadata.uid, "data-agent": `${a.metadata.namespace}/${a.metadata.name}` },
                  h("td", null, a.metadata.namespace),
                  h("td", null, h(Link, { href: agentHref(a.metadata.namespace, a.metadata.name), class: "strong" }, a.metadata.name)),
                  h("td", { class: "mono" }, a.spec.models.join(", ")),
                  h("td", null, triggerWords(a).join("; ") || h("span", { class: "muted" }, "none")),
                  h("td", null, h("span", { class: `badge ${ready?.status === "True" ? "ok" : ready?.status === "False" ? "bad" : "off"}`, title: ready ? `${ready.reason}: ${ready.message}` : "" }, ready?.status ?? "Unknown")),
                  h(
                    "td",
                    { class: "num" },
                    counts.data ? h(Link, { href: sessionsHref({ namespace: a.metadata.namespace, agent: a.metadata.name, since: "24h" }) }, `${n}${counts.data.more ? "+" : ""}`) : "…",
                  ),
                );
              }),
            ),
          ),
  );
}
