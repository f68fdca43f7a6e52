/** Creates a model client from a spec id (`anthropic/…`, `openai/…`, `pai/echo`), loading a provider's SDK only when it is used. */
import { ModelError, type ModelClient, type ModelCredentials } from "./types";

export { ModelError } from "./types";
export type { ChatMessage, ModelClient, ModelCredentials, ModelRequest, ModelResult, ModelStream } from "./types";

export async function createModel(id: string, creds: ModelCredentials): Promise<ModelClient> {
  const slash = id.indexOf("/");
  const provider = slash > 0 ? id.slice(0, slash) : "";
  const name = slash > 0 ? id.slice(slash + 1) : "";
  if (provider === "anthropic" && name) return (await import("./anthropic")).createAnthropicModel(name, creds);
  if (provider === "openai" && name) return (await import("./openai")).createOpenAIModel(name, creds);
  if (id === "pai/echo") return (await import("./echo")).createEchoModel();
  throw new ModelError(`${id}: unknown model (expected anthropic/<model>, openai/<model> or pai/echo)`, false);
}
