/**
 * Webhook URLs: /webhooks/{namespace}/{name}/{token}. No Pai access token: the URL token is the
 * credential. POST starts a session (fire-and-forget, or `"wait"` for the reply); GET is the
 * verification ping senders make before activating a URL. The body is read raw, so Linear and
 * GitHub signatures are checked over the exact bytes sent.
 */
import { Elysia } from "elysia";
import type { Server } from "bun";
import type { Logger } from "../lib/log";
import type { Metrics } from "../lib/metrics";
import type { WebhookService } from "../service/webhooks";
import { errorResponse, jsonResponse } from "./status";

export const WEBHOOK_PATH = "/webhooks/:namespace/:name/:token";
type Params = { namespace: string; name: string; token: string };

const tags = ["Webhooks"];

const requestBody: { content: Record<string, { schema: object }> } = {
  content: {
    "application/json": {
      schema: {
        type: "object",
        properties: {
          title: { type: "string", description: "Initial prompt. Required when wait is set." },
          env: { type: "array", items: { type: "object", properties: { name: { type: "string" }, value: { type: "string" } } }, description: "Session-specific env var overrides" },
          wait: { oneOf: [{ type: "integer", maximum: 600 }, { type: "boolean" }, { type: "null" }], description: "true = 300 s, integer = seconds (max 600); omit/false/0 = fire-and-forget" },
          callbackUrl: { type: "string", description: "POST {session, agentDefinition, response, phase} here when the session ends (Standard Webhooks signed)" },
        },
      },
    },
  },
};

/** Handles one webhook request: the same code under Elysia and as a native Bun route. */
export function webhookHandler(webhooks: WebhookService) {
  return async (method: "GET" | "POST", params: Params, request: Request, server: Server<unknown> | null | undefined) => {
    const body = method === "POST" ? await request.text() : "";
    const reply = await webhooks.invoke({
      ...params,
      method,
      headers: request.headers,
      body,
      peer: () => server?.requestIP(request)?.address ?? "",
      // A waiting caller gets no bytes until the session ends (up to 600 s, a bound of its own):
      // lift Bun's idle timeout for this request only, and learn when the caller hangs up.
      onWait: () => {
        server?.timeout(request, 0);
        return request.signal;
      },
    });
    return jsonResponse(reply);
  };
}

/**
 * The hot path as a native Bun route, which Bun dispatches without Elysia's per-request work
 * (+~15% accepts/s in bench/webhooks.ts). The Elysia routes below stay for the OpenAPI document
 * and for paths Bun's router does not match exactly (a trailing slash).
 */
export function nativeWebhookRoutes(webhooks: WebhookService, log: Logger, metrics: Metrics) {
  const handle = webhookHandler(webhooks);
  const count = countRequests(metrics);
  const route = (method: "GET" | "POST") => async (request: Request & { params: Params }, server: Server<unknown>) =>
    count(method, await handle(method, request.params, request, server).catch((err) => errorResponse(err, request, log)));
  return { [WEBHOOK_PATH]: { GET: route("GET"), POST: route("POST") } };
}

/** pai_webhook_requests_total{method, code}: counted where the answer is made. */
const counters = new WeakMap<Metrics, (method: string, res: Response) => Response>();
export function countRequests(metrics: Metrics) {
  let count = counters.get(metrics);
  if (!count) {
    const inc = metrics.counter("pai_webhook_requests_total", "Webhook requests by method and HTTP status code.");
    count = (method, res) => {
      inc({ method, code: String(res.status) });
      return res;
    };
    counters.set(metrics, count);
  }
  return count;
}

export function webhookRoutes(deps: { webhooks: WebhookService; metrics: Metrics; log: Logger }) {
  const run = webhookHandler(deps.webhooks);
  const count = countRequests(deps.metrics);
  const handle = async (method: "GET" | "POST", params: Params, request: Request, server: Server<unknown> | null | undefined) =>
    count(method, await run(method, params, request, server).catch((err) => errorResponse(err, request, deps.log)));
  return new Elysia({ name: "webhooks" })
    .get(WEBHOOK_PATH, ({ params, request, server }) => handle("GET", params, request, server), {
      detail: { tags, summary: "Verification ping: 200 {ok: true} for a valid token; starts nothing", security: [] },
    })
    .post(WEBHOOK_PATH, ({ params, request, server }) => handle("POST", params, request, server), {
      parse: "none",
      detail: { tags, summary: "Start a session (fire-and-forget, or wait for the reply)", security: [], requestBody: requestBody as never },
    });
}
