/**
 * Liveness and readiness (ready: store open, controller running, manifests applied once), and
 * Prometheus metrics, which any valid token may read.
 */
import { Elysia } from "elysia";
import type { Metrics } from "../lib/metrics";
import type { TokenService } from "../service/tokens";
import type { OverviewService } from "../service/overview";
import { requirePrincipal } from "./auth";
import { NotFoundError } from "../domain/errors";

export function healthRoutes(deps: { ready: () => boolean; metrics: Metrics; tokens: TokenService; overview?: OverviewService }) {
  return new Elysia({ name: "health" })
    .get(
      "/apis/pai.io/v1/overview",
      ({ request }) => {
        requirePrincipal(deps.tokens, request.headers.get("authorization"));
        if (!deps.overview) throw new NotFoundError("no overview on this server");
        return deps.overview.report();
      },
      { detail: { tags: ["Health"], summary: "The last hour per minute (sessions started and finished, webhook answers by code) and the running and pending counts, from the /metrics counters (any valid token)" } },
    )
    .get(
      "/metrics",
      ({ request }) => {
        requirePrincipal(deps.tokens, request.headers.get("authorization"));
        return new Response(deps.metrics.text(), { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
      },
      { detail: { tags: ["Health"], summary: "Prometheus metrics (any valid token: admin or a namespace's)" } },
    )
    .get("/healthz", () => ({ status: "ok" }), { detail: { tags: ["Health"], summary: "Liveness", security: [] } })
    .get(
      "/readyz",
      ({ set }) => {
        if (deps.ready()) return { status: "ready" };
        set.status = 503;
        return { status: "starting" };
      },
      { detail: { tags: ["Health"], summary: "Readiness", security: [] } },
    );
}
