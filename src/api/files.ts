/**
 * A session's files over HTTP: GET /agents/{session}/files lists what the agent left in its working
 * folder, GET /agents/{session}/files/{path} downloads one file. Same `?namespace=` and token rules
 * as the other session reads. The path is taken from the raw request URL and decoded here once, a
 * component at a time, so an encoded `/` or `..` never becomes a separator or a step up; what may
 * be served at all is decided by the session file service (no links, no special files).
 */
import { Elysia, t } from "elysia";
import { Type } from "@sinclair/typebox";
import { BadRequestError } from "../domain/errors";
import { DEFAULT_NAMESPACE } from "../domain/names";
import type { SessionService } from "../service/sessions";
import type { SessionFileService } from "../service/session-files";
import type { TokenService } from "../service/tokens";
import { requireNamespace, requirePrincipal } from "./auth";
import { checkLabel } from "./params";

const tags = ["Sessions"];

const FilesQuery = t.Object({ namespace: t.Optional(t.String()) });
const FileList = t.Object({
  session: t.String(),
  namespace: t.String(),
  files: t.Array(
    t.Object({
      path: t.String({ description: "Relative to the session's folder, /-separated" }),
      // TypeBox's own integer: Elysia's t.Integer would also accept (and document) a string.
      size: Type.Integer({ description: "Bytes" }),
      modifiedAt: t.String({ description: "Last modification, ISO 8601" }),
    }),
  ),
  truncated: t.Boolean({ description: "True when the list was cut short (at most 10000 files)" }),
});

const statusRef = { $ref: "#/components/schemas/Status" };
const errors = (codes: Record<number, string>) =>
  Object.fromEntries(Object.entries(codes).map(([code, description]) => [code, { description, content: { "application/json": { schema: statusRef } } }]));

/**
 * The download route in the OpenAPI document. Elysia's router needs a wildcard (the path has
 * slashes), which its generator would show as a parameter named `*`; this names it `path`.
 */
export function fileOpenApiPaths() {
  return {
    "/agents/{session}/files/{path}": {
      get: {
        tags,
        operationId: "getSessionFile",
        summary: "Download one file of a session's working folder",
        description:
          "The file's bytes, as an attachment (Content-Disposition), with a Content-Type from its extension and X-Content-Type-Options: nosniff. Only regular files inside the folder are served: symbolic links anywhere in the path, special files (FIFOs, sockets, devices) and files with several hard links are refused, as are paths with `..`, an empty component, NUL or an encoded `/`.",
        parameters: [
          { name: "session", in: "path", required: true, schema: { type: "string" } },
          { name: "path", in: "path", required: true, description: "The file's path in the session's folder; it may contain `/` (each component percent-encoded)", schema: { type: "string" } },
          { name: "namespace", in: "query", required: false, schema: { type: "string" } },
        ],
        responses: {
          200: { description: "The file's bytes", content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } } },
          ...errors({
            400: "An invalid path, or not a regular file (a symbolic link, a folder, a FIFO, a file with several hard links)",
            401: "No token, or an invalid one",
            403: "A token of another namespace",
            404: "No such session in the namespace, or no such file",
          }),
        },
      },
    },
  };
}

/** The decoded components of the path after `/files/` in the raw URL; 400 for encoded separators or bad escapes. */
export function pathSegments(url: string): string[] {
  const pathname = new URL(url).pathname;
  const m = /^\/agents\/[^/]+\/files\/(.*)$/.exec(pathname);
  const raw = m ? m[1]! : "";
  // An encoded / or \ would make one component look like several to whatever reads it next.
  if (/%(2f|5c)/i.test(raw)) throw new BadRequestError("invalid file path: it may not contain an encoded / or \\");
  return raw.split("/").map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw new BadRequestError(`invalid file path: "${s}" is not valid percent-encoding`);
    }
  });
}

/** A Content-Disposition that names the file safely: an ASCII fallback, quoted, and the exact name per RFC 5987. */
export function attachment(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\%;]/g, "_") || "download";
  const exact = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${exact}`;
}

/** The media type for a file name's extension; application/octet-stream when unknown. */
export function contentTypeOf(name: string): string {
  try {
    return Bun.file(name).type || "application/octet-stream";
  } catch {
    return "application/octet-stream";
  }
}

export function fileRoutes(deps: { sessions: SessionService; sessionFiles: SessionFileService; tokens: TokenService }) {
  const { sessionFiles, tokens } = deps;

  /** Authenticates for the namespace in the query (default: the token's own, else "default"), as the other session reads do. */
  function scope(header: string | null, namespace: string | undefined): string {
    const p = requirePrincipal(tokens, header);
    const ns = checkLabel("namespace", namespace ?? p.namespace ?? DEFAULT_NAMESPACE);
    requireNamespace(tokens, header, ns);
    return ns;
  }

  return new Elysia({ name: "session-files" })
    .get(
      "/agents/:session/files",
      async ({ params, query, request }) => {
        const ns = scope(request.headers.get("authorization"), query.namespace);
        const { files, truncated } = await sessionFiles.list(ns, params.session);
        return { session: params.session, namespace: ns, files, truncated };
      },
      {
        params: t.Object({ session: t.String() }),
        query: FilesQuery,
        response: { 200: FileList },
        detail: {
          tags,
          summary: "The files in a session's working folder: {session, namespace, files: [{path, size, modifiedAt}], truncated}",
          description:
            "Every regular file under the folder, sorted by path, at most 10000. Symbolic links, special files and files with several hard links are not listed. A session without a folder (yet) has none.",
        },
      },
    )
    .get(
      "/agents/:session/files/*",
      async ({ params, query, request }) => {
        const ns = scope(request.headers.get("authorization"), query.namespace);
        const file = await sessionFiles.open(ns, params.session, pathSegments(request.url));
        // A stream (a large file) goes out chunked: Bun sends no Content-Length for one.
        return new Response(file.body, {
          headers: {
            "content-type": contentTypeOf(file.name),
            "content-disposition": attachment(file.name),
            "last-modified": new Date(file.modifiedAt).toUTCString(),
            "x-content-type-options": "nosniff",
            // What an agent wrote is untrusted: should a browser ever render it, it runs nothing.
            "content-security-policy": "sandbox; default-src 'none'",
            "cache-control": "no-store",
          },
        });
      },
      {
        params: t.Object({ session: t.String(), "*": t.String() }),
        query: FilesQuery,
        // Documented by fileOpenApiPaths, with the path as a named parameter.
        detail: { hide: true },
      },
    );
}
