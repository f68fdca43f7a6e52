/**
 * A session's events as the timeline shows them: messages, folded thinking, each tool call joined
 * with its result (by the call's id), model fallbacks, usage, errors and the phase changes. Pure,
 * so it is tested without a browser; event contents are untrusted and read defensively.
 */
import type { SessionEvent } from "./api";

export type TimelineItem =
  | { kind: "message"; id: number; at: string; text: string; model?: string }
  | { kind: "thinking"; id: number; at: string; text: string }
  | { kind: "tool"; id: number; at: string; callId: string; name: string; input: unknown; result?: { output: string; isError: boolean; truncated: boolean } }
  | { kind: "error"; id: number; at: string; message: string }
  | { kind: "phase"; id: number; at: string; phase: string; reason?: string }
  | { kind: "note"; id: number; at: string; text: string };

const obj = (v: unknown): Record<string, unknown> => (typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const str = (v: unknown): string => (typeof v === "string" ? v : v === undefined || v === null ? "" : JSON.stringify(v));

export function timeline(events: SessionEvent[]): TimelineItem[] {
  const out: TimelineItem[] = [];
  const calls = new Map<string, Extract<TimelineItem, { kind: "tool" }>>();
  for (const e of events) {
    const c = obj(e.content);
    const base = { id: e.id, at: e.timestamp };
    switch (e.type) {
      case "agent.message":
        out.push({ kind: "message", ...base, text: str(c.text), model: typeof c.model === "string" ? c.model : undefined });
        break;
      case "agent.thinking":
        out.push({ kind: "thinking", ...base, text: str(c.text) });
        break;
      case "agent.tool_use": {
        const item = { kind: "tool" as const, ...base, callId: str(c.id), name: str(c.name), input: c.input };
        calls.set(item.callId, item);
        out.push(item);
        break;
      }
      case "agent.tool_result": {
        const result = { output: str(c.output), isError: c.isError === true, truncated: c.truncated === true };
        const call = calls.get(str(c.id));
        if (call && !call.result) call.result = result;
        else out.push({ kind: "tool", ...base, callId: str(c.id), name: str(c.name), input: undefined, result });
        break;
      }
      case "session.error":
        out.push({ kind: "error", ...base, message: str(c.message) || "error" });
        break;
      case "session.status_running":
        out.push({ kind: "phase", ...base, phase: "Running" });
        break;
      case "session.status_closed":
        out.push({ kind: "phase", ...base, phase: str(c.phase) || "Closed", reason: c.reason === undefined ? undefined : str(c.reason) });
        break;
      case "session.model_fallback":
        out.push({ kind: "note", ...base, text: `model ${str(c.from)} failed (${str(c.error)}); trying ${str(c.to)}` });
        break;
      case "session.usage":
        out.push({ kind: "note", ...base, text: `${str(c.model)}: ${Number(c.inputTokens) || 0} input, ${Number(c.outputTokens) || 0} output tokens` });
        break;
      case "session.mcp_server":
        out.push({ kind: "note", ...base, text: `MCP server ${str(c.server)}: ${Array.isArray(c.tools) ? c.tools.map(str).join(", ") || "no tools" : ""}` });
        break;
      case "session.callback":
        out.push({ kind: "note", ...base, text: `callback, attempt ${str(c.attempt)}: ${c.status !== undefined ? `answered ${str(c.status)}` : `failed (${str(c.error)})`}` });
        break;
      default:
        out.push({ kind: "note", ...base, text: `${e.type}: ${str(e.content)}` });
    }
  }
  return out;
}
