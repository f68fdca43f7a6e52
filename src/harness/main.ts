/**
 * `pai harness`: the child process that runs a session's agent. It waits for the start message on
 * the IPC pipe, then loads and runs the agent (./agent.ts), reports events and a result, and never
 * touches the store. Until the message comes it loads as little as it can: a waiting child costs
 * memory, and every session's first event waits for what it loads.
 *
 * A child spawned for its session already runs in the session's folder with its environment, and
 * exits after the one run. Two kinds of child are started before their session exists (see
 * src/supervisor/spawner.ts): a warm child (`pai harness --warm`, started ahead of demand), and a
 * child kept for an agent that opted into reuse. Those get the folder and the environment in the
 * start message (`place`); a warm child loads the agent's code while it waits. A child told it may
 * be reused (`reuse`) kills every process the session started, returns to the folder and the
 * environment it was spawned with, reports the result, and waits for the next start message.
 */
import { EventType } from "../domain/session";
import type { Emit, HarnessEvent, HarnessMessage, HarnessResult, StartMessage } from "./protocol";
import { killAllProcesses } from "./tools/process";

function send(msg: HarnessMessage) {
  process.send!(msg);
}

const emitToParent: Emit = (type, content) => send({ type: "event", event: { type, content } as HarnessEvent });

/** Makes this process's environment exactly `env` (tools and model clients read it from here). */
function replaceEnv(env: Record<string, string>) {
  for (const k of Object.keys(process.env)) if (!(k in env)) delete process.env[k];
  for (const [k, v] of Object.entries(env)) process.env[k] = v;
}

/** A session that touches nothing: pai/echo, no tools, no MCP server, no payload. */
const REHEARSAL: StartMessage = {
  type: "start",
  session: { name: "rehearsal", namespace: "", title: "warm-up", origin: {}, hasPayload: false },
  spec: { models: ["pai/echo"] },
  credentials: {},
  tools: { allowUnsandboxed: false, allowPrivateFetch: false, hidden: [] },
};

export async function runHarness(): Promise<number> {
  if (!process.send) {
    // console.error: in a compiled binary the first process.stderr.write costs ~4 ms more.
    console.error("error: pai harness is started by pai serve for each session; it is not run by hand");
    return 2;
  }
  const warm = process.argv.includes("--warm");
  let abort: AbortController | undefined;
  /** A session runs: a signal or a lost supervisor must take its tool processes with it. */
  let busy = false;
  process.on("SIGTERM", () => {
    abort?.abort();
    // Every process a tool started goes with the session, whatever it is doing.
    killAllProcesses();
    setTimeout(() => process.exit(143), busy ? 50 : 0).unref();
  });
  // The supervisor is gone (crashed or killed): nobody will store what we do, so stop.
  process.on("disconnect", () => {
    if (busy) killAllProcesses();
    process.exit(busy ? 1 : 0);
  });
  const inbox: StartMessage[] = [];
  let waiting: ((m: StartMessage) => void) | undefined;
  process.on("message", (m) => {
    if (waiting) {
      const w = waiting;
      waiting = undefined;
      w(m as StartMessage);
    } else inbox.push(m as StartMessage);
  });
  const nextStart = () => (inbox.length ? Promise.resolve(inbox.shift()!) : new Promise<StartMessage>((resolve) => (waiting = resolve)));
  // A warm child has time before its session: it loads the agent's code now, and runs it once on
  // pai/echo, reporting nothing, so that the code every session runs is compiled before a session
  // waits on it (a fresh process's first run is a few ms slower than its next). An error is left
  // for the session to report (the same import is awaited again there).
  // The sandbox's code is loaded too: the rehearsal has no tools, so it does not load it, and a
  // session with tools would wait for it (with node:fs and node:os, ~1.5 ms in a fresh process).
  if (warm)
    Promise.all([import("./agent"), import("./sandbox")])
      .then(([{ runAgent }]) => runAgent(REHEARSAL, () => {}, new AbortController().signal))
      .catch(() => {});
  const home = process.cwd();
  const spawnEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) spawnEnv[k] = v;

  for (;;) {
    const start = await nextStart();
    busy = true;
    if (start.place) send({ type: "taken" });
    abort = new AbortController();
    let result: HarnessResult;
    try {
      if (start.place) {
        process.chdir(start.place.cwd);
        replaceEnv(start.place.env);
      }
      const { runAgent } = await import("./agent");
      result = await runAgent(start, emitToParent, abort.signal);
    } catch (err) {
      const message = `the harness failed: ${err instanceof Error ? err.message : String(err)}`;
      emitToParent(EventType.Error, { message });
      result = { type: "result", phase: "Error", response: null, error: message };
    }
    killAllProcesses();
    // Nothing of this session is left for the next one: its processes are gone (above), and the
    // folder and the environment are the ones this child was spawned with. If its spawn folder is
    // gone, it cannot be placed again and ends after this run.
    let stays = !!start.reuse;
    if (stays)
      try {
        process.chdir(home);
        replaceEnv(spawnEnv);
      } catch {
        stays = false;
      }
    abort = undefined;
    busy = false;
    send(result);
    if (!stays) {
      process.disconnect?.();
      return -1;
    }
  }
}
