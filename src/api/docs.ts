/**
 * The OpenAPI document at /openapi/json and its docs page at /openapi. Both are built on first
 * request (the generator is loaded then, not at start-up). The page's script and style are
 * embedded in the binary and served from /openapi/assets, so the page renders with no internet.
 */
import { Elysia, type AnyElysia } from "elysia";
import bundlePath from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "file" };
import cssPath from "swagger-ui-dist/swagger-ui.css" with { type: "file" };
import { webhookOpenApiPaths } from "./webhooks";
import { fileOpenApiPaths } from "./files";

const ASSETS = "/openapi/assets";

/** Errors are Kubernetes Status objects. */
const STATUS_SCHEMA = {
  type: "object",
  properties: {
    kind: { type: "string", enum: ["Status"] },
    apiVersion: { type: "string", enum: ["v1"] },
    status: { type: "string", enum: ["Failure", "Success"] },
    message: { type: "string", description: "What went wrong and what to fix" },
    reason: { type: "string", example: "BadRequest" },
    code: { type: "integer", example: 400 },
  },
};
const html = { "content-type": "text/html; charset=utf-8" };

export function docsRoutes(version: string, root: () => AnyElysia) {
  const info = {
    title: "Pai self-host",
    version,
    description:
      "Run AI agents on your own machine and start them from webhooks. The management API needs the admin token (Authorization: Bearer …); session reads take a PaiAccessToken of the namespace; webhook URLs carry their own token.",
  };
  let spec: unknown;
  let page: string | undefined;

  async function buildSpec() {
    const { toOpenAPISchema } = await import("@elysiajs/openapi/openapi");
    // `pai.io` has a dot: without staticFile: false the generator would take our API for static files.
    const { paths, components } = toOpenAPISchema(root(), { staticFile: false }, undefined, undefined, "3.0.3");
    return {
      openapi: "3.0.3",
      info,
      // The webhook entrance is a native Bun route, outside Elysia's router: its paths come from the same schema its decoder uses.
      paths: { ...paths, ...webhookOpenApiPaths(), ...fileOpenApiPaths() },
      components: {
        ...components,
        schemas: { ...(components as { schemas?: object }).schemas, Status: STATUS_SCHEMA },
        securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      },
      security: [{ bearer: [] }],
    };
  }

  const asset = (path: string, type: string) => () =>
    new Response(Bun.file(path), { headers: { "content-type": type, "cache-control": "public, max-age=86400" } });

  return new Elysia({ name: "docs" })
    .get("/openapi/json", async () => (spec ??= await buildSpec()), { detail: { hide: true } })
    .get(
      "/openapi",
      async () => {
        if (!page) {
          const { SwaggerUIRender } = await import("@elysiajs/openapi/swagger");
          page = SwaggerUIRender(info, { url: "openapi/json", dom_id: "#swagger-ui", theme: `${ASSETS}/swagger-ui.css`, cdn: `${ASSETS}/swagger-ui-bundle.js`, autoDarkMode: false } as never);
        }
        return new Response(page, { headers: html });
      },
      { detail: { hide: true } },
    )
    .get(`${ASSETS}/swagger-ui-bundle.js`, asset(bundlePath, "text/javascript; charset=utf-8"), { detail: { hide: true } })
    .get(`${ASSETS}/swagger-ui.css`, asset(cssPath, "text/css; charset=utf-8"), { detail: { hide: true } });
}
