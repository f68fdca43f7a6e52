/**
 * `pai harness`: the child process that runs one session's agent. It waits for the start message
 * on the IPC pipe, then loads and runs the agent (./agent.ts), reports events and a result, and
 * never touches the store. Until the message comes it loads as little as it can: a waiting child
 * costs memory, and every session's first event waits for what it loads.
 */
import { EventType } from "../domain/session";
import type { Emit, HarnessEvent, HarnessMessage, HarnessResult, StartMessage } from "./protocol";
import { killAllProcesses } from "./tools/process";

function send(msg: HarnessMessage) {
  process.send!(msg);
}

const emitToParent: Emit = (type, content) => send({ type: "event", event: { type, content } as HarnessEvent });

export async function runHarness(): Promise<number> {
  if (!process.send) {
    process.stderr.write("error: pai harness is started by pai serve for each session; it is not run by hand\n");
    return 2;
  }
  const abort = new AbortController();
  let finished = false;
  process.on("SIGTERM", () => {
    abort.abort();
    // Every process a tool started goes with the session, whatever it is doing.
    killAllProcesses();
    setTimeout(() => process.exit(143), 50).unref();
  });
  // The supervisor is gone (crashed or killed): nobody will store what we do, so stop.
  process.on("disconnect", () => {
    if (!finished) {
      killAllProcesses();
      process.exit(1);
    }
  });
  const start = await new Promise<StartMessage>((resolve) => {
    process.once("message", (m) => resolve(m as StartMessage));
  });
  let result: HarnessResult;
  try {
    const { runAgent } = await import("./agent");
    result = await runAgent(start, emitToParent, abort.signal);
  } catch (err) {
    const message = `the harness failed: ${err instanceof Error ? err.message : String(err)}`;
    emitToParent(EventType.Error, { message });
    result = { type: "result", phase: "Error", response: null, error: message };
  }
  killAllProcesses();
  finished = true;
  send(result);
  process.disconnect?.();
  return -1;
}
