/**
 * The agent loop: turns until the model ends one without calling a tool, or a limit is hit. A
 * turn is one model call (through the fallback client), its text and thinking reported as they
 * come in order, then every tool call of the turn run (concurrently: the calls of one turn are
 * independent) and their results sent back as the next user message. The reply is the text of the
 * last turn.
 */
import { DEFAULT_MAX_TURNS } from "../domain/limits";
import { EventType } from "../domain/session";
import type { FallbackClient } from "./models/fallback";
import { textOf, type ChatMessage, type ContentBlock } from "./models/types";
import type { Emit, HarnessResult, HarnessSpec } from "./protocol";
import type { ToolRegistry } from "./tools/registry";
import type { ToolContext } from "./tools/types";

export interface LoopOptions {
  prompt: string;
  spec: HarnessSpec;
  client: FallbackClient;
  tools: ToolRegistry;
  /** What tools get (folder, env, sandbox); its signal also stops the model calls. */
  context: ToolContext;
  emit: Emit;
}

export async function runLoop(o: LoopOptions): Promise<HarnessResult> {
  const { spec, client, tools, emit } = o;
  const signal = o.context.signal;
  const maxTurns = spec.maxTurns ?? DEFAULT_MAX_TURNS;
  const offered = tools.size ? tools.specs() : undefined;
  const messages: ChatMessage[] = [{ role: "user", content: [{ type: "text", text: o.prompt }] }];
  let response: string | null = null;
  for (let turn = 1; turn <= maxTurns; turn++) {
    let model = client.current();
    let content: ContentBlock[];
    try {
      const answer = await client.complete({ system: spec.system, messages, tools: offered, maxTokens: spec.maxTokens, signal });
      model = answer.model;
      content = answer.result.content;
      const usage = answer.result.usage;
      if (usage) emit(EventType.Usage, { model, inputTokens: usage.inputTokens ?? 0, outputTokens: usage.outputTokens ?? 0 });
      for (const b of content) {
        if (b.type === "thinking" && b.thinking) emit(EventType.AgentThinking, { text: b.thinking, model });
        else if (b.type === "text" && b.text) emit(EventType.AgentMessage, { text: b.text, model, stopReason: answer.result.stopReason });
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      emit(EventType.Error, { message, model });
      return { type: "result", phase: "Error", response, error: message };
    }
    const text = textOf(content);
    response = text || null;
    messages.push({ role: "assistant", content });
    const calls = content.filter((b): b is Extract<ContentBlock, { type: "tool_use" }> => b.type === "tool_use");
    if (!calls.length) return { type: "result", phase: "Complete", response };
    // No model call would see these results: running the calls would only have side effects.
    if (turn === maxTurns) break;
    for (const c of calls) emit(EventType.AgentToolUse, { id: c.id, name: c.name, input: c.input });
    // The calls of one turn run together; their results are reported as each ends, and sent back in call order.
    const results = await Promise.all(
      calls.map(async (c) => {
        const r = await tools.call(c.name, c.input, o.context);
        emit(EventType.AgentToolResult, { id: c.id, name: c.name, output: r.output, isError: r.isError, ...(r.truncated ? { truncated: true } : {}) });
        return { type: "tool_result" as const, toolUseId: c.id, content: r.output, ...(r.isError ? { isError: true } : {}) };
      }),
    );
    if (signal.aborted) return { type: "result", phase: "Error", response, error: "aborted" };
    messages.push({ role: "user", content: results });
  }
  const error = `reached maxTurns (${maxTurns}): the agent was still calling tools after ${maxTurns} model calls`;
  emit(EventType.Error, { message: error });
  return { type: "result", phase: "Error", response, error };
}

