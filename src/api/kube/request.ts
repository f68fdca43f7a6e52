/**
 * What Kubernetes writes carry besides the object: the body's media type (JSON, YAML, protobuf,
 * the patch types), `dryRun`, `fieldValidation`, `fieldManager`, DeleteOptions; and how unknown
 * fields are answered (Strict: 422; Warn: dropped, with a `Warning` header kubectl prints;
 * Ignore: dropped).
 */
import { BadRequestError, UnsupportedMediaTypeError } from "../../domain/errors";
import { pointerToField } from "../../domain/agent";
import { parseBody } from "../params";
import { parsePointer } from "./patch";
import { decodeProtobuf, PROTOBUF } from "./protobuf";

export type FieldValidation = "Strict" | "Warn" | "Ignore";

export interface WriteOptions {
  dryRun: boolean;
  fieldValidation: FieldValidation;
  fieldManager?: string;
  force: boolean;
}

const mediaType = (contentType: string | null | undefined) => (contentType ?? "").split(";")[0]!.trim().toLowerCase();

function dryRunOf(values: string[]): boolean {
  for (const v of values) if (v !== "All") throw new BadRequestError(`dryRun must be All (got "${v.slice(0, 40)}")`);
  return values.length > 0;
}

export function writeOptions(request: Request): WriteOptions {
  const q = new URL(request.url).searchParams;
  const validation = q.get("fieldValidation") ?? "";
  // Without the parameter pai stays strict (unknown fields are errors), as its README promises.
  if (validation !== "" && validation !== "Strict" && validation !== "Warn" && validation !== "Ignore")
    throw new BadRequestError(`fieldValidation must be Strict, Warn or Ignore (got "${validation.slice(0, 40)}")`);
  const manager = q.get("fieldManager") ?? undefined;
  if (manager !== undefined && (manager.length > 128 || /[\u0000-\u001f\u007f]/.test(manager)))
    throw new BadRequestError("fieldManager must be at most 128 printable characters");
  const force = q.get("force") ?? "";
  if (force !== "" && force !== "true" && force !== "false") throw new BadRequestError(`force must be true or false (got "${force.slice(0, 20)}")`);
  return { dryRun: dryRunOf(q.getAll("dryRun")), fieldValidation: (validation || "Strict") as FieldValidation, fieldManager: manager, force: force === "true" };
}

export type PatchType = "merge" | "strategic" | "json" | "apply";

const PATCH_TYPES: Record<string, PatchType> = {
  "application/merge-patch+json": "merge",
  "application/strategic-merge-patch+json": "strategic",
  "application/json-patch+json": "json",
  "application/apply-patch+yaml": "apply",
};

export function patchTypeOf(contentType: string | null): PatchType {
  const type = PATCH_TYPES[mediaType(contentType)];
  if (!type)
    throw new UnsupportedMediaTypeError(
      `PATCH needs Content-Type ${Object.keys(PATCH_TYPES).join(", ")} (got "${mediaType(contentType).slice(0, 80) || "none"}")`,
    );
  return type;
}

/**
 * A parse hook for Kubernetes-facing routes: `authorize` first (401/403 before any byte is read),
 * then the body by its media type: JSON (and the JSON patch types), YAML, server-side apply's
 * YAML, and, when `protobuf` is set, Kubernetes protobuf.
 */
export function kubeBody(authorize: (request: Request, params: Record<string, string | undefined>) => void, opts: { protobuf?: boolean } = {}) {
  return async (ctx: { request: Request; contentType: string; params?: Record<string, string | undefined> }) => {
    authorize(ctx.request, ctx.params ?? {});
    const type = mediaType(ctx.contentType);
    if (type === PROTOBUF) {
      if (!opts.protobuf) throw new UnsupportedMediaTypeError(`${PROTOBUF} is accepted for Secrets only: send this body as application/json or application/yaml`);
      return decodeProtobuf(new Uint8Array(await ctx.request.arrayBuffer()));
    }
    // Server-side apply sends YAML (JSON is YAML too) under its own media type.
    if (type === "application/apply-patch+yaml") return parseBody(ctx.request, "application/yaml");
    return parseBody(ctx.request, ctx.contentType);
  };
}

/** A DELETE's options, from its body (DeleteOptions, JSON or protobuf) and query. */
export function deleteOptions(request: Request, body: unknown): { dryRun: boolean; uid?: string; resourceVersion?: string } {
  const q = new URL(request.url).searchParams;
  const b = typeof body === "object" && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  if (b.kind !== undefined && b.kind !== "DeleteOptions") throw new BadRequestError(`a DELETE body must be DeleteOptions (got kind ${JSON.stringify(b.kind).slice(0, 40)})`);
  const bodyDry = b.dryRun === undefined ? [] : b.dryRun;
  if (!Array.isArray(bodyDry) || bodyDry.some((v) => typeof v !== "string")) throw new BadRequestError("DeleteOptions.dryRun must be a list of strings");
  const pre = b.preconditions;
  if (pre !== undefined && pre !== null && (typeof pre !== "object" || Array.isArray(pre))) throw new BadRequestError("DeleteOptions.preconditions must be an object {uid, resourceVersion}");
  const { uid, resourceVersion } = (pre ?? {}) as { uid?: unknown; resourceVersion?: unknown };
  const text = (v: unknown, max: number) => v === undefined || v === null || (typeof v === "string" && v.length <= max);
  if (!text(uid, 128) || !text(resourceVersion, 32)) throw new BadRequestError("DeleteOptions.preconditions.uid and .resourceVersion must be strings (a uid, a resource version)");
  return {
    dryRun: dryRunOf([...q.getAll("dryRun"), ...(bodyDry as string[])]),
    ...(typeof uid === "string" && uid ? { uid } : {}),
    ...(typeof resourceVersion === "string" && resourceVersion ? { resourceVersion } : {}),
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Deletes what the JSON pointer `pointer` (`/spec/triggers/0/x`) names in `value`, if it is there. */
export function deleteAt(value: unknown, pointer: string) {
  const path = parsePointer(pointer, "field");
  let at: unknown = value;
  for (const seg of path.slice(0, -1)) {
    at = Array.isArray(at) ? at[Number(seg)] : isObject(at) && Object.hasOwn(at, seg) ? at[seg] : undefined;
    if (at === undefined) return;
  }
  const last = path[path.length - 1];
  if (isObject(at) && last !== undefined) delete at[last];
}

/**
 * Applies `fieldValidation` to a body whose unknown fields are at `pointers` (from the schema
 * check): Strict leaves them (the caller refuses them), Warn and Ignore drop them. Returns the
 * warnings to send (Warn only).
 */
export function dropUnknown(value: unknown, pointers: string[], validation: FieldValidation): string[] {
  if (validation === "Strict" || !pointers.length) return [];
  for (const p of pointers) deleteAt(value, p);
  return validation === "Warn" ? pointers.map((p) => `unknown field "${pointerToField(p)}"`) : [];
}

/** `Warning` header values (RFC 7234 code 299), which kubectl prints as `Warning: …`; printable ASCII only, as a header must be. */
export function warningHeader(warnings: string[]): string {
  return warnings
    .slice(0, 32)
    .map((w) => `299 - ${JSON.stringify(w.replace(/[^\x20-\x7e]/g, "?").slice(0, 256))}`)
    .join(", ");
}
