/**
 * Sessions over HTTP. Start: POST /apis/pai.io/v1/namespaces/{ns}/sessions (the admin token, or a
 * token of that namespace). Read, as the product page documents: GET /agents/{session},
 * /agents/{session}/events, /agents/{session}/stream, and POST /agents/{session}/cancel, each with
 * `?namespace=` and a PaiAccessToken of that namespace.
 */
import { Elysia, t } from "elysia";
import { BadRequestError } from "../domain/errors";
import { DEFAULT_NAMESPACE } from "../domain/names";
import { EventType, isFinal, type Session } from "../domain/session";
import type { AgentService } from "../service/agents";
import type { SessionService } from "../service/sessions";
import type { TokenService } from "../service/tokens";
import type { Supervisor } from "../supervisor/supervisor";
import { authorizedBody, requireNamespace, requirePrincipal } from "./auth";
import { checkLabel, NamespaceParams } from "./params";
import { sseResponse } from "./sse";

const tags = ["Sessions"];
const MAX_LIMIT = 1000;

export function sessionObject(s: Session) {
  return {
    apiVersion: "pai.io/v1",
    kind: "Session",
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
  agentDefinition: t.String({ description: "The agent to run" }),
  title: t.String({ minLength: 1, description: "The initial prompt" }),
  env: t.Optional(t.Array(t.Object({ name: t.String(), value: t.String() }))),
});

function wholeNumber(name: string, value: string | undefined, min: number, max: number, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw new BadRequestError(`${name} must be a whole number from ${min} to ${max} (got "${value}")`);
  return Number(value);
}

export function sessionRoutes(deps: { agents: AgentService; sessions: SessionService; supervisor: Supervisor; tokens: TokenService; sseKeepAliveMs?: number }) {
  const { agents, sessions, supervisor, tokens } = deps;

  /** Authenticates for the namespace in the query (default: the token's own, else "default"). */
  function scope(header: string | null, namespace: string | undefined): string {
    const p = requirePrincipal(tokens, header);
    const ns = checkLabel("namespace", namespace ?? p.namespace ?? DEFAULT_NAMESPACE);
    requireNamespace(tokens, header, ns);
    return ns;
  }

  return new Elysia({ name: "sessions" })
    .post(
      "/apis/pai.io/v1/namespaces/:namespace/sessions",
      async ({ params, body, request, set }) => {
        const ns = scope(request.headers.get("authorization"), params.namespace);
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
      ({ params, request }) => {
        const ns = scope(request.headers.get("authorization"), params.namespace);
        return { apiVersion: "pai.io/v1", kind: "SessionList", items: sessions.list(ns).map(sessionObject) };
      },
      { params: NamespaceParams, detail: { tags, summary: "List a namespace's sessions, newest first (at most 100)" } },
    )
    .get(
      "/apis/pai.io/v1/sessions",
      ({ request }) => {
        const p = requirePrincipal(tokens, request.headers.get("authorization"));
        return { apiVersion: "pai.io/v1", kind: "SessionList", items: sessions.list(p.admin ? undefined : p.namespace!).map(sessionObject) };
      },
      { detail: { tags, summary: "List sessions in every namespace the token may read, newest first (at most 100)" } },
    )
    .get(
      "/agents/:session",
      ({ params, query, request }) => sessionObject(sessions.get(scope(request.headers.get("authorization"), query.namespace), params.session)),
      { params: t.Object({ session: t.String() }), query: SessionQuery, detail: { tags, summary: "A session, with its phase" } },
    )
    .get(
      "/agents/:session/events",
      ({ params, query, request }) => {
        const ns = scope(request.headers.get("authorization"), query.namespace);
        sessions.get(ns, params.session);
        const after = wholeNumber("after", query.after, 0, Number.MAX_SAFE_INTEGER, 0);
        const limit = wholeNumber("limit", query.limit, 1, MAX_LIMIT, MAX_LIMIT);
        const events = sessions.events(ns, params.session, { after, limit, type: query.event_type || undefined });
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
      ({ params, query, request, set, server }) => {
        const ns = scope(request.headers.get("authorization"), query.namespace);
        const s = sessions.get(ns, params.session);
        // Keep-alive comments, not Bun's idle timeout, decide how long a quiet stream lives.
        server?.timeout(request, 0);
        const header = request.headers.get("last-event-id") ?? "";
        const lastId = /^\d+$/.test(header) ? Number(header) : 0;
        // A client resuming after the closing event has nothing left to read: 204 stops EventSource retrying.
        if (isFinal(s.phase)) {
          const rest = sessions.events(ns, s.name, { after: lastId, limit: 1 });
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
      "/agents/:session/cancel",
      async ({ params, query, request }) => sessionObject(await supervisor.cancel(scope(request.headers.get("authorization"), query.namespace), params.session)),
      { params: t.Object({ session: t.String() }), query: SessionQuery, detail: { tags, summary: "Cancel a Pending or Running session" } },
    );
}
