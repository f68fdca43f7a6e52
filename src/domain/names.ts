/** Kubernetes-style names: namespaces, agents and secrets are DNS-1123 labels. */

export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const DNS_LABEL_MAX = 63;

/** Returns why `value` is not a DNS-1123 label, or null when it is one. */
export function dnsLabelProblem(value: unknown): string | null {
  if (typeof value !== "string" || value.length === 0) return "must be a non-empty string";
  if (value.length > DNS_LABEL_MAX) return `must be at most ${DNS_LABEL_MAX} characters (got ${value.length})`;
  if (!DNS_LABEL.test(value))
    return `"${value}" is not a DNS-1123 label: use lower-case letters, digits and '-', starting and ending with a letter or digit`;
  return null;
}

export const DEFAULT_NAMESPACE = "default";

/** The Secret the controller keeps the webhook token in. */
export const webhookSecretName = (agent: string) => `pai-webhook-${agent}`;
