/**
 * What a tool is to the agent loop: a name, a description and an input schema offered to the
 * model, and a function that runs a call. A call that goes wrong (bad input, a path outside the
 * folder, a command that failed) is a result with `isError`, which the model sees; only a bug
 * throws, and the registry turns that into an error result too.
 */
import type { ToolSpec } from "../models/types";
import type { Sandbox } from "../sandbox";

export interface ToolContext {
  /** The session's working folder: relative paths start here, and file tools stay inside it. */
  cwd: string;
  /** The session's environment (spec.env and the caller's env overrides), for processes a tool starts. */
  env: Record<string, string>;
  /** Aborted when the session is cancelled or runs out of time: stop and kill what was started. */
  signal: AbortSignal;
  /** How to start processes: inside bubblewrap, or (when the operator allows it) without. */
  sandbox: Sandbox;
  /** web_fetch may reach loopback and private addresses (the operator's --allow-private-callbacks). */
  allowPrivateFetch: boolean;
}

export interface ToolOutput {
  output: string;
  isError?: boolean;
}

export interface Tool extends ToolSpec {
  run(input: Record<string, unknown>, ctx: ToolContext): Promise<ToolOutput>;
}

/** Output longer than this is cut, with a note that says so. */
export const MAX_OUTPUT_CHARS = 30_000;

/** An error result. */
export const toolError = (output: string): ToolOutput => ({ output, isError: true });
