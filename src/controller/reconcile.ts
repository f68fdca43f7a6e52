/**
 * The pure half of the controller: from an agent and the secret observed for it, compute what to
 * do with the secret and what the status must say. No I/O, no clock, no randomness of its own.
 */
import { hasWebhook, type Agent, type AgentStatus } from "../domain/agent";
import { ConditionReason, ConditionType, mergeConditions } from "../domain/conditions";
import type { Secret } from "../domain/secret";
import { WEBHOOK_SECRET_TYPE } from "../service/secrets";

const TOKEN = /^[0-9a-f]{64}$/;

/** `create`: a new token and callback secret; `addCallbackSecret`: keep the token, add the missing callback secret. */
export type SecretAction = { kind: "none" } | { kind: "create" } | { kind: "delete" } | { kind: "addCallbackSecret" };

export interface Plan {
  secret: SecretAction;
  status: AgentStatus;
}

/** Is this the controller's own, intact webhook secret for `agent`? */
export function isValidWebhookSecret(agent: Agent, secret: Secret | undefined): secret is Secret {
  return (
    !!secret &&
    secret.type === WEBHOOK_SECRET_TYPE &&
    secret.ownerUid === agent.metadata.uid &&
    TOKEN.test(secret.data.token ?? "")
  );
}

export function webhookUrl(publicUrl: string, agent: Agent, token: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/webhooks/${agent.metadata.namespace}/${agent.metadata.name}/${token}`;
}

/**
 * `token` is the token the secret will hold after the action (the new one when creating).
 */
export function plan(input: {
  agent: Agent;
  secret: Secret | undefined;
  publicUrl: string;
  now: string;
  newToken: () => string;
  /** Why the agent's latest manifest was refused (the last good version keeps running). */
  problem?: string;
}): Plan & { token?: string } {
  const { agent, secret, publicUrl, now } = input;
  // Failure is data: a refused edit shows on the agent it was meant for.
  const refused = input.problem
    ? [{ type: ConditionType.Accepted, status: "False" as const, reason: ConditionReason.InvalidManifest, message: `${input.problem} (still running generation ${agent.metadata.generation})`, observedGeneration: agent.metadata.generation }]
    : [];
  const wanted = hasWebhook(agent.spec);
  const valid = isValidWebhookSecret(agent, secret);
  const owned = !!secret && secret.ownerUid === agent.metadata.uid;
  const generation = agent.metadata.generation;

  if (!wanted) {
    return {
      secret: owned ? { kind: "delete" } : { kind: "none" },
      status: {
        observedGeneration: generation,
        conditions: mergeConditions(
          agent.status.conditions,
          [{ type: ConditionType.Ready, status: "True", reason: ConditionReason.Reconciled, message: "Agent is ready; it has no webhook trigger.", observedGeneration: generation }, ...refused],
          now,
        ),
      },
    };
  }

  const token = valid ? secret.data.token! : input.newToken();
  const conditions = mergeConditions(
    agent.status.conditions,
    [
      { type: ConditionType.Ready, status: "True", reason: ConditionReason.Reconciled, message: "Agent is ready.", observedGeneration: generation },
      {
        type: ConditionType.WebhookReady,
        status: "True",
        reason: ConditionReason.WebhookProvisioned,
        message: `Webhook token is in Secret ${agent.metadata.namespace}/pai-webhook-${agent.metadata.name}.`,
        observedGeneration: generation,
      },
      ...refused,
    ],
    now,
  );
  return {
    secret: !valid ? { kind: "create" } : secret.data.callbackSecret ? { kind: "none" } : { kind: "addCallbackSecret" },
    token,
    status: { webhookUrl: webhookUrl(publicUrl, agent, token), observedGeneration: generation, conditions },
  };
}
