/**
 * The HTTP API: one Elysia instance per resource, mounted here, with errors mapped in one place.
 * Handlers call services only; they never touch the store.
 */
import { Elysia } from "elysia";
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
import { errorResponse } from "./status";
import type { Metrics } from "../lib/metrics";
import { tokenRoutes } from "./tokens";
import { nativeWebhookRoutes, webhookRoutes } from "./webhooks";
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
  metrics: Metrics;
  sseKeepAliveMs?: number;
}

export function createApi(deps: ApiDeps) {
  const { log } = deps;
  const app: Elysia = new Elysia({ name: "pai", serve: { routes: nativeWebhookRoutes(deps.webhooks, log, deps.metrics) as never } });
  return app
    .onError(({ code, error, request }) => errorResponse(error, request, log, code))
    .use(healthRoutes(deps))
    .use(docsRoutes(deps.version, () => app))
    .use(webhookRoutes(deps))
    .use(agentRoutes(deps))
    .use(secretRoutes(deps))
    .use(tokenRoutes(deps))
    .use(sessionRoutes(deps));
}

export type Api = ReturnType<typeof createApi>;
