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
import { fileRoutes } from "./files";
import type { SessionFileService } from "../service/session-files";
import type { WatchService } from "../service/watch";
import { agentRoutes } from "./agents";
import { discoveryRoutes } from "./kube/discovery";
import { docsRoutes } from "./docs";
import { consoleRoutes } from "./console";
import { healthRoutes } from "./health";
import { secretRoutes } from "./secrets";
import { namespaceRoutes } from "./namespaces";
import type { NamespaceService } from "../service/namespaces";
import { errorResponse } from "./status";
import { PayloadTooLargeError } from "../domain/errors";
import type { Metrics } from "../lib/metrics";
import { tokenRoutes } from "./tokens";
import { webhookRoutes } from "./webhooks";
import { BodyBudget } from "./body";
import type { WebhookService } from "../service/webhooks";
import type { OverviewService } from "../service/overview";
import type { DeliveryLog } from "../service/deliveries";
import { deliveryRoutes } from "./deliveries";

export interface ApiDeps {
  agents: AgentService;
  secrets: SecretService;
  tokens: TokenService;
  sessions: SessionService;
  /** The namespaces things live in (GET /api/v1/namespaces). */
  namespaces: NamespaceService;
  sessionFiles: SessionFileService;
  supervisor: Supervisor;
  webhooks: WebhookService;
  /** Watches (`?watch=true` on list routes), from the store's revision log. */
  watch?: WatchService;
  log: Logger;
  ready: () => boolean;
  version: string;
  metrics: Metrics;
  sseKeepAliveMs?: number;
  /** Largest request body (413 beyond). */
  maxBodyBytes: number;
  /** Bytes of webhook bodies held at once across the server (503 beyond). */
  bodyBudget?: BodyBudget;
  /** Whether this server runs the controller (false: --no-controller, pai-webhook-* secrets are writable). */
  controller?: boolean;
  /** The per-minute figures of the last hour (the console's overview). */
  overview?: OverviewService;
  /** The delivery log: webhook answers are recorded in it, GET …/agents/{name}/deliveries reads it. */
  deliveries?: DeliveryLog;
}

/** Default for the server-wide body budget: 64 request bodies of the largest size. */
export const bodyBudgetFor = (maxBodyBytes: number) => new BodyBudget(64 * maxBodyBytes);

export function createApi(deps: ApiDeps) {
  const { log } = deps;
  const webhooks = webhookRoutes({ ...deps, bodyBudget: deps.bodyBudget ?? bodyBudgetFor(deps.maxBodyBytes) });
  const app: Elysia = new Elysia({ name: "pai", serve: { routes: webhooks as never } });
  return app
    // Bun's own cap (twice this, see server.ts) answers with an empty 413: a body announced over the
    // limit gets a Status that says which limit, before anything reads it.
    .onRequest(({ request }) => {
      const length = Number(request.headers.get("content-length") ?? 0);
      if (length > deps.maxBodyBytes) return errorResponse(new PayloadTooLargeError(`request body is larger than ${deps.maxBodyBytes} bytes (--max-body-bytes)`), request, log);
    })
    .onError(({ code, error, request }) => errorResponse(error, request, log, code))
    .use(healthRoutes(deps))
    .use(docsRoutes(deps.version, () => app))
    .use(consoleRoutes())
    .use(discoveryRoutes(deps))
    .use(agentRoutes(deps))
    .use(deliveryRoutes(deps))
    .use(secretRoutes(deps))
    .use(namespaceRoutes(deps))
    .use(tokenRoutes(deps))
    .use(sessionRoutes(deps))
    .use(fileRoutes(deps));
}

export type Api = ReturnType<typeof createApi>;
