/**
 * Small building blocks shared by the pages: links that navigate in place, phase and code badges,
 * time and size formats, polling and loading hooks, and Markdown rendered from its parsed tree.
 * Everything from the server reaches the page as text children or attribute values set by
 * Preact, never as HTML.
 */
import { h, type ComponentChildren, type VNode } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "./api";
import { parseMarkdown, type MdNode } from "./markdown";
import { navigate } from "./routes";

export { h };
export type { ComponentChildren, VNode };

export function Link(props: { href: string; class?: string; title?: string; children?: ComponentChildren }) {
  return h(
    "a",
    {
      href: props.href,
      class: props.class,
      title: props.title,
      onClick: (e: MouseEvent) => {
        if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(props.href);
      },
    },
    props.children,
  );
}

const PHASE_CLASS: Record<string, string> = { Complete: "ok", Running: "live", Pending: "wait", Error: "bad", Cancelled: "off" };
export const PhaseBadge = ({ phase }: { phase: string }) => h("span", { class: `badge ${PHASE_CLASS[phase] ?? "off"}`, "data-phase": phase }, phase);

export const codeClass = (code: number | string) => {
  const n = Number(code);
  return n < 300 ? "ok" : n < 400 ? "off" : n === 429 || n === 503 ? "wait" : "bad";
};
export const CodeBadge = ({ code }: { code: number }) => h("span", { class: `badge ${codeClass(code)}` }, String(code));

export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "";
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (!Number.isFinite(s)) return "";
  if (s < 5) return "just now";
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${Math.round(s % 60)}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export const localTime = (iso: string) => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
};

export const Time = ({ iso }: { iso: string | null | undefined }) => (iso ? h("time", { dateTime: iso, title: localTime(iso) }, ago(iso)) : h("span", { class: "muted" }, "–"));

export const ErrorNote = ({ error }: { error: unknown }) =>
  error ? h("p", { class: "error", role: "alert" }, error instanceof ApiError ? `${error.status}: ${error.message}` : error instanceof Error ? error.message : String(error)) : null;

/** Runs `fn` now and every `ms` while mounted (skipped while the tab is hidden); restarts when `deps` change. */
export function usePoll(fn: (signal: AbortSignal) => Promise<void> | void, ms: number, deps: unknown[]) {
  const latest = useRef(fn);
  latest.current = fn;
  useEffect(() => {
    const ctrl = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      if (ctrl.signal.aborted) return;
      if (!document.hidden) {
        try {
          await latest.current(ctrl.signal);
        } catch {
          // The poll's own state shows errors; a failed round just waits for the next.
        }
      }
      if (!ctrl.signal.aborted) timer = setTimeout(run, ms);
    };
    run();
    return () => {
      ctrl.abort();
      clearTimeout(timer);
    };
  }, deps);
}

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  reload: () => void;
}

/** Loads once per `deps` (and on reload()); with `pollMs`, again every so often. */
export function useLoad<T>(fn: (signal: AbortSignal) => Promise<T>, deps: unknown[], pollMs = 0): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [round, setRound] = useState(0);
  usePoll(
    async (signal) => {
      try {
        const d = await fn(signal);
        if (signal.aborted) return;
        setData(d);
        setError(undefined);
      } catch (err) {
        if (!signal.aborted) setError(err);
      }
    },
    pollMs || 24 * 3600_000,
    [...deps, round],
  );
  useEffect(() => setData(undefined), deps);
  const reload = useCallback(() => setRound((r) => r + 1), []);
  return { data, error, reload };
}

function mdNode(n: MdNode, key: number): ComponentChildren {
  if (typeof n === "string") return n;
  const children = n.children.map(mdNode);
  if (n.tag === "a") return h("a", { key, href: n.href, rel: "noopener noreferrer nofollow", target: "_blank", referrerpolicy: "no-referrer" }, children);
  if (n.tag === "ol") return h("ol", { key, start: n.start }, children);
  return h(n.tag, { key }, children);
}

/** Markdown from the server, as elements of the parsed tree only. */
export const Markdown = ({ text }: { text: string }) => h("div", { class: "md" }, parseMarkdown(text).map(mdNode));

export const Empty = ({ children }: { children?: ComponentChildren }) => h("p", { class: "empty" }, children);
