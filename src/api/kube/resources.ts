/**
 * The resources pai serves the Kubernetes way, described once: discovery lists them, errors name
 * them (`agents.pai.io "x" not found`), list and Table responses take their kinds from here.
 */
import { InvalidError, NotFoundError, ConflictError, StaleError, type FieldProblem } from "../../domain/errors";

export interface KubeResource {
  /** "" for the core group (Secrets). */
  group: string;
  version: "v1";
  plural: string;
  singular: string;
  kind: string;
  /** false for cluster-wide resources (namespaces): no namespace in their URLs or names. */
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  verbs: string[];
}

export const PAI_GROUP = "pai.io";

export const AGENTS: KubeResource = {
  group: PAI_GROUP,
  version: "v1",
  plural: "agents",
  singular: "agent",
  kind: "Agent",
  namespaced: true,
  shortNames: ["ag"],
  // `kubectl get pai` lists everything pai defines; `kubectl get all` shows the agents too.
  categories: ["pai", "all"],
  verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
};

export const SESSIONS: KubeResource = {
  group: PAI_GROUP,
  version: "v1",
  plural: "sessions",
  singular: "session",
  kind: "Session",
  namespaced: true,
  shortNames: ["sess"],
  categories: ["pai"],
  // Started with create (what `pai run` does); runs are not edited or deleted through the API.
  verbs: ["create", "get", "list"],
};

export const ACCESS_TOKENS: KubeResource = {
  group: PAI_GROUP,
  version: "v1",
  plural: "accesstokens",
  singular: "accesstoken",
  kind: "PaiAccessToken",
  namespaced: true,
  verbs: ["create", "delete", "list"],
};

export const SECRETS: KubeResource = {
  group: "",
  version: "v1",
  plural: "secrets",
  singular: "secret",
  kind: "Secret",
  namespaced: true,
  verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
};

/**
 * Read-only and derived: a namespace exists while something lives in it (and `default` always).
 * Served so namespace pickers (k9s, Lens) and `kubectl get ns` work.
 */
export const NAMESPACES: KubeResource = {
  group: "",
  version: "v1",
  plural: "namespaces",
  singular: "namespace",
  kind: "Namespace",
  namespaced: false,
  shortNames: ["ns"],
  verbs: ["get", "list"],
};

export const apiVersionOf = (r: KubeResource) => (r.group ? `${r.group}/${r.version}` : r.version);

/** `agents.pai.io`, `secrets`: how Kubernetes names a resource in messages. */
export const qualified = (r: KubeResource) => (r.group ? `${r.plural}.${r.group}` : r.plural);

function withDetails<E extends { details?: object }>(err: E, r: KubeResource, name: string, kind = r.plural): E {
  err.details = { name, ...(r.group ? { group: r.group } : {}), kind };
  return err;
}

export const notFound = (r: KubeResource, name: string) => withDetails(new NotFoundError(`${qualified(r)} "${name}" not found`), r, name);

export const alreadyExists = (r: KubeResource, name: string, hint = "") =>
  withDetails(new ConflictError(`${qualified(r)} "${name}" already exists${hint}`), r, name);

/** A stale resourceVersion (or another failed precondition): the words kubectl users know. */
export const stale = (r: KubeResource, name: string, why = "the object has been modified; please apply your changes to the latest version and try again") =>
  withDetails(new StaleError(`Operation cannot be fulfilled on ${qualified(r)} "${name}": ${why}`), r, name);

/** 422 Invalid, as kubectl prints it: `The Agent "x" is invalid: * spec.models[0]: …`. */
export function invalid(r: KubeResource, name: string, problems: FieldProblem[]): InvalidError {
  const err = new InvalidError(`${r.kind}${r.group ? `.${r.group}` : ""} "${name}"`, problems);
  return withDetails(err, r, name, r.kind);
}
