/** `pai/echo`: an offline model that replies with the last user message; for tests and trying Pai without a key. */
import { ModelError, type ModelClient, type ModelRequest, type ModelResult, type ModelStream } from "./types";

export function createEchoModel(): ModelClient {
  return {
    id: "pai/echo",
    async complete(req: ModelRequest, stream?: ModelStream): Promise<ModelResult> {
      if (req.signal?.aborted) throw new ModelError("pai/echo: aborted", false);
      const text = req.messages.findLast((m) => m.role === "user")?.content ?? "";
      if (text) stream?.onText?.(text);
      return { text, stopReason: "end_turn", usage: { inputTokens: 0, outputTokens: 0 } };
    },
  };
}
