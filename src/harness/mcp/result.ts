/**
 * What an MCP tool call becomes for the model: text. Text items are joined; images, audio and
 * binary resources are summarised (the loop's tool results are text only); structuredContent is
 * given as JSON when there is no text. Also: the names the model sees, `mcp__<server>__<tool>`.
 */
import { createHash } from "node:crypto";

/** The model APIs' limit on a tool name. */
export const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_NAME = 64;

/** `mcp__<server>__<tool>`, with anything else than letters, digits, _ and - made `_`, cut (with a hash of the tool's name, so two long names stay apart) to 64 characters. */
export function mcpToolName(server: string, tool: string): string {
  const clean = (s: string) => s.replace(/[^A-Za-z0-9_-]/g, "_");
  const full = `mcp__${clean(server)}__${clean(tool)}`;
  if (full.length <= MAX_NAME) return full;
  const hash = createHash("sha256").update(tool).digest("hex").slice(0, 8);
  return `${full.slice(0, MAX_NAME - hash.length - 1)}_${hash}`;
}

/** Bytes that a base64 string decodes to. */
function base64Bytes(data: unknown): number {
  if (typeof data !== "string") return 0;
  const s = data.replace(/\s/g, "");
  const pad = s.endsWith("==") ? 2 : s.endsWith("=") ? 1 : 0;
  return Math.max(0, Math.floor((s.length * 3) / 4) - pad);
}

const str = (v: unknown) => (typeof v === "string" ? v : undefined);

/** One content item as text. */
function itemText(item: Record<string, unknown>): string {
  switch (item.type) {
    case "text":
      return str(item.text) ?? "";
    case "image":
    case "audio":
      return `[${item.type}: ${str(item.mimeType) ?? "unknown type"}, ${base64Bytes(item.data)} bytes]`;
    case "resource_link":
      return `[resource link: ${[str(item.name), str(item.uri)].filter(Boolean).join(" ")}${str(item.mimeType) ? `, ${item.mimeType}` : ""}]`;
    case "resource": {
      const r = (typeof item.resource === "object" && item.resource !== null ? item.resource : {}) as Record<string, unknown>;
      const uri = str(r.uri) ?? "?";
      if (typeof r.text === "string") return `[resource: ${uri}${str(r.mimeType) ? `, ${r.mimeType}` : ""}]\n${r.text}`;
      return `[resource: ${uri}, ${str(r.mimeType) ?? "unknown type"}, ${base64Bytes(r.blob)} bytes]`;
    }
    default:
      return `[${String(item.type ?? "unknown")} content]`;
  }
}

/** A `tools/call` result as the model gets it. */
export function resultText(result: Record<string, unknown>): { output: string; isError: boolean } {
  // Servers of the 2024-10-07 protocol answered `{toolResult}` instead of content.
  if (!Array.isArray(result.content) && result.toolResult !== undefined) {
    const r = result.toolResult;
    return { output: typeof r === "string" ? r : JSON.stringify(r), isError: false };
  }
  const items = Array.isArray(result.content) ? (result.content.filter((i) => typeof i === "object" && i !== null) as Record<string, unknown>[]) : [];
  const hasText = items.some((i) => i.type === "text" && typeof i.text === "string" && i.text !== "");
  const parts = items.map(itemText).filter((t) => t !== "");
  if (!hasText && result.structuredContent !== undefined) parts.unshift(JSON.stringify(result.structuredContent));
  const isError = result.isError === true;
  const output = parts.join("\n") || (isError ? "the tool failed and said nothing more" : "(the tool returned no content)");
  return { output, isError };
}
