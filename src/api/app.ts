/**
 * The HTTP API: one Elysia instance per resource, mounted here, with errors mapped in one place.
 * Handlers call services only; they never touch the store.
 */
import { Elysia } from "elysia";
import { DomainError } from "../domain/errors";
import type { Logger } from "../lib/log";
import type { AgentService } from "../service/agents";
import type { SecretService } from "../service/secrets";
import type { TokenService } from "../service/tokens";
import type { SessionService } from "../service/sessions";
import type { Supervisor } from "../supervisor/supervisor";
import { sessionRoutes } from "./sessions";
import { agentRoutes } from "./agents";
import { docsRoutes } from "./docs";
import { healthRoutes } from "./health";
import { secretRoutes } from "./secrets";
import { failure, jsonResponse, statusOf } from "./status";
import { tokenRoutes } from "./tokens";
import { webhookRoutes } from "./webhooks";
import type { WebhookService } from "../service/webhooks";

export interface ApiDeps {
  agents: AgentService;
  secrets: SecretService;
  tokens: TokenService;
  sessions: SessionService;
  supervisor: Supervisor;
  webhooks: WebhookService;
  log: Logger;
  ready: () => boolean;
  version: string;
  sseKeepAliveMs?: number;
}

export function createApi(deps: ApiDeps) {
  const { log } = deps;
  const app: Elysia = new Elysia({ name: "pai" });
  return app
    .onError(({ code, error, request }) => {
      if (error instanceof DomainError) return jsonResponse(statusOf(error), error.status, error.headers);
      switch (code) {
        case "NOT_FOUND":
          return jsonResponse(failure(404, "NotFound", `no route for ${request.method} ${new URL(request.url).pathname}`), 404);
        case "PARSE": {
          const cause = (error as Error).cause;
          if (cause instanceof DomainError) return jsonResponse(statusOf(cause), cause.status);
          return jsonResponse(failure(400, "BadRequest", "request body is not valid JSON"), 400);
        }
        case "VALIDATION": {
          const all = (error as { all?: { path?: string; summary?: string; message?: string }[] }).all ?? [];
          const causes = all.map((e) => ({ field: (e.path ?? "").replace(/^\//, "").replace(/\//g, "."), message: e.summary ?? e.message ?? "invalid" }));
          const message = causes.length ? causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message)).join("; ") : "invalid request";
          return jsonResponse(failure(400, "BadRequest", message, { causes }), 400);
        }
      }
      const status = (error as { status?: number }).status;
      if (typeof status === "number" && status >= 400 && status < 500)
        return jsonResponse(failure(status, "BadRequest", (error as Error).message ?? "bad request"), status);
      log.error("unhandled error", { method: request.method, path: new URL(request.url).pathname, error: (error as Error)?.stack ?? String(error) });
      return jsonResponse(failure(500, "InternalError", "internal error; see the server log"), 500);
    })
    .use(healthRoutes({ ready: deps.ready }))
    .use(docsRoutes(deps.version, () => app))
    .use(webhookRoutes(deps))
    .use(agentRoutes(deps))
    .use(secretRoutes(deps))
    .use(tokenRoutes(deps))
    .use(sessionRoutes(deps));
}

export type Api = ReturnType<typeof createApi>;
