/**
 * One session: what started it, its phase, duration and token usage, the timeline of its events as
 * they stream (fetch-read SSE with Last-Event-ID on reconnect), the final response, the files it
 * left (downloaded through fetch and a blob, so the token stays in a header), and Cancel / Re-run.
 */
import { useEffect, useState } from "preact/hooks";
import { getJson, isFinal, request, seg, type Auth, type Session, type SessionEvent, type SessionFile } from "../api";
import { navigate, agentHref, sessionHref } from "../routes";
import { followStream } from "../sse";
import { timeline, type TimelineItem } from "../timeline";
import { bytes, Empty, ErrorNote, h, Link, localTime, Markdown, PhaseBadge, Time, useLoad, type ComponentChildren } from "../ui";
import { originWords, sessionDuration } from "./sessions";

type StreamState = "connecting" | "live" | "reconnecting" | "ended";

export function SessionPage({ auth, namespace, name }: { auth: Auth; namespace: string; name: string }) {
  const q = `?namespace=${seg(namespace)}`;
  const base = `/agents/${seg(name)}`;
  const [events, setEvents] = useState<SessionEvent[]>([]);
  const [stream, setStream] = useState<StreamState>("connecting");
  const [streamError, setStreamError] = useState<unknown>(undefined);
  const [actionError, setActionError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const session = useLoad((signal) => getJson<Session>(auth.token, `${base}${q}`, { signal }), [auth.token, base, q], 2000);
  const s = session.data;
  const final = !!s && isFinal(s.phase);

  useEffect(() => {
    setEvents([]);
    setStreamError(undefined);
    const ctrl = new AbortController();
    followStream(
      auth.token,
      `${base}/stream${q}`,
      {
        onEvent: (e) => {
          setEvents((prev) => [...prev, e]);
          // The phase in the header follows the stream at once, not the next poll.
          if (e.type === "session.status_running") session.reload();
        },
        onState: (state) => {
          setStream(state);
          if (state === "ended") session.reload();
        },
        onError: setStreamError,
      },
      ctrl.signal,
    );
    return () => ctrl.abort();
  }, [auth.token, base, q]);

  const files = useLoad((signal) => getJson<{ files: SessionFile[]; truncated: boolean }>(auth.token, `${base}/files${q}`, { signal }), [auth.token, base, q, final]);

  async function act(what: "cancel" | "rerun") {
    setBusy(true);
    setActionError(undefined);
    try {
      const res = await request(auth.token, `${base}/${what}${q}`, { method: "POST" });
      const next = (await res.json()) as Session;
      if (what === "rerun") navigate(sessionHref(next.namespace, next.session));
      else session.reload();
    } catch (err) {
      setActionError(err);
    } finally {
      setBusy(false);
    }
  }

  async function download(f: SessionFile) {
    setActionError(undefined);
    try {
      const res = await request(auth.token, `${base}/files/${f.path.split("/").map(seg).join("/")}${q}`, { headers: { accept: "*/*" } });
      const href = URL.createObjectURL(await res.blob());
      const a = document.createElement("a");
      a.href = href;
      a.download = f.path.split("/").pop() || "download";
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(href), 30_000);
    } catch (err) {
      setActionError(err);
    }
  }

  if (!s) return h("section", null, h("h1", { class: "mono" }, name), session.error ? h(ErrorNote, { error: session.error }) : h("p", { class: "muted" }, "Loading…"));
  const items = timeline(events);
  const fact = (label: string, value: ComponentChildren) => h("tr", null, h("th", null, label), h("td", null, value));
  const usage = s.usage;
  return h(
    "section",
    { class: "session" },
    h(
      "header",
      { class: "page-head" },
      h("h1", { class: "mono" }, s.session),
      h(PhaseBadge, { phase: s.phase }),
      h("span", { class: "spacer" }),
      !final ? h("button", { type: "button", class: "danger", id: "cancel", onClick: () => act("cancel"), disabled: busy }, "Cancel") : null,
      h("button", { type: "button", id: "rerun", onClick: () => act("rerun"), disabled: busy, title: "A new session of the same agent with the same title, env and payload" }, "Re-run"),
    ),
    h(ErrorNote, { error: actionError }),
    h(
      "div",
      { class: "card" },
      h(
        "table",
        { class: "facts" },
        h(
          "tbody",
          null,
          fact("Agent", [h(Link, { href: agentHref(s.namespace, s.agentDefinition), key: "a" }, s.agentDefinition), h("span", { class: "muted", key: "n" }, ` in ${s.namespace}`)]),
          fact("Started by", [originWords(s), s.origin.event ? ` · ${s.origin.event}` : "", s.origin.delivery ? h("span", { class: "mono small", key: "d" }, ` · delivery ${s.origin.delivery}`) : null]),
          fact("Created", h("span", { title: localTime(s.createdAt) }, h(Time, { iso: s.createdAt }))),
          fact("Duration", h("span", { id: "duration" }, sessionDuration(s) || h("span", { class: "muted" }, "not started"))),
          fact(
            "Tokens",
            usage
              ? h(
                  "span",
                  { id: "usage" },
                  `${usage.inputTokens} input, ${usage.outputTokens} output`,
                  usage.byModel && Object.keys(usage.byModel).length > 1
                    ? h("span", { class: "muted" }, ` (${Object.entries(usage.byModel).map(([m, u]) => `${m}: ${u.inputTokens}/${u.outputTokens}`).join("; ")})`)
                    : null,
                )
              : h("span", { class: "muted" }, final ? "none reported" : "when it ends"),
          ),
          s.env.length ? fact("Env", h("span", { class: "mono" }, s.env.map((e) => e.name).join(", "))) : null,
          fact("Title", h("div", { class: "title-text" }, s.title)),
        ),
      ),
    ),
    s.error ? h("p", { class: "error", role: "alert", id: "session-error" }, s.error) : null,
    final && s.response ? h("div", { class: "card response", id: "response" }, h("h2", null, "Response"), h(Markdown, { text: s.response })) : null,
    h(
      "div",
      { class: "card" },
      h("h2", null, "Timeline ", h("span", { class: `stream ${stream}`, id: "stream-state" }, stream === "ended" ? "ended" : stream === "live" ? "live" : stream === "reconnecting" ? "reconnecting…" : "connecting…")),
      h(ErrorNote, { error: streamError }),
      items.length ? h("ol", { class: "timeline", id: "timeline" }, items.map((it) => h(Item, { key: it.id, it }))) : h(Empty, null, "No events yet."),
    ),
    h(
      "div",
      { class: "card", id: "files" },
      h("h2", null, "Files"),
      h(ErrorNote, { error: files.error }),
      files.data && !files.data.files.length ? h(Empty, null, "No files in the session's folder.") : null,
      files.data?.files.length
        ? h(
            "table",
            { class: "list" },
            h("thead", null, h("tr", null, ["Path", "Size", "Modified", ""].map((c, i) => h("th", { key: i }, c)))),
            h(
              "tbody",
              null,
              files.data.files.map((f) =>
                h(
                  "tr",
                  { key: f.path },
                  h("td", { class: "mono file-path" }, f.path),
                  h("td", { class: "num" }, bytes(f.size)),
                  h("td", null, h(Time, { iso: f.modifiedAt })),
                  h("td", null, h("button", { type: "button", class: "link download", onClick: () => download(f) }, "Download")),
                ),
              ),
            ),
          )
        : null,
      files.data?.truncated ? h("p", { class: "muted small" }, "The list was cut short.") : null,
    ),
  );
}

const pretty = (v: unknown) => {
  if (v === undefined) return "";
  try {
    return typeof v === "string" ? v : JSON.stringify(v, null, 2);
  } catch {
    return String(v);
  }
};

function Item({ it }: { it: TimelineItem }) {
  const at = h("span", { class: "at", title: localTime(it.at) }, new Date(it.at).toLocaleTimeString());
  switch (it.kind) {
    case "message":
      return h("li", { class: "ev message" }, h("div", { class: "ev-head" }, "Message", it.model ? h("span", { class: "muted" }, ` · ${it.model}`) : null, at), h(Markdown, { text: it.text }));
    case "thinking":
      return h("li", { class: "ev thinking" }, h("details", null, h("summary", null, "Thinking", at), h("pre", { class: "wrap" }, it.text)));
    case "tool":
      return h(
        "li",
        { class: `ev tool${it.result?.isError ? " failed" : ""}` },
        h("div", { class: "ev-head" }, "Tool ", h("b", { class: "mono" }, it.name), it.result ? (it.result.isError ? h("span", { class: "badge bad" }, "error") : null) : h("span", { class: "muted" }, " · running…"), at),
        it.input !== undefined ? h("details", { open: true }, h("summary", null, "Input"), h("pre", { class: "wrap" }, pretty(it.input))) : null,
        it.result ? h("details", { open: true }, h("summary", null, it.result.truncated ? "Result (truncated)" : "Result"), h("pre", { class: "wrap" }, it.result.output)) : null,
      );
    case "error":
      return h("li", { class: "ev error", role: "alert" }, h("div", { class: "ev-head" }, "Error", at), h("pre", { class: "wrap" }, it.message));
    case "phase":
      return h("li", { class: "ev phase", "data-phase": it.phase }, h("span", null, "→ ", h(PhaseBadge, { phase: it.phase }), it.reason ? h("span", { class: "muted" }, ` ${it.reason}`) : null), at);
    case "note":
      return h("li", { class: "ev note" }, h("span", { class: "muted" }, it.text), at);
  }
}
