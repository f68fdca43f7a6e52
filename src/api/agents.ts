/** The Agent resource over HTTP: /apis/pai.io/v1/namespaces/{namespace}/agents[/{name}]. Admin token. */
import { Elysia } from "elysia";
import { AgentManifest, API_VERSION, validateAgent, type Agent } from "../domain/agent";
import { BadRequestError, ConflictError } from "../domain/errors";
import type { AgentService } from "../service/agents";
import type { TokenService } from "../service/tokens";
import { authorizedBody, requireAdmin } from "./auth";
import { checkLabel, NamedParams, NamespaceParams } from "./params";

const BASE = "/apis/pai.io/v1";
const tags = ["Agents"];
const agentBody = {
  required: true,
  description: "An Agent manifest, as JSON or YAML (Content-Type: application/yaml).",
  content: { "application/json": { schema: AgentManifest as object }, "application/yaml": { schema: AgentManifest as object } },
};

const list = (items: Agent[]) => ({ apiVersion: API_VERSION, kind: "AgentList", items });

/** A value from a body, for a message: JSON, cut short (never String(), which a crafted object can make throw). */
const shown = (v: unknown) => (JSON.stringify(v) ?? "null").slice(0, 80);

/** Validates a body against the URL: its name and namespace may be omitted but not contradict it. */
function inputFrom(body: unknown, namespace: string, name?: string) {
  const meta = (body as { metadata?: { name?: unknown; namespace?: unknown } } | null)?.metadata;
  if (meta && typeof meta === "object") {
    if (meta.namespace !== undefined && meta.namespace !== namespace)
      throw new BadRequestError(`metadata.namespace ${shown(meta.namespace)} does not match the namespace in the URL ("${namespace}")`);
    if (name !== undefined && meta.name !== undefined && meta.name !== name)
      throw new BadRequestError(`metadata.name ${shown(meta.name)} does not match the name in the URL ("${name}")`);
    if (name !== undefined && meta.name === undefined) meta.name = name;
  }
  return validateAgent(body, namespace);
}

export function agentRoutes(deps: { agents: AgentService; tokens: TokenService }) {
  const { agents, tokens } = deps;
  return new Elysia({ name: "agents" })
    // Local to these routes: a global parser would also read webhook bodies, which must stay raw.
    // It checks the token before it reads the body (bodies are parsed before onBeforeHandle runs).
    .onParse(authorizedBody((request) => requireAdmin(tokens, request.headers.get("authorization"))))
    // Local to this plugin's routes: every one of them needs the admin token (GET has no parse step).
    .onBeforeHandle(({ request }) => {
      requireAdmin(tokens, request.headers.get("authorization"));
    })
    .get(`${BASE}/agents`, () => list(agents.list().map((a) => a.agent)), {
      detail: { tags, summary: "List agents in all namespaces" },
    })
    .get(`${BASE}/namespaces/:namespace/agents`, ({ params }) => list(agents.list(checkLabel("namespace", params.namespace)).map((a) => a.agent)), {
      params: NamespaceParams,
      detail: { tags, summary: "List agents in a namespace" },
    })
    .post(
      `${BASE}/namespaces/:namespace/agents`,
      ({ params, body, set }) => {
        const input = inputFrom(body, checkLabel("namespace", params.namespace));
        if (agents.find(input.namespace, input.name))
          throw new ConflictError(`agent "${input.name}" already exists in namespace "${input.namespace}"`);
        set.status = 201;
        return agents.apply(input, "api").agent;
      },
      { params: NamespaceParams, detail: { tags, summary: "Create an agent", requestBody: agentBody } },
    )
    .get(`${BASE}/namespaces/:namespace/agents/:name`, ({ params }) => agents.get(params.namespace, params.name).agent, {
      params: NamedParams,
      detail: { tags, summary: "Read an agent, with its status (webhookUrl, conditions)" },
    })
    .put(
      `${BASE}/namespaces/:namespace/agents/:name`,
      ({ params, body, set }) => {
        const input = inputFrom(body, checkLabel("namespace", params.namespace), checkLabel("agent", params.name));
        const result = agents.apply(input, "api");
        set.status = result.created ? 201 : 200;
        return result.agent;
      },
      { params: NamedParams, detail: { tags, summary: "Apply an agent: create it, or update it in place", requestBody: agentBody } },
    )
    .delete(`${BASE}/namespaces/:namespace/agents/:name`, ({ params }) => agents.remove(params.namespace, params.name).agent, {
      params: NamedParams,
      detail: { tags, summary: "Delete an agent and its webhook secret" },
    });
}

