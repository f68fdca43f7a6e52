/**
 * The OpenAPI documents and the docs page. /openapi/json is the whole API as OpenAPI 3.0, made from
 * the route table (src/api/openapi/document.ts); /openapi/v3 and /openapi/v3/<group-version> are
 * the Kubernetes face's documents, as kubectl reads them (src/api/openapi/kube.ts). All are built
 * on first request, not at start-up. The page (/openapi, Swagger UI) has its script and style
 * embedded in the binary and served from /openapi/assets, so it renders with no internet.
 */
import { Elysia, type AnyElysia } from "elysia";
import bundlePath from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "file" };
import cssPath from "swagger-ui-dist/swagger-ui.css" with { type: "file" };
import { webhookOpenApiPaths } from "./webhooks";
import { fileOpenApiPaths } from "./files";
import { failure, jsonResponse } from "./status";
import type { RouteInfo } from "./openapi/document";
import type { KubeOpenApi } from "./openapi/kube";

const ASSETS = "/openapi/assets";
const html = { "content-type": "text/html; charset=utf-8" };

/** Whether an Accept header takes JSON (no header takes anything). */
function acceptsJson(accept: string | null): boolean {
  if (!accept) return true;
  return accept.split(",").some((part) => ["*/*", "application/*", "application/json"].includes(part.split(";")[0]!.trim().toLowerCase()));
}

export function docsRoutes(version: string, root: () => AnyElysia) {
  const info = {
    title: "Pai self-host",
    version,
    description:
      "Run AI agents on your own machine and start them from webhooks. The management API needs the admin token (Authorization: Bearer …); session reads take a PaiAccessToken of the namespace; webhook URLs carry their own token.",
  };
  let spec: unknown;
  let page: string | undefined;
  let kube: KubeOpenApi | undefined;
  const routes = () => root().routes as unknown as RouteInfo[];

  async function buildSpec() {
    const { buildDocument } = await import("./openapi/document");
    // The webhook entrance is a native Bun route, outside Elysia's router: its paths come from the same schema its decoder uses.
    return buildDocument({ routes: routes(), extraPaths: { ...webhookOpenApiPaths(), ...fileOpenApiPaths() }, info });
  }

  async function kubeDocs() {
    const { kubeOpenApi } = await import("./openapi/kube");
    return (kube ??= kubeOpenApi(routes(), version));
  }

  const notAcceptable = () => jsonResponse(failure(406, "NotAcceptable", "only application/json is served here: ask for it in Accept"), 406);

  const asset = (path: string, type: string) => () =>
    new Response(Bun.file(path), { headers: { "content-type": type, "cache-control": "public, max-age=86400" } });

  return new Elysia({ name: "docs" })
    .get("/openapi/json", async () => (spec ??= await buildSpec()), { detail: { hide: true } })
    // The index kubectl reads first: one entry per group-version, each URL carrying its document's hash.
    .get(
      "/openapi/v3",
      async ({ request }) => (acceptsJson(request.headers.get("accept")) ? jsonResponse((await kubeDocs()).index, 200, { "cache-control": "no-cache, private" }) : notAcceptable()),
      { detail: { hide: true } },
    )
    .get(
      "/openapi/v3/*",
      async ({ request, params }) => {
        const key = params["*"];
        const doc = (await kubeDocs()).documents.get(key);
        if (!doc) return jsonResponse(failure(404, "NotFound", `no OpenAPI document for "${key.slice(0, 100)}": /openapi/v3 lists them`), 404);
        if (!acceptsJson(request.headers.get("accept"))) return notAcceptable();
        const etag = `"${doc.hash}"`;
        const asked = new URL(request.url).searchParams.get("hash");
        // As kube-apiserver: a stale hash is sent to the current URL; the current one may be cached for good.
        if (asked !== null && asked !== doc.hash) return new Response(null, { status: 301, headers: { location: `/openapi/v3/${key}?hash=${doc.hash}` } });
        const caching = asked === doc.hash ? "public, immutable, max-age=31536000" : "no-cache, private";
        if (request.headers.get("if-none-match") === etag) return new Response(null, { status: 304, headers: { etag, "cache-control": caching } });
        return new Response(doc.body, { headers: { "content-type": "application/json", etag, "cache-control": caching } });
      },
      { detail: { hide: true } },
    )
    // kubectl asks for v2 when v3 lacks what it wants (e.g. strategic merge for a custom kind); this says why it is not there.
    .get("/openapi/v2", () => jsonResponse(failure(404, "NotFound", "OpenAPI v2 is not served: read /openapi/v3"), 404), { detail: { hide: true } })
    .get(
      "/openapi",
      async () => {
        if (!page) {
          const { SwaggerUIRender } = await import("@elysiajs/openapi/swagger");
          // deepLinking: each operation has its own link, #/<tag>/<operationId> (e.g. #/Webhooks/invokeWebhook).
          page = SwaggerUIRender(info, { url: "openapi/json", dom_id: "#swagger-ui", theme: `${ASSETS}/swagger-ui.css`, cdn: `${ASSETS}/swagger-ui-bundle.js`, autoDarkMode: false, deepLinking: true } as never);
        }
        return new Response(page, { headers: html });
      },
      { detail: { hide: true } },
    )
    .get(`${ASSETS}/swagger-ui-bundle.js`, asset(bundlePath, "text/javascript; charset=utf-8"), { detail: { hide: true } })
    .get(`${ASSETS}/swagger-ui.css`, asset(cssPath, "text/css; charset=utf-8"), { detail: { hide: true } });
}
