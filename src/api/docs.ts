/**
 * The OpenAPI document at /openapi/json and its docs page at /openapi. The page's script and style
 * are embedded in the binary and served from /openapi/assets, so the page renders with no internet.
 */
import { Elysia } from "elysia";
import { openapi } from "@elysiajs/openapi";
import bundlePath from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "file" };
import cssPath from "swagger-ui-dist/swagger-ui.css" with { type: "file" };

const ASSETS = "/openapi/assets";

export function docsRoutes(version: string) {
  const asset = (path: string, type: string) => () =>
    new Response(Bun.file(path), { headers: { "content-type": type, "cache-control": "public, max-age=86400" } });
  return new Elysia({ name: "docs" })
    .use(
      openapi({
        path: "/openapi",
        provider: "swagger-ui",
        swagger: { theme: `${ASSETS}/swagger-ui.css`, cdn: `${ASSETS}/swagger-ui-bundle.js`, autoDarkMode: false } as never,
        // `pai.io` has a dot: without staticFile: false the plugin would take our API for static files.
        exclude: { staticFile: false, paths: [`${ASSETS}/swagger-ui.css`, `${ASSETS}/swagger-ui-bundle.js`] },
        documentation: {
          info: {
            title: "Pai self-host",
            version,
            description:
              "Run AI agents on your own machine and start them from webhooks. The management API needs the admin token (Authorization: Bearer …); webhook URLs carry their own token.",
          },
          components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
          security: [{ bearer: [] }],
        },
      }),
    )
    .get(`${ASSETS}/swagger-ui-bundle.js`, asset(bundlePath, "text/javascript; charset=utf-8"), { detail: { hide: true } })
    .get(`${ASSETS}/swagger-ui.css`, asset(cssPath, "text/css; charset=utf-8"), { detail: { hide: true } });
}
