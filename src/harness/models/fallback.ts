/**
 * The models of `spec.models` as one client: a call goes to the current model; when it fails with
 * an overload, a rate limit or a connection error, the same request (the conversation so far) goes
 * to the next model, and later turns stay there. Any other error, or the last model failing, ends
 * the call with that error.
 */
import { EventType } from "../../domain/session";
import type { Emit, ModelCredentials } from "../protocol";
import { createModel } from "./index";
import { ModelError, type ModelClient, type ModelRequest, type ModelResult, type ModelStream } from "./types";

export interface FallbackClient {
  /** The model that answers next (as written in the spec). */
  current(): string;
  /** One model call; resolves with the answering model's id and its result. */
  complete(req: Omit<ModelRequest, "model">, stream?: ModelStream): Promise<{ model: string; result: ModelResult }>;
}

export function createFallbackClient(models: string[], creds: ModelCredentials, emit: Emit, make = createModel): FallbackClient {
  if (!models.length) throw new ModelError("no model to run: spec.models is empty", false);
  let at = 0;
  const clients = new Map<string, ModelClient>();
  return {
    current: () => models[at]!,
    async complete(req, stream) {
      for (;;) {
        const id = models[at]!;
        try {
          let client = clients.get(id);
          if (!client) clients.set(id, (client = await make(id, creds)));
          const slash = id.indexOf("/");
          return { model: id, result: await client.complete({ ...req, model: id.slice(slash + 1) }, stream) };
        } catch (err) {
          const next = models[at + 1];
          if (err instanceof ModelError && err.fallback && next && !req.signal?.aborted) {
            emit(EventType.ModelFallback, { from: id, to: next, error: err.message });
            at++;
            continue;
          }
          throw err;
        }
      }
    },
  };
}
