/**
 * One agent: its webhook URL (masked until revealed; copy, reveal and rotation for the admin
 * token only), what the webhook checks (signatures, source ranges, allowed env), "Try it" (a
 * webhook body sent to the URL, as a sender would), the recent deliveries with the reason of
 * refused ones, and the agent as YAML with its status. The webhook token is never in the page
 * until "Reveal" is pressed: the masked form is built without it, and the YAML shows it masked.
 */
import { useEffect, useState } from "preact/hooks";
import { ApiError, getJson, request, seg, type Agent, type Auth, type Delivery, type List, type SecretValue, type WebhookTrigger } from "../api";
import { readyOf, webhooksOf } from "../data";
import { sessionHref, sessionsHref } from "../routes";
import { CodeBadge, Empty, ErrorNote, h, Link, Time, useLoad, type ComponentChildren } from "../ui";
import { toYaml } from "../yaml";

const BASE = "/apis/pai.io/v1";
const MASK = "••••••••••••••••";

/** The webhook URL with its token (the last path segment) replaced by dots. */
export function maskUrl(url: string): string {
  const cut = url.replace(/\/+$/, "").lastIndexOf("/");
  return cut < 0 ? MASK : `${url.slice(0, cut + 1)}${MASK}`;
}

const secretWords = (v: SecretValue | undefined) => (v === undefined ? undefined : typeof v === "string" ? "an inline value in the spec" : `Secret ${v.secretRef.name}, key ${v.secretRef.key}`);

/** The agent as shown in the YAML: the webhook token and inline signature secrets masked. */
export function shownAgent(a: Agent): Agent {
  const copy = structuredClone(a);
  if (copy.status?.webhookUrl) copy.status.webhookUrl = maskUrl(copy.status.webhookUrl);
  for (const t of copy.spec.triggers ?? []) {
    const w = t.webhook;
    if (!w) continue;
    if (typeof w.githubSignatureSecret === "string") w.githubSignatureSecret = MASK;
    if (typeof w.linearSignatureSecret === "string") w.linearSignatureSecret = MASK;
  }
  return copy;
}

export function AgentPage({ auth, namespace, name }: { auth: Auth; namespace: string; name: string }) {
  const path = `${BASE}/namespaces/${seg(namespace)}/agents/${seg(name)}`;
  const agent = useLoad((signal) => getJson<Agent>(auth.token, path, { signal }), [auth.token, path], 5000);
  const a = agent.data;
  if (!a) return h("section", null, h("h1", null, name), agent.error ? h(ErrorNote, { error: agent.error }) : h("p", { class: "muted" }, "Loading…"));
  const ready = readyOf(a);
  const hooks = webhooksOf(a);
  return h(
    "section",
    { class: "agent" },
    h(
      "header",
      { class: "page-head" },
      h("h1", null, h("span", { class: "muted" }, `${a.metadata.namespace} / `), a.metadata.name),
      h("span", { class: `badge ${ready?.status === "True" ? "ok" : ready?.status === "False" ? "bad" : "off"}`, title: ready?.message ?? "" }, ready?.status === "True" ? "Ready" : `Ready: ${ready?.status ?? "Unknown"}`),
      h(Link, { href: sessionsHref({ namespace: a.metadata.namespace, agent: a.metadata.name }), class: "button" }, "Sessions"),
    ),
    h(ErrorNote, { error: agent.error }),
    ready && ready.status !== "True" ? h("p", { class: "error" }, `${ready.reason}: ${ready.message}`) : null,
    hooks.length ? h(WebhookPanel, { auth, agent: a, onChanged: agent.reload }) : h("div", { class: "card" }, h("h2", null, "Webhook"), h(Empty, null, "This agent has no webhook trigger.")),
    hooks.map((w, i) => h(Checks, { key: i, w })),
    hooks.length && auth.admin && a.status?.webhookUrl ? h(TryIt, { url: a.status.webhookUrl, agent: a }) : null,
    hooks.length ? h(Deliveries, { auth, namespace: a.metadata.namespace, name: a.metadata.name }) : null,
    h("div", { class: "card" }, h("h2", null, "Definition"), h("pre", { class: "yaml", id: "agent-yaml" }, toYaml(shownAgent(a)))),
  );
}

function WebhookPanel({ auth, agent, onChanged }: { auth: Auth; agent: Agent; onChanged: () => void }) {
  const url = agent.status?.webhookUrl;
  const [revealed, setRevealed] = useState(false);
  const [note, setNote] = useState<string | undefined>(undefined);
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  // A new agent on the same page (navigation) starts masked again.
  useEffect(() => {
    setRevealed(false);
    setNote(undefined);
    setConfirming(false);
  }, [agent.metadata.uid]);

  async function copy() {
    if (!url) return;
    try {
      await navigator.clipboard.writeText(url);
      setNote("Copied to the clipboard.");
    } catch {
      // No clipboard here (plain http on another host is not a secure context): show it to copy by hand.
      setRevealed(true);
      setNote("The browser refused the clipboard here: select the URL and copy it.");
    }
  }

  async function rotate() {
    if (!url) return;
    setBusy(true);
    setError(undefined);
    const { namespace, name } = agent.metadata;
    try {
      await request(auth.token, `/api/v1/namespaces/${seg(namespace)}/secrets/${seg(`pai-webhook-${name}`)}`, { method: "DELETE" });
      // The controller makes a new token at once; wait (bounded) until the agent's status shows it.
      const deadline = Date.now() + 15_000;
      for (;;) {
        const now = await getJson<Agent>(auth.token, `${BASE}/namespaces/${seg(namespace)}/agents/${seg(name)}`);
        if (now.status?.webhookUrl && now.status.webhookUrl !== url) break;
        if (Date.now() > deadline) throw new Error("the token was deleted but no new URL appeared within 15 s; reload the page");
        await new Promise((r) => setTimeout(r, 250));
      }
      setNote("Rotated: the old URL now answers 401. Give senders the new one.");
      setConfirming(false);
      onChanged();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  const shown = url ? (revealed && auth.admin ? url : maskUrl(url)) : "";
  return h(
    "div",
    { class: "card", id: "webhook" },
    h("h2", null, "Webhook URL"),
    !url
      ? h("p", { class: "muted" }, "No URL yet: the controller has not made this agent's webhook secret (see Ready above).")
      : h(
          "div",
          { class: "url-row" },
          h("input", { id: "webhook-url", class: "mono", readOnly: true, value: shown, "aria-label": "Webhook URL", onFocus: (e: Event) => revealed && (e.target as HTMLInputElement).select() }),
          auth.admin ? h("button", { id: "reveal", type: "button", onClick: () => setRevealed(!revealed) }, revealed ? "Hide" : "Reveal") : null,
          auth.admin ? h("button", { id: "copy", type: "button", onClick: copy }, "Copy") : null,
          auth.admin ? h("button", { id: "rotate", type: "button", class: "danger", onClick: () => setConfirming(true), disabled: confirming }, "Rotate token") : null,
        ),
    auth.admin ? null : h("p", { class: "muted small" }, "The token in this URL is the credential: only the admin token can reveal, copy or rotate it."),
    note ? h("p", { class: "notice", role: "status" }, note) : null,
    confirming
      ? h(
          "div",
          { class: "confirm", role: "alertdialog", id: "rotate-confirm" },
          h("p", null, h("b", null, "Rotate the webhook token? "), "The current URL stops working at once (401): every sender must be given the new URL."),
          h("button", { type: "button", class: "danger", id: "rotate-yes", onClick: rotate, disabled: busy }, busy ? "Rotating…" : "Rotate"),
          h("button", { type: "button", onClick: () => setConfirming(false), disabled: busy }, "Cancel"),
        )
      : null,
    h(ErrorNote, { error }),
  );
}

function Checks({ w }: { w: WebhookTrigger }) {
  const row = (label: string, value: ComponentChildren) => h("tr", null, h("th", null, label), h("td", null, value));
  const none = (text: string) => h("span", { class: "muted" }, text);
  return h(
    "div",
    { class: "card", id: "webhook-checks" },
    h("h2", null, "What the webhook checks"),
    h(
      "table",
      { class: "facts" },
      h(
        "tbody",
        null,
        row("GitHub signature", secretWords(w.githubSignatureSecret) ? `required (X-Hub-Signature-256), from ${secretWords(w.githubSignatureSecret)}` : none("not checked")),
        row("Linear signature", secretWords(w.linearSignatureSecret) ? `required (Linear-Signature), from ${secretWords(w.linearSignatureSecret)}` : none("not checked")),
        row("Source addresses", w.allowCIDRs?.length ? w.allowCIDRs.join(", ") : none("any address")),
        row("Env callers may set", w.allowedEnv?.length ? w.allowedEnv.join(", ") : none("any name not on the deny list")),
        row("Waiting sessions at most", w.maxPending !== undefined ? String(w.maxPending) : none("the server's default")),
      ),
    ),
  );
}

interface EnvRow {
  name: string;
  value: string;
}

function TryIt({ url, agent }: { url: string; agent: Agent }) {
  const [title, setTitle] = useState("");
  const [env, setEnv] = useState<EnvRow[]>([]);
  const [wait, setWait] = useState(true);
  const [seconds, setSeconds] = useState("60");
  const [busy, setBusy] = useState(false);
  const [answer, setAnswer] = useState<{ status: number; body: string; session?: string } | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);

  async function send(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    setAnswer(undefined);
    const body: Record<string, unknown> = { title };
    const rows = env.filter((r) => r.name.trim());
    if (rows.length) body.env = rows.map((r) => ({ name: r.name.trim(), value: r.value }));
    if (wait) body.wait = Number(seconds) || true;
    try {
      // The URL may name another host (localhost vs 127.0.0.1): its path, on this origin, is the same webhook.
      const res = await fetch(new URL(url).pathname, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), credentials: "omit", cache: "no-store" });
      const text = await res.text();
      let pretty = text;
      let session: string | undefined;
      try {
        const json = JSON.parse(text) as { session?: unknown };
        pretty = JSON.stringify(json, null, 2);
        if (typeof json.session === "string") session = json.session;
      } catch {
        // Not JSON: shown as it came.
      }
      setAnswer({ status: res.status, body: pretty, session });
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  const setRow = (i: number, patch: Partial<EnvRow>) => setEnv(env.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  return h(
    "form",
    { class: "card tryit", id: "try-it", onSubmit: send },
    h("h2", null, "Try it"),
    h("p", { class: "muted small" }, "Sends a webhook body to this agent's URL, as a sender would, and shows the answer."),
    h("label", { for: "try-title" }, "Title (the prompt)"),
    h("textarea", { id: "try-title", rows: 3, value: title, onInput: (e: Event) => setTitle((e.target as HTMLTextAreaElement).value), required: true }),
    h("div", { class: "env-rows" }, [
      ...env.map((r, i) =>
        h(
          "div",
          { class: "env-row", key: i },
          h("input", { class: "mono env-name", placeholder: "NAME", value: r.name, "aria-label": "Variable name", onInput: (e: Event) => setRow(i, { name: (e.target as HTMLInputElement).value }) }),
          h("input", { class: "mono env-value", placeholder: "value", value: r.value, "aria-label": "Variable value", onInput: (e: Event) => setRow(i, { value: (e.target as HTMLInputElement).value }) }),
          h("button", { type: "button", onClick: () => setEnv(env.filter((_, j) => j !== i)), "aria-label": "Remove variable" }, "✕"),
        ),
      ),
      h("button", { type: "button", key: "add", id: "try-add-env", class: "link", onClick: () => setEnv([...env, { name: "", value: "" }]) }, "+ environment variable"),
    ]),
    h(
      "label",
      { class: "inline" },
      h("input", { type: "checkbox", id: "try-wait", checked: wait, onChange: (e: Event) => setWait((e.target as HTMLInputElement).checked) }),
      " Wait for the reply, up to ",
      h("input", { type: "number", id: "try-seconds", min: 1, max: 600, value: seconds, disabled: !wait, onInput: (e: Event) => setSeconds((e.target as HTMLInputElement).value) }),
      " s",
    ),
    h("div", null, h("button", { type: "submit", class: "primary", id: "try-send", disabled: busy || !title.trim() }, busy ? (wait ? "Waiting for the reply…" : "Sending…") : "Send")),
    error ? h("p", { class: "error" }, error) : null,
    answer
      ? h(
          "div",
          { class: "answer", id: "try-answer" },
          h("p", null, "Answer ", h(CodeBadge, { code: answer.status }), answer.session ? [" · ", h(Link, { href: sessionHref(agent.metadata.namespace, answer.session), key: "s" }, `session ${answer.session}`)] : null),
          h("pre", { class: "json" }, answer.body),
        )
      : null,
  );
}

function Deliveries({ auth, namespace, name }: { auth: Auth; namespace: string; name: string }) {
  const path = `${BASE}/namespaces/${seg(namespace)}/agents/${seg(name)}/deliveries?limit=50`;
  const log = useLoad((signal) => getJson<List<Delivery>>(auth.token, path, { signal }), [auth.token, path], 3000);
  const missing = log.error instanceof ApiError && log.error.status === 404 && /no route/i.test(log.error.message);
  const items = log.data?.items;
  return h(
    "div",
    { class: "card", id: "deliveries" },
    h("h2", null, "Recent deliveries"),
    missing ? h("p", { class: "muted" }, "This server keeps no delivery log.") : h(ErrorNote, { error: log.error }),
    !items
      ? log.error
        ? null
        : h("p", { class: "muted" }, "Loading…")
      : !items.length
        ? h(Empty, null, "No deliveries yet.")
        : h(
            "table",
            { class: "list" },
            h("thead", null, h("tr", null, ["Time", "Sender", "Delivery", "Answer", "Session", "Reason"].map((c) => h("th", { key: c }, c)))),
            h(
              "tbody",
              null,
              items.map((d, i) =>
                h(
                  "tr",
                  { key: `${d.time}-${i}`, "data-code": String(d.code), class: d.code >= 400 ? "refused" : "" },
                  h("td", { class: "nowrap" }, h(Time, { iso: d.time })),
                  h("td", { class: "nowrap" }, d.sender, d.event ? h("span", { class: "muted" }, ` · ${d.event}`) : null),
                  h("td", { class: "mono small" }, d.delivery ?? h("span", { class: "muted" }, "–")),
                  h("td", null, h(CodeBadge, { code: d.code })),
                  h("td", { class: "nowrap" }, d.session ? h(Link, { href: sessionHref(namespace, d.session) }, d.session) : h("span", { class: "muted" }, "–")),
                  h("td", { class: "reason" }, d.reason ?? ""),
                ),
              ),
            ),
          ),
  );
}
