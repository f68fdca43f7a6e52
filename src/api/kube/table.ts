/**
 * Server-side printing: what `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` asks for
 * (kubectl get does), and the metadata-only forms (`as=PartialObjectMetadata[List]`) that
 * metadata informers ask for. Columns are the resource's; `Age` is rendered here, as
 * kube-apiserver renders date columns, in kubectl's own duration format.
 */
import { BadRequestError } from "../../domain/errors";

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; creationTimestamp?: string | null; resourceVersion?: string; labels?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
}

export interface Column {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  format?: string;
  description: string;
  /** 0: always shown; 1: only with `-o wide`. */
  priority: number;
}

export type Output = { as: "object" } | { as: "Table" | "PartialObjectMetadata"; version: "v1" | "v1beta1" };

interface MediaRange {
  type: string;
  params: Record<string, string>;
}

function parseAccept(accept: string): MediaRange[] {
  // Bounded: a header is at most a few kB, and only the first ranges matter.
  return accept
    .slice(0, 4096)
    .split(",")
    .slice(0, 32)
    .map((part) => {
      const [type, ...params] = part.split(";");
      return {
        type: type!.trim().toLowerCase(),
        params: Object.fromEntries(
          params.map((p) => {
            const eq = p.indexOf("=");
            return eq === -1 ? [p.trim().toLowerCase(), ""] : [p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim().replace(/^"(.*)"$/, "$1")];
          }),
        ),
      };
    });
}

const jsonLike = (type: string) => type === "application/json" || type === "*/*" || type === "application/*";

/** The first form in the Accept header that pai can produce; plain JSON when none is named. */
export function negotiate(accept: string | null): Output {
  if (!accept) return { as: "object" };
  for (const r of parseAccept(accept)) {
    if (!jsonLike(r.type)) continue;
    const as = r.params.as;
    if (as === undefined) return { as: "object" };
    const version = r.params.v;
    if (r.params.g !== "meta.k8s.io" || (version !== "v1" && version !== "v1beta1")) continue;
    if (as === "Table") return { as: "Table", version };
    if (as === "PartialObjectMetadata" || as === "PartialObjectMetadataList") return { as: "PartialObjectMetadata", version };
  }
  return { as: "object" };
}

export type IncludeObject = "None" | "Metadata" | "Object";

export function includeObjectOf(value: string | null): IncludeObject {
  if (value === null || value === "") return "Metadata";
  if (value === "None" || value === "Metadata" || value === "Object") return value;
  throw new BadRequestError(`includeObject must be None, Metadata or Object (got "${value.slice(0, 40)}")`);
}

export const partialMetadata = (o: KubeObject, version: string) => ({ kind: "PartialObjectMetadata", apiVersion: `meta.k8s.io/${version}`, metadata: o.metadata });

export interface ListMeta {
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}

export function table(version: string, columns: Column[], rows: { cells: unknown[]; object: KubeObject }[], include: IncludeObject, meta: ListMeta | Record<string, never> = {}) {
  return {
    kind: "Table",
    apiVersion: `meta.k8s.io/${version}`,
    metadata: meta,
    columnDefinitions: columns,
    rows: rows.map((r) => ({
      cells: r.cells,
      ...(include === "None" ? {} : { object: include === "Object" ? r.object : partialMetadata(r.object, version) }),
    })),
  };
}

/** A duration as kubectl prints ages: `45s`, `3m20s`, `15m`, `5h10m`, `3d4h`, `400d`, `2y30d`. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 60 * 2) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 60 * 3) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const d = Math.floor(hours / 24) % 365;
    return d === 0 ? `${Math.floor(hours / 24 / 365)}y` : `${Math.floor(hours / 24 / 365)}y${d}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

/** The Age cell of an object created at `timestamp` (ISO 8601). */
export function age(timestamp: string | null | undefined, now = Date.now()): string {
  const t = timestamp ? Date.parse(timestamp) : NaN;
  return Number.isNaN(t) ? "<unknown>" : humanDuration(now - t);
}

export const nameColumn: Column = { name: "Name", type: "string", format: "name", description: "Name must be unique within a namespace.", priority: 0 };
export const ageColumn: Column = { name: "Age", type: "string", description: "Time since the object was created.", priority: 0 };
