/**
 * Messages between the supervisor and a harness child over Bun's IPC pipe. The child never touches
 * the database: it reports, the supervisor stores.
 */
import type { AgentSpec } from "../domain/agent";
import type { ModelCredentials } from "../harness/models/types";

/** Supervisor → harness, once, right after spawn. */
export interface StartMessage {
  type: "start";
  /** `prompt` is the first user message: the title, plus a note when a webhook payload came with it. */
  session: { name: string; namespace: string; prompt: string };
  spec: Pick<AgentSpec, "models" | "system">;
  /** Model keys, endpoints and the operator's proxy settings (`credentialsFrom`): none of them is read from the child's env. */
  credentials: ModelCredentials;
}

/** Harness → supervisor. */
export type HarnessMessage =
  | { type: "event"; event: { type: string; content: unknown } }
  | { type: "result"; phase: "Complete" | "Error"; error?: string };
