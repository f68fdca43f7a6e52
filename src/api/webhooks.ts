/**
 * Webhook URLs: /webhooks/{namespace}/{name}/{token}. No Pai access token: the URL token is the
 * credential. POST starts a session (fire-and-forget, or `"wait"` for the reply); GET is the
 * verification ping senders make before activating a URL. The body is read raw, so Linear and
 * GitHub signatures are checked over the exact bytes sent.
 */
import { Elysia } from "elysia";
import type { WebhookService } from "../service/webhooks";
import { jsonResponse } from "./status";

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

export function webhookRoutes(deps: { webhooks: WebhookService }) {
  const { webhooks } = deps;
  return new Elysia({ name: "webhooks" })
    .get(
      "/webhooks/:namespace/:name/:token",
      async ({ params, request, server }) =>
        webhooks.invoke({ ...params, method: "GET", headers: request.headers, body: "", peer: server?.requestIP(request)?.address ?? "" }),
      { detail: { tags, summary: "Verification ping: 200 {ok: true} for a valid token; starts nothing", security: [] } },
    )
    .post(
      "/webhooks/:namespace/:name/:token",
      async ({ params, request, server }) => {
        const body = await request.text();
        const reply = await webhooks.invoke({
          ...params,
          method: "POST",
          headers: request.headers,
          body,
          peer: server?.requestIP(request)?.address ?? "",
          signal: request.signal,
          // A waiting caller gets no bytes until the session ends (up to 600 s, a bound of its
          // own): lift Bun's idle timeout for this request only.
          onWait: () => server?.timeout(request, 0),
        });
        return jsonResponse(reply);
      },
      {
        parse: "none",
        detail: { tags, summary: "Start a session (fire-and-forget, or wait for the reply)", security: [], requestBody: requestBody as never },
      },
    );
}
