/**
 * What the route table cannot say about each operation: its operationId (the method name a client
 * generator makes of it), what it answers with, which errors it can give, and the type of query
 * parameters that the handler reads as text and checks itself (`limit`, `after`, …). Keyed by
 * `METHOD /path/{param}` as in the document. An operation missing here still appears in the
 * document, with a derived id and a generic answer; test/e2e/openapi.test.ts fails on it.
 */
import { Type as T, type TSchema } from "@sinclair/typebox";

export interface OperationInfo {
  operationId: string;
  /** Success answers: status → component name, or a media type → component name. */
  ok: Record<number, string | { description: string; content?: Record<string, string> }>;
  /** Error statuses this operation can answer (each a Status). */
  errors: number[];
  /** Query parameters: their documented type, also for those the route declares as text. */
  query?: Record<string, TSchema>;
  /**
   * The request body: media type → component. A component not in schemas.ts is the route's own
   * body schema (its `body` hook, or its `detail.requestBody`), named here.
   */
  body?: { content: Record<string, string>; required: boolean; example?: unknown };
}

/** What each error status means across the API. */
export const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: "The request is malformed: a bad name, parameter or body (Status reason BadRequest)",
  401: "No bearer token, or an invalid or revoked one (Unauthorized)",
  403: "The token may not do this: a namespace token where the admin token is needed, or another namespace's token (Forbidden)",
  404: "No such object (NotFound)",
  405: "Not something this resource does (MethodNotAllowed), e.g. watching sessions",
  409: "An object of that name exists (AlreadyExists), or the resourceVersion sent is stale (Conflict)",
  410: "The resourceVersion to watch from is too old (Expired): list again and watch from the list's",
  413: "The body is larger than --max-body-bytes (RequestEntityTooLarge)",
  415: "The body's Content-Type is not accepted (UnsupportedMediaType)",
  422: "The object breaks the schema (Invalid): details.causes lists every field at fault",
  429: "Too many sessions are waiting (TooManyRequests); see Retry-After",
  503: "The server cannot take this now; nothing was accepted, retry (Retry-After)",
};

/** Management bodies are read as JSON or YAML (src/api/params.ts). */
const manifest = (component: string) => ({ "application/json": component, "application/yaml": component });
/**
 * PATCH bodies by media type; apply-patch+yaml is the whole object as the applier wants it. A
 * strategic merge patch is read as a merge patch (pai's objects have no lists merged by key).
 */
const patch = (object: string) => ({
  "application/merge-patch+json": "Patch",
  "application/strategic-merge-patch+json": "Patch",
  "application/json-patch+json": "JsonPatch",
  "application/apply-patch+yaml": object,
});

const fieldValidation = T.Union([T.Literal("Strict"), T.Literal("Warn"), T.Literal("Ignore")], {
  description: "Unknown fields: Strict (the default) refuses them (422 Invalid); Warn drops them with a Warning header; Ignore drops them",
});
/** The query of Kubernetes list calls (and watches, which are lists with watch=true). */
export const LIST_QUERY: Record<string, TSchema> = {
  labelSelector: T.String({ description: "Only objects whose labels match, e.g. app=web,tier!=db" }),
  fieldSelector: T.String({ description: "Only objects whose fields match: metadata.name=NAME, metadata.namespace=NS" }),
  limit: T.Integer({ minimum: 0, description: "At most this many items (0: all); metadata.continue then reads the next page" }),
  continue: T.String({ description: "The metadata.continue of the previous page" }),
  resourceVersion: T.String({ description: "With watch: the revision to watch from (a list's metadata.resourceVersion)" }),
  resourceVersionMatch: T.Union([T.Literal("NotOlderThan"), T.Literal("Exact")], { description: "How resourceVersion applies to a list" }),
  watch: T.Boolean({ description: "Stream changes (application/json;stream=watch) instead of listing" }),
  allowWatchBookmarks: T.Boolean({ description: "With watch: also send BOOKMARK events" }),
  timeoutSeconds: T.Integer({ minimum: 0, description: "With watch: end the stream after this many seconds" }),
};
/** Sessions page and select, but are not watched (follow one session's events instead). */
export const SESSION_LIST_QUERY: Record<string, TSchema> = {
  labelSelector: LIST_QUERY.labelSelector!,
  fieldSelector: T.String({ description: "Only sessions whose fields match: metadata.name, metadata.namespace, phase, agentDefinition (e.g. phase=Running)" }),
  limit: T.Integer({ minimum: 0, description: "At most this many sessions (0 or none: 100); metadata.continue then reads the next page" }),
  continue: LIST_QUERY.continue!,
};
/** Namespaces are listed and selected, not watched. */
export const NAMESPACE_LIST_QUERY: Record<string, TSchema> = {
  labelSelector: LIST_QUERY.labelSelector!,
  fieldSelector: T.String({ description: "Only namespaces whose fields match: metadata.name, status.phase" }),
  limit: LIST_QUERY.limit!,
  continue: LIST_QUERY.continue!,
};
export const WRITE_QUERY: Record<string, TSchema> = {
  fieldValidation,
  fieldManager: T.String({ description: "The name of the writer (server-side apply)" }),
  dryRun: T.String({ description: "All (the only value): check the request and answer what would be stored, change nothing" }),
};
export const PATCH_QUERY: Record<string, TSchema> = {
  ...WRITE_QUERY,
  force: T.Boolean({ description: "Server-side apply: take fields other managers own" }),
};

export const DELETE_QUERY: Record<string, TSchema> = { dryRun: WRITE_QUERY.dryRun! };
const deleteBody = { content: { "application/json": "DeleteOptions" }, required: false };

/** `limit`/`continue` of an agent's delivery log: read as text by the handler and checked there (src/api/deliveries.ts). */
export const MAX_DELIVERIES_PAGE = 1000;
const DELIVERIES_QUERY: Record<string, TSchema> = {
  limit: T.Integer({ minimum: 1, maximum: MAX_DELIVERIES_PAGE, default: 100, description: `At most this many entries (1-${MAX_DELIVERIES_PAGE}, default 100)` }),
  continue: T.String({ description: "The metadata.continue of the previous page: the entries older than its last" }),
};

/** `limit`/`after` of a session's events: read as text by the handler and checked there (src/api/sessions.ts). */
export const MAX_EVENTS_PAGE = 1000;
const EVENTS_QUERY: Record<string, TSchema> = {
  after: T.Integer({ minimum: 0, default: 0, description: "Cursor: only events with an id greater than this" }),
  limit: T.Integer({ minimum: 1, maximum: MAX_EVENTS_PAGE, default: MAX_EVENTS_PAGE, description: `At most this many events (1-${MAX_EVENTS_PAGE})` }),
};

/**
 * A list's answer. With watch=true it is instead a stream of WatchEvent lines
 * (application/json;stream=watch); that second media type is said in words, not declared, since
 * generated clients would then type every list answer as "a list or a watch event".
 */
const list = (component: string) => ({
  200: { description: "The list. With watch=true: a stream of WatchEvent objects, one JSON object per line (Content-Type application/json;stream=watch)", content: { "application/json": component } },
});
const created = (component: string) => ({ 201: component });
const AGENTS = "/apis/pai.io/v1/namespaces/{namespace}/agents";
const SECRETS = "/api/v1/namespaces/{namespace}/secrets";

export const OPERATIONS: Record<string, OperationInfo> = {
  // Agents
  "GET /apis/pai.io/v1/agents": { operationId: "listAgentsForAllNamespaces", ok: list("AgentList"), errors: [400, 401, 403, 410], query: LIST_QUERY },
  [`GET ${AGENTS}`]: { operationId: "listAgents", ok: list("AgentList"), errors: [400, 401, 403, 410], query: LIST_QUERY },
  [`POST ${AGENTS}`]: {
    operationId: "createAgent",
    ok: created("Agent"),
    errors: [400, 401, 403, 409, 413, 415, 422, 503],
    query: WRITE_QUERY,
    body: { content: manifest("AgentManifest"), required: true },
  },
  [`GET ${AGENTS}/{name}`]: { operationId: "readAgent", ok: { 200: "Agent" }, errors: [400, 401, 403, 404] },
  [`PUT ${AGENTS}/{name}`]: {
    operationId: "replaceAgent",
    ok: { 200: "Agent", 201: "Agent" },
    errors: [400, 401, 403, 409, 413, 415, 422, 503],
    query: WRITE_QUERY,
    body: { content: manifest("AgentManifest"), required: true },
  },
  [`PATCH ${AGENTS}/{name}`]: {
    operationId: "patchAgent",
    ok: { 200: "Agent", 201: "Agent" },
    errors: [400, 401, 403, 404, 409, 413, 415, 422, 503],
    query: PATCH_QUERY,
    body: { content: patch("AgentManifest"), required: true },
  },
  [`DELETE ${AGENTS}/{name}`]: { operationId: "deleteAgent", ok: { 200: "Agent" }, errors: [400, 401, 403, 404, 409, 503], query: DELETE_QUERY, body: deleteBody },
  [`GET ${AGENTS}/{name}/status`]: { operationId: "readAgentStatus", ok: { 200: "Agent" }, errors: [400, 401, 403, 404] },
  [`PUT ${AGENTS}/{name}/status`]: {
    operationId: "replaceAgentStatus",
    ok: { 200: "Agent" },
    errors: [400, 401, 403, 404, 409, 413, 415, 422, 503],
    query: WRITE_QUERY,
    body: { content: manifest("Agent"), required: true },
  },
  [`GET ${AGENTS}/{name}/deliveries`]: { operationId: "listAgentDeliveries", ok: { 200: "DeliveryList" }, errors: [400, 401, 403, 404], query: DELIVERIES_QUERY },
  [`PATCH ${AGENTS}/{name}/status`]: {
    operationId: "patchAgentStatus",
    ok: { 200: "Agent" },
    errors: [400, 401, 403, 404, 409, 413, 415, 422, 503],
    query: PATCH_QUERY,
    body: { content: patch("Agent"), required: true },
  },

  // Secrets
  "GET /api/v1/secrets": { operationId: "listSecretsForAllNamespaces", ok: list("SecretList"), errors: [400, 401, 403, 410], query: LIST_QUERY },
  [`GET ${SECRETS}`]: { operationId: "listSecrets", ok: list("SecretList"), errors: [400, 401, 403, 410], query: LIST_QUERY },
  [`POST ${SECRETS}`]: {
    operationId: "createSecret",
    ok: created("Secret"),
    errors: [400, 401, 403, 409, 413, 415, 422, 503],
    query: WRITE_QUERY,
    body: { content: manifest("SecretInput"), required: true, example: { metadata: { name: "linear-signing" }, stringData: { secret: "lin_wh_…" } } },
  },
  [`GET ${SECRETS}/{name}`]: { operationId: "readSecret", ok: { 200: "Secret" }, errors: [400, 401, 403, 404] },
  [`PUT ${SECRETS}/{name}`]: {
    operationId: "replaceSecret",
    ok: { 200: "Secret", 201: "Secret" },
    errors: [400, 401, 403, 409, 413, 415, 422, 503],
    query: WRITE_QUERY,
    body: { content: manifest("SecretInput"), required: true },
  },
  [`PATCH ${SECRETS}/{name}`]: {
    operationId: "patchSecret",
    ok: { 200: "Secret", 201: "Secret" },
    errors: [400, 401, 403, 404, 409, 413, 415, 422, 503],
    query: PATCH_QUERY,
    body: { content: patch("Secret"), required: true },
  },
  [`DELETE ${SECRETS}/{name}`]: { operationId: "deleteSecret", ok: { 200: "Secret" }, errors: [400, 401, 403, 404, 409, 503], query: DELETE_QUERY, body: deleteBody },

  // Namespaces (read-only, derived; src/api/namespaces.ts)
  "GET /api/v1/namespaces": { operationId: "listNamespaces", ok: { 200: "NamespaceList" }, errors: [400, 401, 405], query: NAMESPACE_LIST_QUERY },
  "GET /api/v1/namespaces/{namespace}": { operationId: "readNamespace", ok: { 200: "Namespace" }, errors: [401, 403, 404] },

  // Access tokens
  "POST /apis/pai.io/v1/namespaces/{namespace}/accesstokens": {
    operationId: "createAccessToken",
    ok: created("PaiAccessToken"),
    errors: [400, 401, 403, 413, 415, 503],
    body: { content: manifest("AccessTokenInput"), required: false, example: { metadata: { name: "ci" } } },
  },
  "GET /apis/pai.io/v1/namespaces/{namespace}/accesstokens": { operationId: "listAccessTokens", ok: { 200: "PaiAccessTokenList" }, errors: [400, 401, 403] },
  "DELETE /apis/pai.io/v1/namespaces/{namespace}/accesstokens/{id}": { operationId: "deleteAccessToken", ok: { 200: "Status" }, errors: [400, 401, 403, 404, 503] },

  // Sessions
  "POST /apis/pai.io/v1/namespaces/{namespace}/sessions": {
    operationId: "startSession",
    ok: created("Session"),
    errors: [400, 401, 403, 404, 413, 415, 429, 503],
    body: { content: manifest("SessionStart"), required: true, example: { agentDefinition: "echo", title: "what sound does a cow make?" } },
  },
  "GET /apis/pai.io/v1/namespaces/{namespace}/sessions": { operationId: "listSessions", ok: { 200: "SessionList" }, errors: [400, 401, 403, 405], query: SESSION_LIST_QUERY },
  "GET /apis/pai.io/v1/sessions": { operationId: "listSessionsForAllNamespaces", ok: { 200: "SessionList" }, errors: [400, 401, 403, 405], query: SESSION_LIST_QUERY },
  "GET /apis/pai.io/v1/namespaces/{namespace}/sessions/{name}": { operationId: "readNamespacedSession", ok: { 200: "Session" }, errors: [400, 401, 403, 404] },
  "GET /agents/{session}": { operationId: "readSession", ok: { 200: "Session" }, errors: [400, 401, 403, 404] },
  "GET /agents/{session}/events": { operationId: "listSessionEvents", ok: { 200: "EventList" }, errors: [400, 401, 403, 404], query: EVENTS_QUERY },
  "GET /agents/{session}/stream": {
    operationId: "streamSessionEvents",
    ok: {
      200: { description: "Server-Sent Events: `id:` is the event id, `data:` an Event; resume with Last-Event-ID", content: { "text/event-stream": "Event" } },
      204: { description: "The session ended and the client has read every event (EventSource stops retrying)" },
    },
    errors: [400, 401, 403, 404],
  },
  "POST /agents/{session}/cancel": { operationId: "cancelSession", ok: { 200: "Session" }, errors: [400, 401, 403, 404, 409, 503] },
  "POST /agents/{session}/rerun": { operationId: "rerunSession", ok: { 201: "Session" }, errors: [400, 401, 403, 404, 429, 503] },
  "GET /agents/{session}/files": { operationId: "listSessionFiles", ok: { 200: "SessionFileList" }, errors: [400, 401, 403, 404] },
  "GET /agents/{session}/files/{path}": { operationId: "readSessionFile", ok: {}, errors: [] },

  // Webhooks (documented by src/api/webhooks.ts; ids here)
  "GET /webhooks/{namespace}/{name}/{token}": { operationId: "pingWebhook", ok: {}, errors: [] },
  "POST /webhooks/{namespace}/{name}/{token}": { operationId: "invokeWebhook", ok: {}, errors: [] },

  // Discovery (src/api/kube/discovery.ts); ids as kube-apiserver names them
  "GET /version": { operationId: "getCodeVersion", ok: { 200: "VersionInfo" }, errors: [401] },
  "GET /api": { operationId: "getCoreAPIVersions", ok: { 200: "APIVersions" }, errors: [401] },
  "GET /apis": { operationId: "getAPIVersions", ok: { 200: "APIGroupList" }, errors: [401] },
  "GET /apis/pai.io": { operationId: "getPaiIoAPIGroup", ok: { 200: "APIGroup" }, errors: [401] },
  "GET /api/v1": { operationId: "getCoreV1APIResources", ok: { 200: "APIResourceList" }, errors: [401] },
  "GET /apis/pai.io/v1": { operationId: "getPaiIoV1APIResources", ok: { 200: "APIResourceList" }, errors: [401] },

  // Health
  "GET /healthz": { operationId: "checkLiveness", ok: { 200: "Health" }, errors: [] },
  "GET /readyz": { operationId: "checkReadiness", ok: { 200: "Health", 503: "Health" }, errors: [] },
  "GET /apis/pai.io/v1/overview": { operationId: "readOverview", ok: { 200: "Overview" }, errors: [401, 404] },
  "GET /metrics": {
    operationId: "readMetrics",
    ok: { 200: { description: "Prometheus text format", content: { "text/plain": "" } } },
    errors: [401],
  },
};
