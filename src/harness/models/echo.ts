/** `pai/echo`: an offline model that replies with the last user message; for tests and trying Pai without a key. */
import { ModelError, textOf, type ModelClient, type ModelRequest, type ModelResult, type ModelStream } from "./types";

export function createEchoModel(): ModelClient {
  return {
    id: "pai/echo",
    async complete(req: ModelRequest, stream?: ModelStream): Promise<ModelResult> {
      if (req.signal?.aborted) throw new ModelError("pai/echo: aborted", false);
      const last = req.messages.findLast((m) => m.role === "user");
      const text = last ? textOf(last.content) : "";
      if (text) stream?.onText?.(text);
      // No usage: an offline echo costs nothing, and its sessions carry no usage events.
      return { content: text ? [{ type: "text", text }] : [], stopReason: "end_turn" };
    },
  };
}
