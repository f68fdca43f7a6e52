/**
 * The reads several pages share, each a documented API call: the agents the token may see, the
 * sessions since a moment (newest first, page by page until older ones), and what an agent's
 * webhook trigger asks of its callers.
 */
import { getJson, seg, type Agent, type Auth, type List, type Session, type WebhookTrigger } from "./api";

const BASE = "/apis/pai.io/v1";

/** The agents the token may read: the admin's in one list, a namespace token's in its namespace. */
export async function listAgents(auth: Auth, signal?: AbortSignal): Promise<Agent[]> {
  if (auth.admin) return (await getJson<List<Agent>>(auth.token, `${BASE}/agents`, { signal })).items;
  const lists = await Promise.all(auth.namespaces.map((ns) => getJson<List<Agent>>(auth.token, `${BASE}/namespaces/${seg(ns)}/agents`, { signal })));
  return lists.flatMap((l) => l.items);
}

export interface SessionFilter {
  namespace?: string;
  agent?: string;
  phase?: string;
  /** Only sessions created at or after this time (ms since the epoch). */
  since?: number;
}

/**
 * Sessions matching `f`, newest first: pages of `pageSize` are read until one reaches older than
 * `since`, or `maxPages` were read (`more` then says the list was cut short).
 */
export async function listSessions(auth: Auth, f: SessionFilter, opts: { pageSize?: number; maxPages?: number; signal?: AbortSignal } = {}): Promise<{ sessions: Session[]; more: boolean }> {
  const path = f.namespace ? `${BASE}/namespaces/${seg(f.namespace)}/sessions` : `${BASE}/sessions`;
  const selectors = [f.agent ? `agentDefinition=${f.agent}` : "", f.phase ? `phase=${f.phase}` : ""].filter(Boolean).join(",");
  const out: Session[] = [];
  let cont: string | undefined;
  for (let page = 0; page < (opts.maxPages ?? 1); page++) {
    const q = new URLSearchParams({ limit: String(opts.pageSize ?? 100) });
    if (selectors) q.set("fieldSelector", selectors);
    if (cont) q.set("continue", cont);
    const list = await getJson<List<Session>>(auth.token, `${path}?${q}`, { signal: opts.signal });
    const fresh = f.since === undefined ? list.items : list.items.filter((s) => Date.parse(s.createdAt) >= f.since!);
    out.push(...fresh);
    cont = list.metadata?.continue;
    if (!cont || fresh.length < list.items.length) return { sessions: out, more: false };
  }
  return { sessions: out, more: !!cont };
}

/** The webhook triggers of an agent's spec. */
export const webhooksOf = (a: Agent): WebhookTrigger[] => (a.spec.triggers ?? []).flatMap((t) => (t.webhook ? [t.webhook] : []));

export const readyOf = (a: Agent) => a.status?.conditions?.find((c) => c.type === "Ready");
