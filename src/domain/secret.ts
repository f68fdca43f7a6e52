/**
 * A Secret as the controller, the webhook path and the supervisor see it, wherever it is kept
 * (pai's database or a Kubernetes cluster): values decoded to text, and the uid of the Agent that
 * owns it (its controller owner reference), if any.
 */
export interface Secret {
  namespace: string;
  name: string;
  uid: string;
  type: string;
  labels: Record<string, string> | null;
  annotations: Record<string, string> | null;
  data: Record<string, string>;
  /** The uid of the Agent whose controller this secret is (deleted with it). */
  ownerUid: string | null;
  createdAt: string;
}
