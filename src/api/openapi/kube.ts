/**
 * OpenAPI v3 the way kube-apiserver serves it: /openapi/v3 lists one document per group-version,
 * each at a URL with a hash of its content, and each document names its schemas as Kubernetes
 * does (io.k8s.api.core.v1.Secret, io.pai.v1.Agent, io.k8s.apimachinery.pkg.apis.meta.v1.Status)
 * with `x-kubernetes-group-version-kind`. kubectl reads these: before it trusts the server to
 * validate (`apply --validate=strict`, the default) it looks for a PATCH operation carrying the
 * kind's `x-kubernetes-group-version-kind` that declares the `fieldValidation` query parameter;
 * without one it refuses to apply. Secrets also declare strategic merge patches, as core types
 * do, so kubectl computes them from these schemas.
 */
import type { TSchema } from "@sinclair/typebox";
import { toOpenApiSchema, type Schema } from "./convert";
import { openApiPath, type RouteInfo } from "./document";
import { DELETE_QUERY, ERROR_DESCRIPTIONS, PATCH_QUERY } from "./operations";
import { groupVersionPath, RESOURCES, type KubeResource } from "./resources";
import { DeleteOptions, ListMeta, ManagedFieldsEntry, ObjectMeta, OwnerReference, Patch, Status, WatchEvent } from "./schemas";

const META = "io.k8s.apimachinery.pkg.apis.meta.v1";
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** `pai.io` → `io.pai.v1.Agent`; the core group → `io.k8s.api.core.v1.Secret`. */
export function kubeSchemaName(group: string, version: string, kind: string): string {
  return group ? `${group.split(".").reverse().join(".")}.${version}.${kind}` : `io.k8s.api.core.${version}.${kind}`;
}

/** `pai.io` → `PaiIo`, the core group → `Core`: the middle of kube-style operation ids. */
const groupWord = (group: string) => (group ? group.split(/[^A-Za-z0-9]+/).map((w) => w[0]!.toUpperCase() + w.slice(1)).join("") : "Core");

const SHARED: [TSchema, string, { group: string; version: string; kind: string }?][] = [
  [ObjectMeta, `${META}.ObjectMeta`],
  [ListMeta, `${META}.ListMeta`],
  [OwnerReference, `${META}.OwnerReference`],
  [ManagedFieldsEntry, `${META}.ManagedFieldsEntry`],
  [Patch, `${META}.Patch`],
  [DeleteOptions, `${META}.DeleteOptions`, { group: "", version: "v1", kind: "DeleteOptions" }],
  [Status, `${META}.Status`, { group: "", version: "v1", kind: "Status" }],
  [WatchEvent, `${META}.WatchEvent`, { group: "", version: "v1", kind: "WatchEvent" }],
];

const parameter = (name: string, where: "path" | "query", schema: TSchema | Schema, description?: string) => {
  const s = toOpenApiSchema(schema);
  const text = description ?? (s.description as string | undefined);
  delete s.description;
  return { name, in: where, ...(where === "path" ? { required: true } : {}), ...(text ? { description: text } : {}), schema: s };
};
const queryParameters = (query: Record<string, TSchema>) => Object.entries(query).map(([name, s]) => parameter(name, "query", s));

const errors = (codes: number[]) =>
  Object.fromEntries(codes.map((c) => [c, { description: ERROR_DESCRIPTIONS[c] ?? "Error", content: { "application/json": { schema: ref(`${META}.Status`) } } }]));

/** One group-version's document. `routed` holds `METHOD /path` of every route the server has. */
export function groupVersionDocument(group: string, version: string, routed: ReadonlySet<string>, serverVersion: string) {
  const resources = RESOURCES.filter((r) => r.group === group && r.version === version);
  const refs = new Map<object, string>();
  for (const [s, name] of SHARED) refs.set(s, name);
  for (const r of resources) {
    refs.set(r.schema, kubeSchemaName(group, version, r.kind));
    refs.set(r.listSchema, kubeSchemaName(group, version, r.listKind));
  }

  const schemas: Record<string, Schema> = {};
  const gvk = (kind: string, g = group, v = version) => ({ "x-kubernetes-group-version-kind": [{ group: g, kind, version: v }] });
  for (const [s, name, k] of SHARED) schemas[name] = { ...toOpenApiSchema(s, refs), ...(k ? gvk(k.kind, k.group, k.version) : {}) };
  for (const r of resources) {
    schemas[kubeSchemaName(group, version, r.kind)] = { ...toOpenApiSchema(r.schema, refs), ...gvk(r.kind) };
    schemas[kubeSchemaName(group, version, r.listKind)] = { ...toOpenApiSchema(r.listSchema, refs), ...gvk(r.listKind) };
  }

  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of resources) Object.assign(paths, resourcePaths(r, routed));
  return {
    openapi: "3.0.0",
    info: { title: "Pai self-host", version: serverVersion },
    paths,
    components: { schemas: Object.fromEntries(Object.entries(schemas).sort(([a], [b]) => a.localeCompare(b))), securitySchemes: { BearerToken: { type: "apiKey", in: "header", name: "authorization", description: "Bearer token authentication" } } },
    security: [{ BearerToken: [] }],
  };
}

function resourcePaths(r: KubeResource, routed: ReadonlySet<string>) {
  const base = `/${groupVersionPath(r.group, r.version)}`;
  const object = ref(kubeSchemaName(r.group, r.version, r.kind));
  const list = ref(kubeSchemaName(r.group, r.version, r.listKind));
  const word = `${groupWord(r.group)}${r.version[0]!.toUpperCase()}${r.version.slice(1)}`;
  const tag = `${word[0]!.toLowerCase()}${word.slice(1)}`.replace(/V(\d)/, "_v$1");
  const gvk = { group: r.group, version: r.version, kind: r.kind };
  const json = (schema: object) => ({ "application/json": { schema } });
  const op = (action: string, id: string, description: string, extra: Record<string, unknown>) => ({
    tags: [tag],
    description,
    operationId: id,
    ...extra,
    "x-kubernetes-action": action,
    "x-kubernetes-group-version-kind": gvk,
  });
  const namespace = parameter("namespace", "path", { type: "string" }, "object name and auth scope, such as for teams and projects");
  const name = parameter("name", "path", { type: "string" }, `name of the ${r.kind}`);
  const watched = r.verbs.includes("watch");
  const listQuery = queryParameters(r.listQuery);
  const listAnswer = {
    200: { description: "OK", content: { ...json(list), ...(watched ? { "application/json;stream=watch": { schema: ref(`${META}.WatchEvent`) } } : {}) } },
    ...errors(watched ? [400, 401, 403, 410] : [400, 401, 403]),
  };
  const writeBody = { required: true, content: { ...json(object), "application/yaml": { schema: object } } };
  const patchTypes = ["application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json", ...(r.group === "" ? ["application/strategic-merge-patch+json"] : [])];
  const patchBody = { required: true, content: Object.fromEntries(patchTypes.map((t) => [t, { schema: ref(`${META}.Patch`) }])) };
  const has = (method: string, path: string) => routed.has(`${method} ${path}`);

  const paths: Record<string, Record<string, unknown>> = {};
  const all = `${base}/${r.plural}`;
  if (!r.namespaced) {
    // Cluster-wide (namespaces): the list and the objects sit right under the group-version.
    // The route's parameter is `{namespace}`, as the namespaced routes under this path name it.
    const clusterName = parameter("namespace", "path", { type: "string" }, `name of the ${r.kind}`);
    if (r.verbs.includes("list") && has("GET", all))
      paths[all] = { get: op("list", `list${word}${r.kind}`, `list objects of kind ${r.kind}`, { parameters: listQuery, responses: listAnswer }) };
    if (r.verbs.includes("get") && has("GET", `${all}/{namespace}`))
      paths[`${all}/{namespace}`] = {
        parameters: [clusterName],
        get: op("get", `read${word}${r.kind}`, `read the specified ${r.kind}`, { responses: { 200: { description: "OK", content: json(object) }, ...errors([401, 403, 404]) } }),
      };
    return paths;
  }
  if (r.verbs.includes("list") && has("GET", all))
    paths[all] = {
      get: op("list", `list${word}${r.kind}ForAllNamespaces`, `list or watch objects of kind ${r.kind} in every namespace`, { parameters: listQuery, responses: listAnswer }),
    };
  const collection = `${base}/namespaces/{namespace}/${r.plural}`;
  const item: Record<string, unknown> = { parameters: [namespace] };
  if (r.verbs.includes("list") && has("GET", collection))
    item.get = op("list", `list${word}Namespaced${r.kind}`, `list or watch objects of kind ${r.kind}`, { parameters: listQuery, responses: listAnswer });
  if (r.verbs.includes("create") && has("POST", collection))
    item.post = op("post", `create${word}Namespaced${r.kind}`, `create a ${r.kind}`, {
      parameters: queryParameters(r.writeQuery),
      requestBody: writeBody,
      responses: { 200: { description: "OK", content: json(object) }, 201: { description: "Created", content: json(object) }, ...errors([400, 401, 403, 409, 415, 422]) },
    });
  if (Object.keys(item).length > 1) paths[collection] = item;

  const one = `${collection}/{name}`;
  const named: Record<string, unknown> = { parameters: [name, namespace] };
  if (r.verbs.includes("get") && has("GET", one))
    named.get = op("get", `read${word}Namespaced${r.kind}`, `read the specified ${r.kind}`, { responses: { 200: { description: "OK", content: json(object) }, ...errors([401, 403, 404]) } });
  if (r.verbs.includes("update") && has("PUT", one))
    named.put = op("put", `replace${word}Namespaced${r.kind}`, `replace the specified ${r.kind}`, {
      parameters: queryParameters(r.writeQuery),
      requestBody: writeBody,
      responses: { 200: { description: "OK", content: json(object) }, 201: { description: "Created", content: json(object) }, ...errors([400, 401, 403, 409, 415, 422]) },
    });
  // Documented whether or not the route exists yet: kubectl will not apply a kind without it.
  if (r.verbs.includes("patch"))
    named.patch = op("patch", `patch${word}Namespaced${r.kind}`, `partially update the specified ${r.kind}`, {
      parameters: queryParameters(PATCH_QUERY),
      requestBody: patchBody,
      responses: { 200: { description: "OK", content: json(object) }, 201: { description: "Created", content: json(object) }, ...errors([400, 401, 403, 404, 409, 415, 422]) },
    });
  if (r.verbs.includes("delete") && has("DELETE", one))
    named.delete = op("delete", `delete${word}Namespaced${r.kind}`, `delete a ${r.kind}`, {
      parameters: queryParameters(DELETE_QUERY),
      requestBody: { content: json(ref(`${META}.DeleteOptions`)) },
      responses: { 200: { description: "OK", content: json(object) }, ...errors([401, 403, 404, 409]) },
    });
  if (Object.keys(named).length > 1) paths[one] = named;

  const status = `${one}/status`;
  if (r.status) {
    const sub: Record<string, unknown> = { parameters: [name, namespace] };
    if (has("GET", status))
      sub.get = op("get", `read${word}Namespaced${r.kind}Status`, `read status of the specified ${r.kind}`, { responses: { 200: { description: "OK", content: json(object) }, ...errors([401, 403, 404]) } });
    if (has("PUT", status))
      sub.put = op("put", `replace${word}Namespaced${r.kind}Status`, `replace status of the specified ${r.kind}`, {
        parameters: queryParameters(r.writeQuery),
        requestBody: writeBody,
        responses: { 200: { description: "OK", content: json(object) }, ...errors([400, 401, 403, 404, 409, 422]) },
      });
    if (has("PATCH", status))
      sub.patch = op("patch", `patch${word}Namespaced${r.kind}Status`, `partially update status of the specified ${r.kind}`, {
        parameters: queryParameters(PATCH_QUERY),
        requestBody: patchBody,
        responses: { 200: { description: "OK", content: json(object) }, ...errors([400, 401, 403, 404, 409, 422]) },
      });
    if (Object.keys(sub).length > 1) paths[status] = sub;
  }
  return paths;
}

export interface KubeOpenApi {
  /** The /openapi/v3 answer. */
  index: { paths: Record<string, { serverRelativeURL: string }> };
  /** Group-version path (`api/v1`, `apis/pai.io/v1`) → its document, serialised, and its hash. */
  documents: Map<string, { body: string; hash: string }>;
}

/** Every group-version's document, and the index that points at them by content hash. */
export function kubeOpenApi(routes: readonly RouteInfo[], serverVersion: string): KubeOpenApi {
  const routed = new Set(routes.map((r) => `${r.method.toUpperCase()} ${openApiPath(r.path)}`));
  const groupVersions = [...new Map(RESOURCES.map((r) => [groupVersionPath(r.group, r.version), r])).values()];
  const documents = new Map<string, { body: string; hash: string }>();
  const index: KubeOpenApi["index"] = { paths: {} };
  for (const r of groupVersions) {
    const key = groupVersionPath(r.group, r.version);
    const body = JSON.stringify(groupVersionDocument(r.group, r.version, routed, serverVersion));
    // As kube-apiserver: the hash changes with the content, so a client may cache a URL for good.
    const hash = new Bun.CryptoHasher("sha512").update(body).digest("hex").toUpperCase();
    documents.set(key, { body, hash });
    index.paths[key] = { serverRelativeURL: `/openapi/v3/${key}?hash=${hash}` };
  }
  return { index, documents };
}
