/**
 * Webhook URLs: /webhooks/{namespace}/{name}/{token}, served from one entrance, a native Bun route
 * (Bun dispatches it without Elysia's per-request work; the path with a trailing slash is the same
 * route). No Pai access token: the URL token is the credential. POST starts a session
 * (fire-and-forget, or `"wait"` for the reply); GET is the verification ping senders make before
 * activating a URL. The body is read only after the URL and the caller's address passed, as raw
 * bytes, so Linear and GitHub signatures are checked over exactly what was sent.
 */
import type { Server } from "bun";
import { WebhookBody } from "../domain/webhook";
import type { Logger } from "../lib/log";
import type { Metrics } from "../lib/metrics";
import type { WebhookRequest, WebhookService } from "../service/webhooks";
import { readBody, type BodyBudget } from "./body";
import { errorResponse, jsonResponse } from "./status";

export const WEBHOOK_PATH = "/webhooks/:namespace/:name/:token";
type Params = { namespace: string; name: string; token: string };
type Method = "GET" | "POST";

export interface WebhookRouteDeps {
  webhooks: WebhookService;
  metrics: Metrics;
  log: Logger;
  maxBodyBytes: number;
  bodyBudget: BodyBudget;
}

const noop = () => {};

/** One webhook request as the service sees it (one object per request, its methods on the prototype). */
class WebhookCall implements WebhookRequest {
  readonly namespace: string;
  readonly name: string;
  readonly token: string;
  readonly headers: Headers;
  /** Gives the body's share of the budget back; idempotent. */
  release: () => void = noop;

  constructor(
    readonly method: Method,
    private readonly request: Request & { params: Params },
    private readonly server: Server<unknown>,
    private readonly deps: Pick<WebhookRouteDeps, "maxBodyBytes" | "bodyBudget">,
  ) {
    const { namespace, name, token } = request.params;
    this.namespace = namespace;
    this.name = name;
    this.token = token;
    this.headers = request.headers;
  }

  async body(): Promise<Uint8Array> {
    const read = await readBody(this.request, this.deps.maxBodyBytes, this.deps.bodyBudget);
    this.release = read.release;
    return read.bytes;
  }

  peer(): string {
    return this.server.requestIP(this.request)?.address ?? "";
  }

  // A waiting caller gets no bytes until the session ends (up to 600 s, a bound of its own): lift
  // Bun's idle timeout for this request only, and learn when the caller hangs up. The body is no
  // longer needed by then, so its share of the budget goes back first.
  onWait(): AbortSignal {
    this.release();
    this.server.timeout(this.request, 0);
    return this.request.signal;
  }
}

/** The webhook routes for `Bun.serve({ routes })`, with and without a trailing slash. */
export function webhookRoutes(deps: WebhookRouteDeps) {
  const count = deps.metrics.counter("pai_webhook_requests_total", "Webhook requests by method and HTTP status code.");
  // One bound counter per method and status, made on first use.
  const bound = { GET: new Map<number, () => void>(), POST: new Map<number, () => void>() };
  const countAnswer = (method: Method, status: number) => {
    let bump = bound[method].get(status);
    if (bump === undefined) bound[method].set(status, (bump = count.with({ method, code: String(status) })));
    bump();
  };
  const handle = async (method: Method, request: Request & { params: Params }, server: Server<unknown>): Promise<Response> => {
    const call = new WebhookCall(method, request, server, deps);
    let res: Response;
    try {
      res = jsonResponse(await deps.webhooks.invoke(call));
    } catch (err) {
      res = errorResponse(err, request, deps.log);
    } finally {
      call.release();
    }
    countAnswer(method, res.status);
    return res;
  };
  const methods = {
    GET: (request: Request & { params: Params }, server: Server<unknown>) => handle("GET", request, server),
    POST: (request: Request & { params: Params }, server: Server<unknown>) => handle("POST", request, server),
  };
  // Elysia drops route keys that end in "/", so the trailing slash is matched by a wildcard that
  // accepts exactly one "/" after the token and nothing more.
  const slash = (method: Method) => (request: Request & { params: Params }, server: Server<unknown>) =>
    /^\/webhooks\/[^/]+\/[^/]+\/[^/]+\/$/.test(new URL(request.url).pathname)
      ? handle(method, request, server)
      : errorResponse(undefined, request, deps.log, "NOT_FOUND");
  return { [WEBHOOK_PATH]: methods, [`${WEBHOOK_PATH}/*`]: { GET: slash("GET"), POST: slash("POST") } };
}

const tags = ["Webhooks"];
const parameters = ["namespace", "name", "token"].map((name) => ({
  name,
  in: "path",
  required: true,
  schema: { type: "string" },
  ...(name === "token" ? { description: "The agent's webhook token (64 hex characters): the URL is the credential." } : {}),
}));
const statusRef = { $ref: "#/components/schemas/Status" };
const errors = (codes: Record<number, string>) =>
  Object.fromEntries(Object.entries(codes).map(([code, description]) => [code, { description, content: { "application/json": { schema: statusRef } } }]));

const SessionStarted = {
  type: "object",
  required: ["session", "agentDefinition"],
  properties: {
    session: { type: "string", example: "my-agent-wh-a1b2c3d4" },
    agentDefinition: { type: "string", example: "my-agent" },
    response: { type: "string", nullable: true, description: "wait mode: the agent's last agent.message text" },
    phase: { type: "string", enum: ["Complete", "Error", "Cancelled", "Running", "Pending"], description: "wait mode only" },
    pollUrl: { type: "string", description: "wait mode, when the wait ran out" },
    timedOut: { type: "boolean", description: "wait mode, when the wait ran out" },
  },
};

/** The webhook paths of the OpenAPI document: the body schema is `WebhookBody`, the decoder's own. */
export function webhookOpenApiPaths() {
  const { $id: _id, ...body } = WebhookBody as unknown as Record<string, unknown>;
  return {
    "/webhooks/{namespace}/{name}/{token}": {
      get: {
        tags,
        summary: "Verification ping: 200 {ok: true} for a valid token; starts nothing",
        security: [],
        parameters,
        responses: {
          200: { description: "The token is valid", content: { "application/json": { schema: { type: "object", properties: { ok: { type: "boolean" } } } } } },
          ...errors({ 401: "Invalid token", 403: "The caller's address is outside allowCIDRs", 404: "No such agent, or it has no webhook trigger" }),
        },
      },
      post: {
        tags,
        summary: "Start a session (fire-and-forget, or wait for the reply)",
        security: [],
        parameters,
        requestBody: {
          content: { "application/json": { schema: body }, "application/x-www-form-urlencoded": { schema: body } },
        },
        responses: {
          200: { description: "The session is committed (and, in wait mode, finished or still going)", content: { "application/json": { schema: SessionStarted } } },
          ...errors({
            400: "Malformed body, a field of the wrong type, nesting too deep, or a refused env name",
            401: "Invalid token or signature",
            403: "The caller's address is outside allowCIDRs",
            404: "No such agent, or it has no webhook trigger",
            413: "Body larger than --max-body-bytes",
            415: "Content-Type or charset not supported",
            429: "Too many sessions waiting (maxPending, or the server-wide cap); see Retry-After",
            503: "The server cannot take the body now; nothing was accepted, retry (Retry-After)",
          }),
        },
      },
    },
  };
}
