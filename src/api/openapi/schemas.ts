/**
 * The shapes the API answers with, as TypeBox schemas: what the route modules build (agents as
 * the domain serves them, `secretObject`, `sessionObject`, event lists, `Status`), written down
 * once for the OpenAPI documents. Request shapes are not here: they are the routes' own schemas
 * (and the domain's `AgentManifest`). test/unit/openapi-schemas.test.ts and
 * test/e2e/openapi.test.ts check real responses against these, with every object closed, so a
 * field added to a response without its schema fails a test.
 */
import { Type as T, type Static, type TSchema } from "@sinclair/typebox";
import { AgentSpec, AgentStatus, API_VERSION, AGENT_KIND } from "../../domain/agent";
import { Phase } from "../../domain/session";
import { WebhookBody } from "../../domain/webhook";

const Timestamp = (description?: string) => T.String({ format: "date-time", ...(description ? { description } : {}) });
const Nullable = <S extends TSchema>(s: S) => T.Union([s, T.Null()]);
const StringMap = (description: string) => T.Record(T.String(), T.String(), { description });

export const OwnerReference = T.Object(
  {
    apiVersion: T.String(),
    kind: T.String(),
    name: T.String(),
    uid: T.String(),
    controller: T.Optional(T.Boolean()),
    blockOwnerDeletion: T.Optional(T.Boolean()),
  },
  { description: "The object that owns this one: deleting the owner deletes it." },
);

export const ManagedFieldsEntry = T.Object(
  {
    manager: T.Optional(T.String()),
    operation: T.Optional(T.String()),
    apiVersion: T.Optional(T.String()),
    time: T.Optional(Timestamp()),
    fieldsType: T.Optional(T.String()),
    fieldsV1: T.Optional(T.Unknown()),
    subresource: T.Optional(T.String()),
  },
  { description: "Which manager set which fields (server-side apply)." },
);

/** Kubernetes ObjectMeta, as far as pai fills it in. */
export const ObjectMeta = T.Object(
  {
    name: T.String({ description: "A DNS-1123 label, unique in the namespace." }),
    generateName: T.Optional(T.String()),
    namespace: T.Optional(T.String({ description: "A DNS-1123 label; `default` when not given." })),
    uid: T.Optional(T.String({ description: "Set by the server: unique across time." })),
    resourceVersion: T.Optional(T.String({ description: "Set by the server: changes on every write; opaque, compare for equality only." })),
    generation: T.Optional(T.Integer({ description: "Set by the server: changes when the spec changes." })),
    creationTimestamp: T.Optional(Timestamp("Set by the server.")),
    deletionTimestamp: T.Optional(Timestamp()),
    labels: T.Optional(StringMap("Labels, for selecting objects (-l).")),
    annotations: T.Optional(StringMap("Annotations: data for tools, such as kubectl's last-applied-configuration.")),
    ownerReferences: T.Optional(T.Array(OwnerReference)),
    finalizers: T.Optional(T.Array(T.String())),
    managedFields: T.Optional(T.Array(ManagedFieldsEntry)),
  },
  { description: "Standard object metadata." },
);

export const ListMeta = T.Object(
  {
    resourceVersion: T.Optional(T.String({ description: "The store's revision when the list was read: watch from here." })),
    continue: T.Optional(T.String({ description: "Set when there are more items: pass it as `continue` to read the next page." })),
    remainingItemCount: T.Optional(T.Integer()),
  },
  { description: "Standard list metadata." },
);

export const StatusCause = T.Object({
  field: T.Optional(T.String({ description: "The field at fault, e.g. spec.models[0]" })),
  message: T.String(),
  reason: T.Optional(T.String({ description: "e.g. FieldValueInvalid" })),
});

/** Errors, and some successes, are Kubernetes Status objects (src/api/status.ts). */
export const Status = T.Object(
  {
    kind: T.Literal("Status"),
    apiVersion: T.Literal("v1"),
    metadata: T.Optional(T.Object({})),
    status: T.Union([T.Literal("Failure"), T.Literal("Success")]),
    message: T.String({ description: "What went wrong and what to fix" }),
    reason: T.Optional(T.String({ description: "A machine-readable reason, on every error: BadRequest, Unauthorized, Forbidden, NotFound, AlreadyExists, Conflict, Invalid, Expired, …" })),
    code: T.Integer({ description: "The HTTP status code" }),
    details: T.Optional(
      T.Object({
        name: T.Optional(T.String()),
        group: T.Optional(T.String()),
        kind: T.Optional(T.String()),
        uid: T.Optional(T.String()),
        causes: T.Optional(T.Array(StatusCause, { description: "For Invalid: one entry per field at fault" })),
        retryAfterSeconds: T.Optional(T.Integer()),
      }),
    ),
  },
  { description: "A Kubernetes Status: every error is one (and DELETE of a token answers one)." },
);

export const Agent = T.Object(
  {
    apiVersion: T.Literal(API_VERSION),
    kind: T.Literal(AGENT_KIND),
    metadata: ObjectMeta,
    spec: AgentSpec,
    status: AgentStatus,
  },
  { description: "An agent: its spec as applied, and its status as the controller wrote it (webhookUrl, conditions)." },
);

export const AgentList = T.Object({
  apiVersion: T.Literal(API_VERSION),
  kind: T.Literal("AgentList"),
  metadata: ListMeta,
  items: T.Array(Agent),
});

export const Secret = T.Object(
  {
    apiVersion: T.Literal("v1"),
    kind: T.Literal("Secret"),
    metadata: ObjectMeta,
    type: T.String({ description: "e.g. Opaque; pai-webhook-<agent> secrets are pai.io/webhook-token" }),
    data: T.Record(T.String(), T.String({ format: "byte" }), { description: "Values, base64-encoded." }),
    stringData: T.Optional(StringMap("Write-only: values in plain text, merged over data when written; never returned.")),
    immutable: T.Optional(T.Boolean()),
  },
  { description: "A Secret, as in Kubernetes: values base64-encoded." },
);

export const SecretList = T.Object({
  apiVersion: T.Literal("v1"),
  kind: T.Literal("SecretList"),
  metadata: ListMeta,
  items: T.Array(Secret),
});

/** Namespaces are derived (src/service/namespaces.ts): read-only, always Active. */
export const Namespace = T.Object(
  {
    apiVersion: T.Literal("v1"),
    kind: T.Literal("Namespace"),
    metadata: ObjectMeta,
    spec: T.Object({ finalizers: T.Array(T.String()) }),
    status: T.Object({ phase: T.Literal("Active", { description: "Always Active: a namespace exists while something lives in it" }) }),
  },
  { description: "A namespace: one exists while an agent, secret, session or access token lives in it, and `default` always." },
);

export const NamespaceList = T.Object({
  apiVersion: T.Literal("v1"),
  kind: T.Literal("NamespaceList"),
  metadata: ListMeta,
  items: T.Array(Namespace),
});

const TokenCounts = T.Object({ inputTokens: T.Integer(), outputTokens: T.Integer() });

export const SessionUsage = T.Object(
  {
    inputTokens: T.Integer(),
    outputTokens: T.Integer(),
    byModel: T.Record(T.String(), TokenCounts, { description: "Per model (e.g. anthropic/claude-sonnet-4-6)" }),
  },
  { description: "Tokens used by the session's model calls." },
);

export const SessionPhase = T.Union(Object.values(Phase).map((p) => T.Literal(p)), { description: "Pending → Running → Complete, Error or Cancelled" });

export const Session = T.Object(
  {
    apiVersion: T.Literal(API_VERSION),
    kind: T.Literal("Session"),
    metadata: ObjectMeta,
    session: T.String({ description: "The session's name: <agent>-wh-<8 hex> (webhooks), <agent>-run-<8 hex> (pai run, the API)" }),
    namespace: T.String(),
    agentDefinition: T.String({ description: "The agent it runs" }),
    generation: T.Integer({ description: "The agent's generation when the session started" }),
    title: T.String({ description: "The initial prompt" }),
    phase: SessionPhase,
    response: Nullable(T.String({ description: "The agent's last message, once it ended" })),
    error: Nullable(T.String({ description: "Why it ended in Error" })),
    origin: T.Object({
      kind: T.Union([T.Literal("webhook"), T.Literal("cli"), T.Literal("api")]),
      sender: T.Optional(T.String({ description: "For webhooks: linear, github or generic" })),
      delivery: T.Optional(T.String({ description: "The sender's delivery id" })),
      event: T.Optional(T.String({ description: "The sender's event name" })),
    }),
    env: T.Array(T.Object({ name: T.String() }), { description: "The session's own environment variables: names only (values may be secrets)" }),
    createdAt: Timestamp(),
    startedAt: Nullable(Timestamp()),
    finishedAt: Nullable(Timestamp()),
    usage: Nullable(SessionUsage),
  },
  { description: "One run of an agent." },
);

export const SessionList = T.Object({
  apiVersion: T.Literal(API_VERSION),
  kind: T.Literal("SessionList"),
  metadata: ListMeta,
  items: T.Array(Session),
});

export const Event = T.Object(
  {
    id: T.Integer({ description: "Increases by one per event of the session: the SSE id, and the `after` cursor" }),
    type: T.String({
      description:
        "session.status_running, agent.message, agent.thinking, agent.tool_use, agent.tool_result, session.model_fallback, session.usage, session.mcp_server, session.error, session.status_closed (always last), session.callback",
    }),
    content: T.Unknown({ description: "Depends on the type: agent.message has the text, agent.tool_use {name, input}, …" }),
    timestamp: Timestamp(),
  },
  { description: "One event of a session." },
);

export const EventList = T.Object({
  events: T.Array(Event),
  count: T.Integer({ description: "How many events are in this page" }),
  lastEventId: T.Optional(T.Integer({ description: "The id of the last event in this page: pass it as `after` for the next" })),
});

export const PaiAccessToken = T.Object({
  apiVersion: T.Literal(API_VERSION),
  kind: T.Literal("PaiAccessToken"),
  metadata: T.Object({ name: T.String(), namespace: T.String(), uid: T.String({ description: "The token's id: revoke it with DELETE …/accesstokens/{id}" }), creationTimestamp: Timestamp() }),
  token: T.Optional(T.String({ description: "The token itself: only in the answer to its creation (only its hash is kept)" })),
});

export const PaiAccessTokenList = T.Object({
  apiVersion: T.Literal(API_VERSION),
  kind: T.Literal("PaiAccessTokenList"),
  items: T.Array(PaiAccessToken),
});

/** What a webhook call answers (src/service/webhooks.ts). */
export const WebhookAccepted = T.Object(
  {
    session: T.String({ examples: ["my-agent-wh-a1b2c3d4"] }),
    agentDefinition: T.String({ examples: ["my-agent"] }),
    response: T.Optional(Nullable(T.String({ description: "wait mode: the agent's last agent.message text" }))),
    phase: T.Optional(SessionPhase),
    pollUrl: T.Optional(T.String({ description: "wait mode, when the wait ran out: where to read the session" })),
    timedOut: T.Optional(T.Boolean({ description: "wait mode, when the wait ran out" })),
  },
  { description: "The session is committed; in wait mode, with its reply." },
);

/** One line of a watch stream (`?watch=true`, `application/json;stream=watch`). */
export const WatchEvent = T.Object(
  {
    type: T.Union(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"].map((t) => T.Literal(t))),
    object: T.Unknown({ description: "The object (a Status for ERROR; only metadata.resourceVersion for BOOKMARK)" }),
  },
  { description: "A change, one JSON object per line." },
);

/** A JSON Patch (RFC 6902) body. */
export const JsonPatch = T.Array(
  T.Object({
    op: T.Union(["add", "remove", "replace", "move", "copy", "test"].map((o) => T.Literal(o))),
    path: T.String({ description: "A JSON Pointer, e.g. /spec/models/0" }),
    value: T.Optional(T.Unknown()),
    from: T.Optional(T.String()),
  }),
  { description: "JSON Patch (RFC 6902): a list of operations" },
);

/** A DELETE's optional body (kubectl sends one), JSON or, for Secrets, protobuf. */
export const DeleteOptions = T.Object(
  {
    kind: T.Optional(T.Literal("DeleteOptions")),
    apiVersion: T.Optional(T.String()),
    dryRun: T.Optional(T.Array(T.String(), { description: "[All]: check, delete nothing" })),
    preconditions: T.Optional(
      T.Object({ uid: T.Optional(T.String()), resourceVersion: T.Optional(T.String()) }, { description: "Delete only if the object still has this uid / resourceVersion (409 otherwise)" }),
    ),
    propagationPolicy: T.Optional(T.String({ description: "Accepted; an agent's webhook Secret goes with it either way" })),
    gracePeriodSeconds: T.Optional(T.Integer({ description: "Accepted and ignored" })),
  },
  { description: "Options of a DELETE" },
);

/** A merge patch (RFC 7396), or a strategic merge patch: the fields to change; null removes one. */
export const Patch = T.Object({}, { additionalProperties: true, description: "The fields to change (RFC 7396 merge patch); null removes a field" });

/** Discovery (src/api/kube/discovery.ts): what kubectl reads first. */
const GroupVersionForDiscovery = T.Object({ groupVersion: T.String(), version: T.String() });
export const APIVersions = T.Object({
  kind: T.Literal("APIVersions"),
  apiVersion: T.Optional(T.String()),
  versions: T.Array(T.String()),
  serverAddressByClientCIDRs: T.Array(T.Object({ clientCIDR: T.String(), serverAddress: T.String() })),
});
export const APIGroup = T.Object({
  kind: T.Optional(T.Literal("APIGroup")),
  apiVersion: T.Optional(T.String()),
  name: T.String(),
  versions: T.Array(GroupVersionForDiscovery),
  preferredVersion: GroupVersionForDiscovery,
});
export const APIGroupList = T.Object({ kind: T.Literal("APIGroupList"), apiVersion: T.String(), groups: T.Array(APIGroup) });
export const APIResourceList = T.Object({
  kind: T.Literal("APIResourceList"),
  apiVersion: T.String(),
  groupVersion: T.String(),
  resources: T.Array(
    T.Object({
      name: T.String({ description: "The plural, e.g. agents" }),
      singularName: T.String(),
      namespaced: T.Boolean(),
      kind: T.String(),
      verbs: T.Array(T.String()),
      shortNames: T.Optional(T.Array(T.String())),
      categories: T.Optional(T.Array(T.String())),
    }),
  ),
});
export const VersionInfo = T.Object(
  {
    major: T.String(),
    minor: T.String(),
    gitVersion: T.String(),
    gitCommit: T.String(),
    gitTreeState: T.String(),
    buildDate: T.String(),
    goVersion: T.String(),
    compiler: T.String(),
    platform: T.String(),
  },
  { description: "The Kubernetes version whose API pai follows, with pai's own version as build metadata" },
);

export const Health = T.Object({ status: T.String() });
export const Overview = T.Object(
  {
    running: T.Integer({ description: "Sessions running now (on this replica)" }),
    pending: T.Integer({ description: "Sessions waiting for a slot" }),
    minutes: T.Array(
      T.Object({
        start: Timestamp(),
        sessionsStarted: T.Integer(),
        sessionsFinished: T.Integer(),
        answers: T.Record(T.String(), T.Integer(), { description: "Webhook answers by HTTP status code" }),
      }),
      { description: "The last 60 minutes, oldest first; the last is the current minute so far" },
    ),
  },
  { description: "The console's overview, from the /metrics counters of this server (each replica counts its own)" },
);
export const WebhookPing = T.Object({ ok: T.Boolean() });

/** One entry of an agent's delivery log (src/api/deliveries.ts). */
export const Delivery = T.Object(
  {
    time: Timestamp("When the answer was made"),
    sender: T.String({ description: "linear, github or generic (anything else: curl, a script…)" }),
    event: T.Optional(T.String({ description: "The sender's event name (GitHub's X-GitHub-Event, Linear's type)" })),
    delivery: T.Optional(T.String({ description: "The sender's delivery id (Linear-Delivery, X-GitHub-Delivery, Idempotency-Key, webhook-id)" })),
    code: T.Integer({ description: "The answer's HTTP status: 200 accepted; anything else refused (400, 401, 403, 413, 415, 429, 503…)" }),
    session: T.Optional(T.String({ description: "The session it started, or, for a delivery sent again, the one the first started" })),
    reason: T.Optional(
      T.String({
        description:
          "Refused: the error message the caller got (at most 300 characters). Beyond 20 refused deliveries a second per agent, one entry says how many more were not recorded.",
      }),
    ),
  },
  { description: "How one webhook request to the agent was answered." },
);

export const DeliveryList = T.Object(
  {
    apiVersion: T.Literal(API_VERSION),
    kind: T.Literal("DeliveryList"),
    metadata: T.Object({ continue: T.Optional(T.String({ description: "Set when there may be older entries: pass it as `continue`" })) }),
    items: T.Array(Delivery),
  },
  { description: "An agent's delivery log, newest first: its newest 1000 entries at most (of them at most 500 refused), none older than --session-retention." },
);
/** A delivery log entry and a page of them, as the API answers (the CLI and the console read these). */
export type DeliveryObject = Static<typeof Delivery>;
export type DeliveryListObject = Static<typeof DeliveryList>;

/** Component name → schema: the `components.schemas` of /openapi/json (request bodies are added by name from their routes). */
export const COMPONENTS: Record<string, TSchema> = {
  Agent,
  AgentList,
  AgentSpec,
  AgentStatus,
  Secret,
  SecretList,
  Namespace,
  NamespaceList,
  Session,
  SessionList,
  SessionUsage,
  Event,
  EventList,
  PaiAccessToken,
  PaiAccessTokenList,
  ObjectMeta,
  ListMeta,
  OwnerReference,
  Status,
  WatchEvent,
  JsonPatch,
  Patch,
  DeleteOptions,
  WebhookAccepted,
  WebhookBody,
  WebhookPing,
  Health,
  Overview,
  Delivery,
  DeliveryList,
  APIVersions,
  APIGroup,
  APIGroupList,
  APIResourceList,
  VersionInfo,
};
