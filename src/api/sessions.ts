/**
 * Sessions over HTTP. Start: POST /apis/pai.io/v1/namespaces/{ns}/sessions (the admin token, or a
 * token of that namespace). Read, as the product page documents: GET /agents/{session},
 * /agents/{session}/events, /agents/{session}/stream, and POST /agents/{session}/cancel, each with
 * `?namespace=` and a PaiAccessToken of that namespace.
 */
import { Elysia, t } from "elysia";
import { BadRequestError, MethodNotAllowedError } from "../domain/errors";
import { DEFAULT_NAMESPACE } from "../domain/names";
import { EventType, isFinal, type Session } from "../domain/session";
import type { AgentService } from "../service/agents";
import type { SessionService } from "../service/sessions";
import type { TokenService } from "../service/tokens";
import type { Supervisor } from "../supervisor/supervisor";
import { authorizedBody, requireNamespace, requirePrincipal } from "./auth";
import { checkLabel, NamespaceParams } from "./params";
import { sseResponse } from "./sse";
import type { WatchService } from "../service/watch";
import { sealContinue } from "./kube/continue";
import { listBody, listOptions, objectBody, selects, type View } from "./kube/list";
import { notFound, SESSIONS } from "./kube/resources";
import { age, ageColumn, nameColumn, type KubeObject } from "./kube/table";
import { isWatch } from "./watch";

const tags = ["Sessions"];
const MAX_LIMIT = 1000;

export function sessionObject(s: Session) {
  return {
    apiVersion: "pai.io/v1",
    kind: "Session",
    // The object's identity the Kubernetes way (kubectl, client libraries); the flat fields stay for pai's own clients.
    metadata: { name: s.name, namespace: s.namespace, uid: s.uid, creationTimestamp: s.createdAt },
    session: s.name,
    namespace: s.namespace,
    agentDefinition: s.agentDefinition,
    generation: s.generation,
    title: s.title,
    phase: s.phase,
    response: s.response,
    error: s.error,
    origin: s.origin,
    // Values may be secrets: only the names are shown.
    env: s.env.map((e) => ({ name: e.name })),
    createdAt: s.createdAt,
    startedAt: s.startedAt,
    finishedAt: s.finishedAt,
    usage: s.usage ?? null,
  };
}

const SessionQuery = t.Object({ namespace: t.Optional(t.String()) });
const EventsQuery = t.Object({
  namespace: t.Optional(t.String()),
  event_type: t.Optional(t.String({ description: "Only events of this type, e.g. agent.message" })),
  after: t.Optional(t.String({ description: "Cursor: only events with an id greater than this" })),
  limit: t.Optional(t.String({ description: `At most this many events (1-${MAX_LIMIT}, default ${MAX_LIMIT})` })),
});
const StartBody = t.Object({
  // A Session manifest's envelope, so `kubectl create -f session.yaml` starts one; the server names it.
  apiVersion: t.Optional(t.Literal("pai.io/v1")),
  kind: t.Optional(t.Literal("Session")),
  metadata: t.Optional(t.Object({ namespace: t.Optional(t.String()) }, { description: "Only the namespace (the URL's); the server names the session" })),
  agentDefinition: t.String({ description: "The agent to run" }),
  title: t.String({ minLength: 1, description: "The initial prompt" }),
  env: t.Optional(t.Array(t.Object({ name: t.String(), value: t.String() }))),
});

function wholeNumber(name: string, value: string | undefined, min: number, max: number, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw new BadRequestError(`${name} must be a whole number from ${min} to ${max} (got "${value}")`);
  return Number(value);
}

/** Sessions a list page holds when the request names no limit. */
const DEFAULT_PAGE = 100;

export const sessionView: View = {
  resource: SESSIONS,
  columns: [
    nameColumn,
    { name: "Agent", type: "string", description: "The agent that runs it.", priority: 0 },
    { name: "Phase", type: "string", description: "Pending, Running, Complete, Error or Cancelled.", priority: 0 },
    ageColumn,
    { name: "Title", type: "string", description: "The first line of the prompt.", priority: 0 },
  ],
  cells: (o) => [o.metadata.name, o.agentDefinition, o.phase, age(o.metadata.creationTimestamp), String(o.title ?? "").split("\n")[0]!.slice(0, 50)],
  fields: { phase: (o) => o.phase as string, agentDefinition: (o) => o.agentDefinition as string },
};

export function sessionRoutes(deps: { agents: AgentService; sessions: SessionService; supervisor: Supervisor; tokens: TokenService; sseKeepAliveMs?: number; watch?: WatchService }) {
  const { agents, sessions, supervisor, tokens } = deps;

  /** Authenticates for the namespace in the query (default: the token's own, else "default"). */
  function scope(header: string | null, namespace: string | undefined): string {
    const p = requirePrincipal(tokens, header);
    const ns = checkLabel("namespace", namespace ?? p.namespace ?? DEFAULT_NAMESPACE);
    requireNamespace(tokens, header, ns);
    return ns;
  }

  /**
   * One page of the sessions of `namespace` (undefined: all), newest first. Pages follow the
   * store's order (not a name sort), so the continue token carries a position in it, sealed.
   */
  async function listSessions(request: Request, namespace: string | undefined) {
    const opts = listOptions(request, sessionView, namespace);
    if (isWatch(Object.fromEntries(new URL(request.url).searchParams))) throw new MethodNotAllowedError("sessions cannot be watched; follow one session's events with GET /agents/{session}/stream");
    const before = opts.from?.after[0];
    if (opts.from && (opts.from.after.length !== 1 || typeof before !== "number")) throw new BadRequestError("continue: not a continue token of this list");
    const limit = opts.limit || DEFAULT_PAGE;
    const rows = await sessions.page(namespace, limit, before as number | undefined);
    const items = rows.map((r) => sessionObject(r.session) as unknown as KubeObject).filter((o) => selects(sessionView, opts, o));
    const more = rows.length === limit ? sealContinue({ list: opts.list, after: [rows[rows.length - 1]!.seq] }) : undefined;
    return listBody(sessionView, opts, items, { resourceVersion: String(deps.watch?.current() ?? 0), continue: more });
  }

  const SESSION = "/apis/pai.io/v1/namespaces/:namespace/sessions/:name";
  const NamedSession = t.Object({ namespace: t.String(), name: t.String() });
  const refuse = ({ params, request }: { params: { namespace: string; name: string }; request: Request }) => {
    scope(request.headers.get("authorization"), params.namespace);
    throw new MethodNotAllowedError(
      `sessions cannot be ${request.method === "DELETE" ? "deleted" : "changed"} through the API: cancel a Pending or Running one with POST /agents/{session}/cancel (pai cancel)`,
    );
  };

  return new Elysia({ name: "sessions" })
    .post(
      "/apis/pai.io/v1/namespaces/:namespace/sessions",
      async ({ params, body, request, set }) => {
        const ns = scope(request.headers.get("authorization"), params.namespace);
        if (body.metadata?.namespace !== undefined && body.metadata.namespace !== ns)
          throw new BadRequestError(`metadata.namespace "${body.metadata.namespace.slice(0, 63)}" does not match the namespace in the URL ("${ns}")`);
        const agent = agents.get(ns, checkLabel("agent", body.agentDefinition)).agent;
        const s = await sessions.start(agent, { title: body.title, env: body.env, origin: { kind: "api" }, kind: "run" });
        set.status = 201;
        return sessionObject(s);
      },
      {
        params: NamespaceParams,
        body: StartBody,
        // The token is checked before the body is read: parsing and validation run before the handler.
        parse: authorizedBody((request, params) => requireNamespace(tokens, request.headers.get("authorization"), params.namespace ?? ""), StartBody),
        detail: { tags, summary: "Start a session of an agent (what pai run does)" },
      },
    )
    .get(
      "/apis/pai.io/v1/namespaces/:namespace/sessions",
      ({ params, request }) => listSessions(request, scope(request.headers.get("authorization"), params.namespace)),
      {
        params: NamespaceParams,
        detail: { tags, summary: `List a namespace's sessions, newest first, ${DEFAULT_PAGE} a page unless limit says otherwise (labelSelector, fieldSelector, limit, continue)` },
      },
    )
    .get(
      "/apis/pai.io/v1/sessions",
      ({ request }) => {
        const p = requirePrincipal(tokens, request.headers.get("authorization"));
        return listSessions(request, p.admin ? undefined : p.namespace!);
      },
      { detail: { tags, summary: `List sessions in every namespace the token may read, newest first, ${DEFAULT_PAGE} a page unless limit says otherwise` } },
    )
    .get(
      SESSION,
      async ({ params, request }) => {
        const ns = scope(request.headers.get("authorization"), params.namespace);
        const s = await sessions.find(ns, params.name);
        if (!s) throw notFound(SESSIONS, params.name);
        return objectBody(sessionView, request, sessionObject(s) as unknown as KubeObject);
      },
      { params: NamedSession, detail: { tags, summary: "A session, with its phase (kubectl get session NAME)" } },
    )
    // Sessions are runs, not configuration: the other verbs are refused (405) once the caller is known, without reading a body.
    .delete(SESSION, refuse, { parse: "none", params: NamedSession, detail: { hide: true } })
    .put(SESSION, refuse, { parse: "none", params: NamedSession, detail: { hide: true } })
    .patch(SESSION, refuse, { parse: "none", params: NamedSession, detail: { hide: true } })
    .get(
      "/agents/:session",
      async ({ params, query, request }) => sessionObject(await sessions.get(scope(request.headers.get("authorization"), query.namespace), params.session)),
      { params: t.Object({ session: t.String() }), query: SessionQuery, detail: { tags, summary: "A session, with its phase" } },
    )
    .get(
      "/agents/:session/events",
      async ({ params, query, request }) => {
        const ns = scope(request.headers.get("authorization"), query.namespace);
        await sessions.get(ns, params.session);
        const after = wholeNumber("after", query.after, 0, Number.MAX_SAFE_INTEGER, 0);
        const limit = wholeNumber("limit", query.limit, 1, MAX_LIMIT, MAX_LIMIT);
        const events = await sessions.events(ns, params.session, { after, limit, type: query.event_type || undefined });
        return { events, count: events.length, ...(events.length ? { lastEventId: events[events.length - 1]!.id } : {}) };
      },
      {
        params: t.Object({ session: t.String() }),
        query: EventsQuery,
        detail: { tags, summary: "A session's events, oldest first: {events: [{id, type, content, timestamp}], count}" },
      },
    )
    .get(
      "/agents/:session/stream",
      async ({ params, query, request, set, server }) => {
        const ns = scope(request.headers.get("authorization"), query.namespace);
        const s = await sessions.get(ns, params.session);
        // Keep-alive comments, not Bun's idle timeout, decide how long a quiet stream lives.
        server?.timeout(request, 0);
        const header = request.headers.get("last-event-id") ?? "";
        const lastId = /^\d+$/.test(header) ? Number(header) : 0;
        // A client resuming after the closing event has nothing left to read: 204 stops EventSource retrying.
        if (isFinal(s.phase)) {
          const rest = await sessions.events(ns, s.name, { after: lastId, limit: 1 });
          if (!rest.length) {
            set.status = 204;
            return "";
          }
        }
        return sseResponse(sessions, ns, s.name, lastId, deps.sseKeepAliveMs);
      },
      {
        params: t.Object({ session: t.String() }),
        query: SessionQuery,
        detail: { tags, summary: `Server-Sent Events: stored then live events; ends after ${EventType.StatusClosed}` },
      },
    )
    .post(
      "/agents/:session/rerun",
      async ({ params, query, request, set }) => {
        const ns = scope(request.headers.get("authorization"), query.namespace);
        const before = await sessions.get(ns, params.session);
        // The agent as it is now (a re-run uses its current spec), with the same input: title, env, webhook payload.
        const agent = agents.get(ns, before.agentDefinition).agent;
        const s = await sessions.start(agent, { title: before.title, env: before.env, origin: { kind: "api" }, kind: "run", payload: before.payload });
        set.status = 201;
        return sessionObject(s);
      },
      {
        params: t.Object({ session: t.String() }),
        query: SessionQuery,
        detail: { tags, summary: "Start a new session of the same agent with the same title, env and webhook payload (not its callbackUrl)" },
      },
    )
    .post(
      "/agents/:session/cancel",
      async ({ params, query, request }) => sessionObject(await supervisor.cancel(scope(request.headers.get("authorization"), query.namespace), params.session)),
      { params: t.Object({ session: t.String() }), query: SessionQuery, detail: { tags, summary: "Cancel a Pending or Running session" } },
    );
}
