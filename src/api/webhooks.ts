/**
 * Webhook URLs: /webhooks/{namespace}/{name}/{token}. The URL token is the credential, compared in
 * constant time with the one in the agent's Secret. GET is the verification ping senders make
 * before activating a URL: 200 {"ok": true}, 401 for a wrong token, 404 for an unknown agent or one
 * without a webhook trigger. No session is created by a GET.
 */
import { Elysia, t } from "elysia";
import { hasWebhook } from "../domain/agent";
import { NotFoundError, UnauthorizedError } from "../domain/errors";
import { webhookSecretName } from "../domain/names";
import { safeEqual } from "../lib/crypto";
import type { AgentService } from "../service/agents";
import type { SecretService } from "../service/secrets";

const tags = ["Webhooks"];
const WebhookParams = t.Object({ namespace: t.String(), name: t.String(), token: t.String() });

export function webhookRoutes(deps: { agents: AgentService; secrets: SecretService }) {
  const { agents, secrets } = deps;

  /** Finds the agent the URL names and checks the token; throws 404 or 401. */
  function authorise(namespace: string, name: string, token: string) {
    const found = agents.find(namespace, name);
    if (!found || !hasWebhook(found.agent.spec)) throw new NotFoundError(`no agent "${name}" with a webhook trigger in namespace "${namespace}"`);
    const expected = secrets.find(namespace, webhookSecretName(name))?.data.token;
    // Compare against a same-length dummy when the secret is missing, so timing says nothing.
    if (!safeEqual(token, expected ?? "0".repeat(64)) || !expected) throw new UnauthorizedError("invalid webhook token");
    return found.agent;
  }

  return new Elysia({ name: "webhooks" }).get(
    "/webhooks/:namespace/:name/:token",
    ({ params }) => {
      authorise(params.namespace, params.name, params.token);
      return { ok: true };
    },
    { params: WebhookParams, detail: { tags, summary: "Verification ping: checks the token, starts nothing" } },
  );
}
