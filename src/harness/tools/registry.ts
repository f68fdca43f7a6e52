/**
 * One registry for every tool a session may use: the built-in ones the agent's `spec.tools`
 * names, and those its MCP servers offer (`mcp__<server>__<tool>`). The loop asks it for the specs
 * to offer and calls through it; it checks the input is an object, caps the output, and turns a
 * throw into an error result, so one bad call never ends the run.
 */
import type { ToolSpec } from "../models/types";
import { MAX_OUTPUT_CHARS, toolError, type Tool, type ToolContext } from "./types";

export interface ToolCallResult {
  output: string;
  isError: boolean;
  /** The output was longer than MAX_OUTPUT_CHARS and was cut. */
  truncated?: boolean;
}

export class ToolRegistry {
  private tools = new Map<string, Tool>();

  add(tool: Tool) {
    if (this.tools.has(tool.name)) throw new Error(`two tools are named ${tool.name}`);
    this.tools.set(tool.name, tool);
  }

  has(name: string) {
    return this.tools.has(name);
  }

  get size() {
    return this.tools.size;
  }

  names(): string[] {
    return [...this.tools.keys()];
  }

  /** What the model is offered. */
  specs(): ToolSpec[] {
    return [...this.tools.values()].map(({ name, description, inputSchema }) => ({ name, description, inputSchema }));
  }

  async call(name: string, input: unknown, ctx: ToolContext): Promise<ToolCallResult> {
    const tool = this.tools.get(name);
    if (!tool) return { output: `there is no tool named ${name}; the tools are: ${this.names().join(", ") || "none"}`, isError: true };
    if (typeof input !== "object" || input === null || Array.isArray(input)) return { output: `the input of ${name} must be a JSON object`, isError: true };
    let out;
    try {
      out = await tool.run(input as Record<string, unknown>, ctx);
    } catch (err) {
      out = toolError(`${name} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    return cap(out.output, !!out.isError);
  }
}

/** Cuts an output to MAX_OUTPUT_CHARS, saying how much was left out. */
export function cap(output: string, isError: boolean): ToolCallResult {
  if (output.length <= MAX_OUTPUT_CHARS) return { output, isError };
  const cut = output.length - MAX_OUTPUT_CHARS;
  return { output: `${output.slice(0, MAX_OUTPUT_CHARS)}\n[output cut: ${cut} more characters not shown]`, isError, truncated: true };
}
