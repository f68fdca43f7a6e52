/**
 * The Kubernetes resources pai serves, with the schemas of their objects and lists, for the
 * per-group-version OpenAPI documents (/openapi/v3/…) and the CRD. Names, verbs, short names and
 * categories are discovery's (src/api/kube/resources.ts), so the three cannot disagree.
 */
import type { TSchema } from "@sinclair/typebox";
import * as kube from "../kube/resources";
import { LIST_QUERY, NAMESPACE_LIST_QUERY, SESSION_LIST_QUERY, WRITE_QUERY } from "./operations";
import { Agent, AgentList, Namespace, NamespaceList, PaiAccessToken, PaiAccessTokenList, Secret, SecretList, Session, SessionList } from "./schemas";

export interface KubeResource extends kube.KubeResource {
  listKind: string;
  schema: TSchema;
  listSchema: TSchema;
  /** The query parameters its lists read. */
  listQuery: Record<string, TSchema>;
  /** The query parameters its writes read (fieldValidation, dryRun, …); none for kinds that take none. */
  writeQuery: Record<string, TSchema>;
  /** Has a status subresource (…/{name}/status), documented where the server routes it. */
  status?: boolean;
}

type Extra = Pick<KubeResource, "schema" | "listSchema" | "listQuery" | "writeQuery" | "status">;
const withSchemas = (r: kube.KubeResource, extra: Extra): KubeResource => ({ ...r, listKind: `${r.kind}List`, ...extra });

export const AGENTS = withSchemas(kube.AGENTS, { schema: Agent, listSchema: AgentList, listQuery: LIST_QUERY, writeQuery: WRITE_QUERY, status: true });
export const SESSIONS = withSchemas(kube.SESSIONS, { schema: Session, listSchema: SessionList, listQuery: SESSION_LIST_QUERY, writeQuery: {} });
export const ACCESS_TOKENS = withSchemas(kube.ACCESS_TOKENS, { schema: PaiAccessToken, listSchema: PaiAccessTokenList, listQuery: {}, writeQuery: {} });
export const SECRETS = withSchemas(kube.SECRETS, { schema: Secret, listSchema: SecretList, listQuery: LIST_QUERY, writeQuery: WRITE_QUERY });

export const NAMESPACES = withSchemas(kube.NAMESPACES, { schema: Namespace, listSchema: NamespaceList, listQuery: NAMESPACE_LIST_QUERY, writeQuery: {} });

export const RESOURCES: readonly KubeResource[] = [AGENTS, SESSIONS, ACCESS_TOKENS, SECRETS, NAMESPACES];

/** The API path of a group-version: `api/v1` for the core group, `apis/<group>/<version>` otherwise. */
export const groupVersionPath = (group: string, version: string) => (group ? `apis/${group}/${version}` : `api/${version}`);
