/**
 * `pai harness`: the child process that runs one session's agent loop. It waits for the start
 * message on the IPC pipe, calls the models in `spec.models` order (falling back on overloads,
 * rate limits and connection errors), and reports events and a result. It never touches the store.
 */
import type { HarnessMessage, StartMessage } from "../supervisor/protocol";
import { EventType } from "../domain/session";
import { createModel } from "./models/index";
import { ModelError, type ChatMessage } from "./models/types";

function send(msg: HarnessMessage) {
  process.send!(msg);
}

const event = (type: string, content: unknown) => send({ type: "event", event: { type, content } });

/** Runs the agent loop for one start message; returns the result to report. */
export async function runAgent(start: StartMessage, emit: (type: string, content: unknown) => void, signal?: AbortSignal): Promise<Extract<HarnessMessage, { type: "result" }>> {
  const messages: ChatMessage[] = [{ role: "user", content: start.session.prompt }];
  const models = start.spec.models;
  for (let i = 0; i < models.length; i++) {
    const id = models[i]!;
    try {
      const client = await createModel(id, start.credentials);
      const slash = id.indexOf("/");
      const result = await client.complete({ model: id.slice(slash + 1), system: start.spec.system, messages, signal });
      if (result.thinking) emit(EventType.AgentThinking, { text: result.thinking, model: id });
      if (result.text) emit(EventType.AgentMessage, { text: result.text, model: id, stopReason: result.stopReason });
      return { type: "result", phase: "Complete" };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const next = models[i + 1];
      if (err instanceof ModelError && err.fallback && next) {
        emit(EventType.ModelFallback, { from: id, to: next, error: message });
        continue;
      }
      emit(EventType.Error, { message, model: id });
      return { type: "result", phase: "Error", error: message };
    }
  }
  return { type: "result", phase: "Error", error: "no model to run: spec.models is empty" };
}

export async function runHarness(): Promise<number> {
  if (!process.send) {
    process.stderr.write("error: pai harness is started by pai serve for each session; it is not run by hand\n");
    return 2;
  }
  const abort = new AbortController();
  let finished = false;
  process.on("SIGTERM", () => {
    abort.abort();
    setTimeout(() => process.exit(143), 50).unref();
  });
  // The supervisor is gone (crashed or killed): nobody will store what we do, so stop.
  process.on("disconnect", () => {
    if (!finished) process.exit(1);
  });
  const start = await new Promise<StartMessage>((resolve) => {
    process.once("message", (m) => resolve(m as StartMessage));
  });
  const result = await runAgent(start, event, abort.signal);
  finished = true;
  send(result);
  process.disconnect?.();
  return -1;
}
