/**
 * List requests the Kubernetes way: `labelSelector`, `fieldSelector`, `limit` + `continue`, and
 * the response as a `<Kind>List`, a Table or a PartialObjectMetadataList, as the Accept header
 * asks. Also the same choice for one object (kubectl asks for a Table for `get agent x` too).
 */
import { BadRequestError } from "../../domain/errors";
import { parseResourceVersion } from "../../service/watch";
import { openContinue, sealContinue, type ContinuePosition } from "./continue";
import { apiVersionOf, type KubeResource } from "./resources";
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector, type FieldSelector, type LabelSelector } from "./selectors";
import { includeObjectOf, negotiate, partialMetadata, table, type Column, type IncludeObject, type KubeObject, type ListMeta, type Output } from "./table";

/** How a resource is shown and selected. */
export interface View {
  resource: KubeResource;
  columns: Column[];
  cells: (o: KubeObject) => unknown[];
  /** Fields `fieldSelector` may name beyond metadata.name and metadata.namespace, and how to read them. */
  fields?: Record<string, (o: KubeObject) => string | undefined>;
}

export interface ListOptions {
  labels: LabelSelector;
  fields: FieldSelector;
  /** 0: no limit. */
  limit: number;
  /** The list this is (resource and namespace scope), as continue tokens name it. */
  list: string;
  from?: ContinuePosition;
  output: Output;
  include: IncludeObject;
}

/** The largest `limit` honoured; larger ones are served this many at a time, with a continue token. */
export const MAX_LIMIT = 5000;

const baseFields: Record<string, (o: KubeObject) => string | undefined> = {
  "metadata.name": (o) => o.metadata.name,
  "metadata.namespace": (o) => o.metadata.namespace,
};

const fieldsOf = (view: View) => ({ ...baseFields, ...view.fields });

/** Reads the list options of a request; `namespace` is the URL's (undefined: all namespaces). */
export function listOptions(request: Request, view: View, namespace: string | undefined): ListOptions {
  const q = new URL(request.url).searchParams;
  const limitText = q.get("limit") ?? "";
  if (limitText !== "" && !/^\d{1,9}$/.test(limitText)) throw new BadRequestError(`limit must be a whole number (got "${limitText.slice(0, 20)}")`);
  parseResourceVersion(q.get("resourceVersion") ?? undefined);
  const match = q.get("resourceVersionMatch") ?? "";
  if (match !== "" && match !== "NotOlderThan" && match !== "Exact") throw new BadRequestError(`resourceVersionMatch must be NotOlderThan or Exact (got "${match.slice(0, 40)}")`);
  const list = `${view.resource.plural}/${namespace ?? ""}`;
  const token = q.get("continue") ?? "";
  return {
    labels: parseLabelSelector(q.get("labelSelector") ?? ""),
    fields: parseFieldSelector(q.get("fieldSelector") ?? "", Object.keys(fieldsOf(view))),
    limit: Math.min(Number(limitText || 0), MAX_LIMIT),
    list,
    ...(token ? { from: openContinue(token, list) } : {}),
    output: negotiate(request.headers.get("accept")),
    include: includeObjectOf(q.get("includeObject")),
  };
}

export function selects(view: View, opts: Pick<ListOptions, "labels" | "fields">, o: KubeObject): boolean {
  const fields = fieldsOf(view);
  return matchesLabels(opts.labels, o.metadata.labels) && matchesFields(opts.fields, (f) => fields[f]?.(o));
}

const keyOf = (o: KubeObject) => [o.metadata.namespace ?? "", o.metadata.name];
const after = (a: (string | number)[], b: (string | number)[]) => a[0]! > b[0]! || (a[0] === b[0] && a[1]! > b[1]!);
/** Pages are cut in this order (by code unit), whatever order the store returned. */
const byKey = (a: KubeObject, b: KubeObject) => (after(keyOf(a), keyOf(b)) ? 1 : after(keyOf(b), keyOf(a)) ? -1 : 0);

/**
 * One page of the `objects` the selectors select, by namespace then name: the objects after the
 * continue position, at most `limit`, and a token for the rest.
 */
export function page(view: View, opts: ListOptions, objects: KubeObject[]): { items: KubeObject[]; continue?: string; remainingItemCount?: number } {
  let selected = objects.filter((o) => selects(view, opts, o)).sort(byKey);
  const from = opts.from?.after;
  if (from) {
    if (from.length !== 2 || typeof from[0] !== "string" || typeof from[1] !== "string") throw new BadRequestError("continue: not a continue token of this list");
    selected = selected.filter((o) => after(keyOf(o), from));
  }
  if (!opts.limit || selected.length <= opts.limit) return { items: selected };
  const items = selected.slice(0, opts.limit);
  const last = items[items.length - 1]!;
  return { items, continue: sealContinue({ list: opts.list, after: keyOf(last) }), remainingItemCount: selected.length - items.length };
}

/** A list response in the form asked for. */
export function listBody(view: View, opts: Pick<ListOptions, "output" | "include">, items: KubeObject[], meta: ListMeta) {
  const r = view.resource;
  const metadata = { resourceVersion: meta.resourceVersion, ...(meta.continue ? { continue: meta.continue } : {}), ...(meta.remainingItemCount ? { remainingItemCount: meta.remainingItemCount } : {}) };
  switch (opts.output.as) {
    case "Table":
      return table(opts.output.version, view.columns, items.map((o) => ({ cells: view.cells(o), object: o })), opts.include, metadata);
    case "PartialObjectMetadata":
      return { kind: "PartialObjectMetadataList", apiVersion: `meta.k8s.io/${opts.output.version}`, metadata, items: items.map((o) => partialMetadata(o, (opts.output as { version: string }).version)) };
    default:
      return { apiVersion: apiVersionOf(r), kind: `${r.kind}List`, metadata, items };
  }
}

/** One object in the form asked for (a Table of one row for kubectl get NAME). */
export function objectBody(view: View, request: Request, o: KubeObject) {
  const output = negotiate(request.headers.get("accept"));
  if (output.as === "object") return o;
  if (output.as === "PartialObjectMetadata") return partialMetadata(o, output.version);
  const include = includeObjectOf(new URL(request.url).searchParams.get("includeObject"));
  return table(output.version, view.columns, [{ cells: view.cells(o), object: o }], include, { resourceVersion: o.metadata.resourceVersion ?? "" });
}

/**
 * How a watch shows and selects its events' objects: as the list would (a one-row Table for
 * kubectl get -w, metadata only for metadata informers), selected by the list's selectors.
 * `toApi` turns what the store's log holds into the API object.
 */
export function watchView(view: View, opts: ListOptions, toApi: (stored: unknown) => KubeObject) {
  const shownAs = new WeakMap<object, KubeObject>();
  return {
    toObject(stored: unknown): unknown {
      const o = toApi(stored);
      const shown =
        opts.output.as === "Table"
          ? table(opts.output.version, view.columns, [{ cells: view.cells(o), object: o }], opts.include)
          : opts.output.as === "PartialObjectMetadata"
            ? partialMetadata(o, opts.output.version)
            : o;
      if (shown !== o) shownAs.set(shown, o);
      return shown;
    },
    filter: (shown: unknown) => selects(view, opts, shownAs.get(shown as object) ?? (shown as KubeObject)),
  };
}
