/**
 * An agent's delivery log over HTTP: GET /apis/pai.io/v1/namespaces/{ns}/agents/{name}/deliveries
 * answers a DeliveryList, newest first, paged with `limit` and `continue`. The admin token reads
 * every agent's, a namespace token those of its namespace: the log says what was sent to the
 * agent's URL (and why it was refused), never the URL's token.
 *
 * `continue` holds a position in the log, not a secret, so it is plain base64url (opaque, but any
 * replica and any later server opens it); it names its list, so a position of one agent's log is
 * refused for another's.
 */
import { Elysia } from "elysia";
import { API_VERSION } from "../domain/agent";
import { BadRequestError } from "../domain/errors";
import type { AgentService } from "../service/agents";
import type { DeliveryLog } from "../service/deliveries";
import type { TokenService } from "../service/tokens";
import type { StoredDelivery } from "../store/deliveries";
import { requireNamespace, requirePrincipal } from "./auth";
import { AGENTS, notFound } from "./kube/resources";
import { MAX_DELIVERIES_PAGE } from "./openapi/operations";
import { checkLabel, NamedParams } from "./params";

export const DEFAULT_DELIVERIES_PAGE = 100;

/** An entry as the API shows it (namespace and agent are the URL's). */
export function deliveryItem(d: StoredDelivery) {
  return {
    time: d.time,
    sender: d.sender,
    ...(d.event !== undefined ? { event: d.event } : {}),
    ...(d.delivery !== undefined ? { delivery: d.delivery } : {}),
    code: d.code,
    ...(d.session !== undefined ? { session: d.session } : {}),
    ...(d.reason !== undefined ? { reason: d.reason } : {}),
  };
}

const listName = (namespace: string, agent: string) => `deliveries/${namespace}/${agent}`;

export function encodeDeliveryContinue(namespace: string, agent: string, before: number): string {
  return Buffer.from(JSON.stringify({ l: listName(namespace, agent), b: before })).toString("base64url");
}

/** The position a `continue` names; 400 for anything else (another list, not one of ours). */
export function decodeDeliveryContinue(token: string, namespace: string, agent: string): number {
  const bad = () => new BadRequestError("continue: not a continue token of this list (use the metadata.continue of this agent's DeliveryList)");
  if (token.length > 512 || !/^[A-Za-z0-9_-]+$/.test(token)) throw bad();
  let p: { l?: unknown; b?: unknown };
  try {
    p = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw bad();
  }
  if (p === null || typeof p !== "object" || p.l !== listName(namespace, agent) || !Number.isSafeInteger(p.b) || (p.b as number) < 1) throw bad();
  return p.b as number;
}

function limitOf(text: string | null): number {
  if (text === null || text === "") return DEFAULT_DELIVERIES_PAGE;
  if (!/^\d{1,9}$/.test(text) || Number(text) < 1 || Number(text) > MAX_DELIVERIES_PAGE)
    throw new BadRequestError(`limit must be a whole number from 1 to ${MAX_DELIVERIES_PAGE} (got "${text.slice(0, 20)}")`);
  return Number(text);
}

export function deliveryRoutes(deps: { agents: Pick<AgentService, "find">; tokens: TokenService; deliveries?: Pick<DeliveryLog, "list"> }) {
  const { agents, tokens } = deps;
  return new Elysia({ name: "deliveries" }).get(
    "/apis/pai.io/v1/namespaces/:namespace/agents/:name/deliveries",
    async ({ params, request }) => {
      const header = request.headers.get("authorization");
      requirePrincipal(tokens, header);
      const namespace = checkLabel("namespace", params.namespace);
      const name = checkLabel("agent", params.name);
      requireNamespace(tokens, header, namespace);
      if (!agents.find(namespace, name)) throw notFound(AGENTS, name);
      const q = new URL(request.url).searchParams;
      const limit = limitOf(q.get("limit"));
      const token = q.get("continue");
      const before = token ? decodeDeliveryContinue(token, namespace, name) : undefined;
      const page = deps.deliveries ? await deps.deliveries.list(namespace, name, { limit, before }) : { items: [] as StoredDelivery[], next: undefined };
      return {
        apiVersion: API_VERSION,
        kind: "DeliveryList",
        metadata: page.next !== undefined ? { continue: encodeDeliveryContinue(namespace, name, page.next) } : {},
        items: page.items.map(deliveryItem),
      };
    },
    {
      params: NamedParams,
      detail: {
        tags: ["Agents"],
        summary: "An agent's delivery log, newest first: each webhook request to it, accepted or refused, with its answer (admin token, or a token of the namespace)",
      },
    },
  );
}
