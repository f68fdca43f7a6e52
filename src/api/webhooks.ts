/**
 * Webhook URLs: /webhooks/{namespace}/{name}/{token}, served from one entrance, a native Bun route
 * (Bun dispatches it without Elysia's per-request work; the path with a trailing slash is the same
 * route). No Pai access token: the URL token is the credential. POST starts a session
 * (fire-and-forget, or `"wait"` for the reply); GET is the verification ping senders make before
 * activating a URL. The body is read only after the URL and the caller's address passed, as raw
 * bytes, so Linear and GitHub signatures are checked over exactly what was sent.
 */
import type { Server } from "bun";
import { DomainError } from "../domain/errors";
import { deliveryId, detectSender } from "../domain/senders";
import { WebhookBody } from "../domain/webhook";
import type { Logger } from "../lib/log";
import type { Metrics } from "../lib/metrics";
import type { DeliveryLog } from "../service/deliveries";
import type { WebhookFacts, WebhookRequest, WebhookService } from "../service/webhooks";
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
  /** Where answers to requests naming an existing agent are recorded (none: not recorded). */
  deliveries?: Pick<DeliveryLog, "record">;
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
  readonly facts: WebhookFacts | undefined;
  private recorded = false;

  constructor(
    readonly method: Method,
    private readonly request: Request & { params: Params },
    private readonly server: Server<unknown>,
    private readonly deps: Pick<WebhookRouteDeps, "maxBodyBytes" | "bodyBudget" | "deliveries">,
  ) {
    const { namespace, name, token } = request.params;
    this.namespace = namespace;
    this.name = name;
    this.token = token;
    this.headers = request.headers;
    this.facts = deps.deliveries ? { found: false } : undefined;
  }

  /**
   * Records the answer in the delivery log, once, if the request named an existing agent. A
   * waiting caller's delivery is recorded when the wait begins: its session is committed and its
   * answer will be a 200 whatever happens next.
   */
  answered(code: number, error?: unknown) {
    const facts = this.facts;
    if (!facts?.found || this.recorded) return;
    this.recorded = true;
    const h = this.headers;
    this.deps.deliveries!.record({
      namespace: this.namespace,
      agent: this.name,
      sender: detectSender(h),
      event: facts.event ?? h.get("x-github-event") ?? h.get("linear-event") ?? undefined,
      delivery: facts.delivery ?? deliveryHeader(h),
      code,
      session: facts.session,
      reason: code >= 400 ? reasonOf(error, code) : undefined,
    });
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
    this.answered(200);
    this.release();
    this.server.timeout(this.request, 0);
    return this.request.signal;
  }
}

/** The delivery id a refused request carried (the service reads it only once the request passed); none if it was too long. */
function deliveryHeader(h: Headers): string | undefined {
  try {
    return deliveryId(h);
  } catch {
    return undefined;
  }
}

/** The message a refused caller got (errorResponse's, without building the response again). */
function reasonOf(error: unknown, code: number): string {
  if (error instanceof DomainError) return error.message;
  if (code === 503) return "the server cannot store this right now; nothing was accepted, retry later";
  if (code >= 500) return "internal error; see the server log";
  return (error as Error | undefined)?.message ?? `HTTP ${code}`;
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
    let error: unknown;
    try {
      res = jsonResponse(await deps.webhooks.invoke(call));
    } catch (err) {
      error = err;
      res = errorResponse(err, request, deps.log);
    } finally {
      call.release();
    }
    countAnswer(method, res.status);
    call.answered(res.status, error);
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
