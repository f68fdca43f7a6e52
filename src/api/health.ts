/** Liveness and readiness. Ready means: store open, controller running, manifests applied once. */
import { Elysia } from "elysia";

export function healthRoutes(deps: { ready: () => boolean }) {
  return new Elysia({ name: "health" })
    .get("/healthz", () => ({ status: "ok" }), { detail: { tags: ["Health"], summary: "Liveness" } })
    .get(
      "/readyz",
      ({ set }) => {
        if (deps.ready()) return { status: "ready" };
        set.status = 503;
        return { status: "starting" };
      },
      { detail: { tags: ["Health"], summary: "Readiness" } },
    );
}
