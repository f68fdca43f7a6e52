/**
 * The console's addresses: /console, /console/agents[/NS/NAME], /console/sessions[/NS/NAME]. They
 * are history entries (the server answers every /console/... with the same page), so links can be
 * opened in a new tab and the back button works. Filters live in the query; the token never does.
 */

export type Route =
  | { page: "overview" }
  | { page: "agents" }
  | { page: "agent"; namespace: string; name: string }
  | { page: "sessions"; query: URLSearchParams }
  | { page: "session"; namespace: string; name: string }
  | { page: "missing"; path: string };

export const BASE = "/console";

const part = (s: string) => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

export function parseRoute(pathname: string, search = ""): Route {
  const rest = pathname.startsWith(BASE) ? pathname.slice(BASE.length) : pathname;
  const parts = rest.split("/").filter(Boolean).map(part);
  if (parts.length === 0) return { page: "overview" };
  if (parts[0] === "agents" && parts.length === 1) return { page: "agents" };
  if (parts[0] === "agents" && parts.length === 3) return { page: "agent", namespace: parts[1]!, name: parts[2]! };
  if (parts[0] === "sessions" && parts.length === 1) return { page: "sessions", query: new URLSearchParams(search) };
  if (parts[0] === "sessions" && parts.length === 3) return { page: "session", namespace: parts[1]!, name: parts[2]! };
  return { page: "missing", path: pathname };
}

const e = encodeURIComponent;
export const agentHref = (namespace: string, name: string) => `${BASE}/agents/${e(namespace)}/${e(name)}`;
export const sessionHref = (namespace: string, name: string) => `${BASE}/sessions/${e(namespace)}/${e(name)}`;
export function sessionsHref(filters: Record<string, string | undefined> = {}): string {
  const q = new URLSearchParams(Object.entries(filters).filter((kv): kv is [string, string] => !!kv[1]));
  const s = q.toString();
  return `${BASE}/sessions${s ? `?${s}` : ""}`;
}

const listeners = new Set<() => void>();
export const onNavigate = (fn: () => void) => {
  listeners.add(fn);
  return () => listeners.delete(fn);
};

/** Goes to a console address without reloading the page. */
export function navigate(href: string, replace = false) {
  if (replace) history.replaceState(null, "", href);
  else history.pushState(null, "", href);
  for (const fn of listeners) fn();
  if (!replace) window.scrollTo(0, 0);
}
