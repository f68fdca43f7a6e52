/**
 * The web console: GET /console (and every /console/... address, which the page routes itself)
 * answers one small HTML page; its script, stylesheet and icon are embedded in the binary
 * (src/console/dist, built by src/console/build.ts) and served from /console/assets, so the console
 * works offline. The page holds no data and needs no token: it asks for one and talks to the
 * documented API with it. Every answer carries a strict Content-Security-Policy (scripts, styles,
 * images and connections from this origin only; no inline code, no plugins, no framing), so even
 * a rendering mistake could not run injected script or send data elsewhere.
 */
import { Elysia } from "elysia";
import scriptPath from "../console/dist/console.js" with { type: "file" };
import stylePath from "../console/dist/console.css" with { type: "file" };
import iconPath from "../console/icon.svg" with { type: "file" };
import { failure, jsonResponse } from "./status";

export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** Headers on every console answer: the page and its assets. */
export const CONSOLE_HEADERS: Record<string, string> = {
  "content-security-policy": CONSOLE_CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

const ASSETS: Record<string, { path: string; type: string }> = {
  "console.js": { path: scriptPath, type: "text/javascript; charset=utf-8" },
  "console.css": { path: stylePath, type: "text/css; charset=utf-8" },
  "icon.svg": { path: iconPath, type: "image/svg+xml" },
};

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Pai console</title>
<link rel="icon" href="/console/assets/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/console/assets/console.css">
<script type="module" src="/console/assets/console.js"></script>
</head>
<body>
<div id="app"></div>
<noscript>The Pai console needs JavaScript. Everything it shows is also in the API (/openapi) and the pai CLI.</noscript>
</body>
</html>
`;

/** An asset's bytes and ETag, read once. */
const loaded = new Map<string, { bytes: ArrayBuffer; etag: string }>();
async function load(name: string) {
  let a = loaded.get(name);
  if (!a) {
    const bytes = await Bun.file(ASSETS[name]!.path).arrayBuffer();
    a = { bytes, etag: `"${Bun.hash(bytes).toString(36)}"` };
    loaded.set(name, a);
  }
  return a;
}

const hidden = { detail: { hide: true } };

function page(): Response {
  return new Response(PAGE, { headers: { ...CONSOLE_HEADERS, "content-type": "text/html; charset=utf-8", "cache-control": "no-cache" } });
}

export function consoleRoutes() {
  return new Elysia({ name: "console" })
    .get("/console", page, hidden)
    .get(
      "/console/assets/:file",
      async ({ params, request }) => {
        const spec = Object.hasOwn(ASSETS, params.file) ? ASSETS[params.file] : undefined;
        if (!spec) return jsonResponse(failure(404, "NotFound", `no console asset "${params.file.slice(0, 100)}"`), 404, CONSOLE_HEADERS);
        const a = await load(params.file);
        // Revalidated on every load (no-cache + ETag): a new binary's assets are never mixed with an old page.
        const headers = { ...CONSOLE_HEADERS, "content-type": spec.type, "cache-control": "no-cache", etag: a.etag };
        if (request.headers.get("if-none-match") === a.etag) return new Response(null, { status: 304, headers });
        return new Response(a.bytes, { headers });
      },
      hidden,
    )
    // The page routes /console/agents/..., /console/sessions/... itself.
    .get("/console/*", page, hidden);
}
