/** The built-in tools by name, each loaded only when an agent's `spec.tools` names it. */
import type { BuiltinTool } from "../../domain/agent";
import type { Tool } from "./types";

const BUILTIN: Record<BuiltinTool, () => Promise<Tool>> = {
  bash: async () => (await import("./bash")).bashTool,
  read_file: async () => (await import("./read-file")).readFileTool,
  write_file: async () => (await import("./write-file")).writeFileTool,
  edit_file: async () => (await import("./edit-file")).editFileTool,
  glob: async () => (await import("./glob")).globTool,
  grep: async () => (await import("./grep")).grepTool,
  web_fetch: async () => (await import("./web-fetch")).webFetchTool,
};

export function builtinTool(name: BuiltinTool): Promise<Tool> {
  const load = BUILTIN[name];
  if (!load) throw new Error(`unknown built-in tool ${name}`);
  return load();
}
