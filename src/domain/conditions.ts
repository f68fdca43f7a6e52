/** Status conditions, Kubernetes style: one per type, transition time kept while status holds. */
import type { Condition } from "./agent";

export const ConditionType = { Ready: "Ready", WebhookReady: "WebhookReady", Accepted: "Accepted" } as const;
export const ConditionReason = {
  Reconciled: "Reconciled",
  WebhookProvisioned: "WebhookProvisioned",
  WebhookDisabled: "WebhookDisabled",
  InvalidManifest: "InvalidManifest",
} as const;

/** Sets `next` in `list`, keeping `lastTransitionTime` of the previous entry when status did not change. */
export function mergeConditions(previous: Condition[] | undefined, next: Omit<Condition, "lastTransitionTime">[], now: string): Condition[] {
  return next.map((c) => {
    const old = previous?.find((p) => p.type === c.type);
    return { ...c, lastTransitionTime: old && old.status === c.status ? old.lastTransitionTime : now };
  });
}
