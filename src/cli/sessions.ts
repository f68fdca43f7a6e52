/** Session verbs: pai run, pai get sessions / session, pai logs [-f], pai cancel. */
import type { Session } from "../domain/session";
import { EventType } from "../domain/session";
import { CliError, type Client } from "./client";
import { age, outputFormat, printObject, table } from "./format";

type SessionView = Pick<Session, "namespace" | "agentDefinition" | "phase" | "response" | "error" | "createdAt" | "title"> & { session: string };
interface EventView {
  id: number;
  type: string;
  content: unknown;
  timestamp: string;
}

export interface SessionCtx {
  client: Client;
  namespace: string;
  allNamespaces: boolean;
  output: unknown;
  env: string[];
  wait: boolean;
  follow: boolean;
}

const out = (s: string) => process.stdout.write(s);
const q = (ns: string) => `namespace=${encodeURIComponent(ns)}`;

/** One line per event, for people: messages as text, the rest as `[type] json`. */
export function formatEvent(e: { type: string; content: unknown }): string {
  const c = e.content as { text?: string; message?: string; phase?: string; reason?: string; from?: string; to?: string; error?: string };
  switch (e.type) {
    case EventType.AgentMessage:
      return `${c.text ?? ""}\n`;
    case EventType.AgentThinking:
      return `[thinking] ${c.text ?? ""}\n`;
    case EventType.Error:
      return `[error] ${c.message ?? JSON.stringify(c)}\n`;
    case EventType.ModelFallback:
      return `[fallback] ${c.from} failed (${c.error}); trying ${c.to}\n`;
    case EventType.StatusRunning:
      return `[running]\n`;
    case EventType.StatusClosed:
      return `[closed] ${c.phase}${c.reason ? `: ${c.reason}` : ""}\n`;
    default:
      return `[${e.type}] ${JSON.stringify(e.content)}\n`;
  }
}

function parseEnv(list: string[]) {
  return list.map((l) => {
    const eq = l.indexOf("=");
    if (eq <= 0) throw new CliError(`--env must be NAME=VALUE (got "${l}")`, 2);
    return { name: l.slice(0, eq), value: l.slice(eq + 1) };
  });
}

/** Follows a session's SSE stream, printing each event; returns the closing phase. */
async function follow(ctx: SessionCtx, name: string): Promise<string> {
  const url = `${ctx.client.server}/agents/${encodeURIComponent(name)}/stream?${q(ctx.namespace)}`;
  let lastId = 0;
  for (let attempt = 0; attempt < 30; attempt++) {
    let res: Response;
    try {
      res = await ctx.client.fetch(url, { headers: { ...ctx.client.authHeader(), ...(lastId ? { "last-event-id": String(lastId) } : {}) } });
    } catch {
      await Bun.sleep(1000);
      continue;
    }
    if (res.status === 204) break;
    if (!res.ok) throw new CliError(((await res.json().catch(() => ({}))) as { message?: string }).message ?? `HTTP ${res.status}`);
    const decoder = new TextDecoder();
    let buf = "";
    for await (const chunk of res.body as ReadableStream<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let sep: number;
      while ((sep = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, sep);
        buf = buf.slice(sep + 2);
        const id = /^id: (\d+)$/m.exec(block);
        const data = /^data: (.*)$/m.exec(block);
        if (!data) continue;
        if (id) lastId = Number(id[1]);
        const e = JSON.parse(data[1]!) as { type: string; content: { phase?: string } };
        out(formatEvent(e));
        if (e.type === EventType.StatusClosed) return e.content.phase ?? "Unknown";
      }
    }
  }
  const s = await ctx.client.request<SessionView>("GET", `/agents/${encodeURIComponent(name)}?${q(ctx.namespace)}`);
  return s.phase;
}

export async function run(ctx: SessionCtx, words: string[]): Promise<number> {
  const [agent, ...prompt] = words;
  if (!agent || !prompt.length) throw new CliError('usage: pai run AGENT "prompt" [--wait] [--env NAME=VALUE]', 2);
  const s = await ctx.client.request<SessionView>("POST", `/apis/pai.io/v1/namespaces/${encodeURIComponent(ctx.namespace)}/sessions`, {
    agentDefinition: agent,
    title: prompt.join(" "),
    env: parseEnv(ctx.env),
  });
  if (!ctx.wait) {
    out(`${s.session}\n`);
    return 0;
  }
  process.stderr.write(`session ${s.session}\n`);
  const phase = await follow(ctx, s.session);
  return phase === "Complete" ? 0 : 1;
}

export async function getSessions(ctx: SessionCtx, name: string | undefined) {
  const format = outputFormat(ctx.output);
  if (name) {
    const s = await ctx.client.request<SessionView>("GET", `/agents/${encodeURIComponent(name)}?${q(ctx.namespace)}`);
    if (format !== "table") return printObject(s, format);
    return out(table(["NAME", "AGENT", "PHASE", "AGE"], [[s.session, s.agentDefinition, s.phase, age(s.createdAt)]]));
  }
  const path = ctx.allNamespaces ? "/apis/pai.io/v1/sessions" : `/apis/pai.io/v1/namespaces/${encodeURIComponent(ctx.namespace)}/sessions`;
  const list = await ctx.client.request<{ items: SessionView[] }>("GET", path);
  if (format !== "table") return printObject(list, format);
  if (!list.items.length) return out("No sessions found.\n");
  return out(
    table(
      [...(ctx.allNamespaces ? ["NAMESPACE"] : []), "NAME", "AGENT", "PHASE", "AGE", "TITLE"],
      list.items.map((s) => [...(ctx.allNamespaces ? [s.namespace] : []), s.session, s.agentDefinition, s.phase, age(s.createdAt), s.title.split("\n")[0]!.slice(0, 50)]),
    ),
  );
}

export async function logs(ctx: SessionCtx, words: string[]): Promise<number> {
  const name = words[0];
  if (!name) throw new CliError("usage: pai logs SESSION [-f]", 2);
  if (ctx.follow) {
    await follow(ctx, name);
    return 0;
  }
  let after = 0;
  for (;;) {
    const page = await ctx.client.request<{ events: EventView[]; count: number }>("GET", `/agents/${encodeURIComponent(name)}/events?${q(ctx.namespace)}&after=${after}`);
    for (const e of page.events) out(formatEvent(e));
    if (page.count < 1000) return 0;
    after = page.events[page.events.length - 1]!.id;
  }
}

export async function cancel(ctx: SessionCtx, words: string[]) {
  const name = words[0];
  if (!name) throw new CliError("usage: pai cancel SESSION", 2);
  const s = await ctx.client.request<SessionView>("POST", `/agents/${encodeURIComponent(name)}/cancel?${q(ctx.namespace)}`);
  out(`session "${s.session}" ${s.phase === "Cancelled" ? "cancelled" : s.phase}\n`);
}
