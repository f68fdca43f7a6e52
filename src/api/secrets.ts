/**
 * Secrets over HTTP, Kubernetes-shaped: /api/v1/namespaces/{namespace}/secrets[/{name}] and
 * /api/v1/secrets (all namespaces). Admin token. POST creates (409 if the name is taken), PUT
 * creates or replaces, PATCH merges (merge, strategic merge as merge, JSON patch, server-side
 * apply), as in Kubernetes; lists select, page, watch and print as agents do. kubectl sends
 * Secrets and DeleteOptions as Kubernetes protobuf, which is read here too.
 *
 * Secrets named pai-webhook-* are the controller's: they are read and deleted (deleting one
 * rotates that agent's webhook token), never written through the API, unless this server runs no
 * controller (--no-controller: then another one, a `pai serve --kubernetes`, writes them here).
 *
 * `metadata.ownerReferences` may hold one controller reference to an Agent of the namespace (by
 * name and uid): deleting the Agent deletes the secret, as the cluster's garbage collector does.
 */
import { Elysia, t } from "elysia";
import { BadRequestError, InvalidError } from "../domain/errors";
import type { SecretRow } from "../store/secrets";
import type { SecretService } from "../service/secrets";
import type { AgentService } from "../service/agents";
import type { TokenService } from "../service/tokens";
import type { WatchService } from "../service/watch";
import { requireAdmin } from "./auth";
import { listBody, listOptions, objectBody, page, watchView, type View } from "./kube/list";
import { jsonPatch, mergePatch, strategicMergePatch } from "./kube/patch";
import { deleteOptions, kubeBody, patchTypeOf, warningHeader, writeOptions, type WriteOptions } from "./kube/request";
import { alreadyExists, invalid, notFound, SECRETS, stale } from "./kube/resources";
import { age, ageColumn, nameColumn, type KubeObject } from "./kube/table";
import { checkBody, checkLabel, NamedParams, NamespaceParams } from "./params";
import { isWatch, watchResponse } from "./watch";

const BASE = "/api/v1";
const tags = ["Secrets"];

/** `ownerName`: the name of the Agent whose uid is `ownerUid` (default: the secret's pai.io/agent label). */
export function secretObject(s: SecretRow, ownerName = s.labels?.["pai.io/agent"]) {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: s.name,
      namespace: s.namespace,
      uid: s.uid,
      resourceVersion: String(s.resourceVersion),
      creationTimestamp: s.createdAt,
      ...(s.labels ? { labels: s.labels } : {}),
      ...(s.annotations ? { annotations: s.annotations } : {}),
      ...(s.ownerUid && ownerName ? { ownerReferences: [{ apiVersion: "pai.io/v1", kind: "Agent", name: ownerName, uid: s.ownerUid, controller: true }] } : {}),
    },
    type: s.type,
    data: Object.fromEntries(Object.entries(s.data).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
  };
}

const SecretBody = t.Object({
  apiVersion: t.Optional(t.Literal("v1")),
  kind: t.Optional(t.Literal("Secret")),
  metadata: t.Optional(
    t.Object({
      name: t.Optional(t.String()),
      namespace: t.Optional(t.String()),
      labels: t.Optional(t.Record(t.String(), t.String())),
      annotations: t.Optional(t.Record(t.String(), t.String())),
      resourceVersion: t.Optional(t.String({ description: "When given on an update, it must be the current one (409 Conflict otherwise)." })),
    }),
  ),
  type: t.Optional(t.String({ maxLength: 253 })),
  data: t.Optional(t.Record(t.String(), t.String(), { description: "Values, base64-encoded." })),
  stringData: t.Optional(t.Record(t.String(), t.String(), { description: "Values in plain text; merged over data." })),
  immutable: t.Optional(t.Boolean({ description: "Accepted and not enforced." })),
});

type Body = typeof SecretBody.static;

/** The fields a Secret has; others are unknown fields, answered as fieldValidation says. */
const KNOWN_FIELDS = new Set(["apiVersion", "kind", "metadata", "type", "data", "stringData", "immutable"]);
/** Metadata the server sets or pai does not keep for secrets: accepted (a get -o yaml re-applies) and ignored. */
const KNOWN_META = new Set(["name", "namespace", "labels", "annotations", "resourceVersion", "uid", "creationTimestamp", "generation", "ownerReferences", "managedFields", "generateName", "finalizers"]);

const KEY = /^[-._a-zA-Z0-9]+$/;
const utf8 = new TextDecoder("utf-8", { fatal: true });
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function decodeData(body: Body): Record<string, string> {
  const out: Record<string, string> = {};
  const put = (k: string, v: string) => Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  for (const [k, v] of Object.entries(body.data ?? {})) {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) throw new BadRequestError(`data.${k}: value is not valid base64 (use stringData for plain text)`);
    try {
      put(k, utf8.decode(Buffer.from(v, "base64")));
    } catch {
      throw new BadRequestError(`data.${k}: the value is not UTF-8 text; pai keeps secret values as text`);
    }
  }
  for (const [k, v] of Object.entries(body.stringData ?? {})) put(k, v);
  for (const k of Object.keys(out)) if (!KEY.test(k)) throw new BadRequestError(`key "${k.slice(0, 100)}" is not valid: use letters, digits, '-', '_' and '.'`);
  return out;
}

export const secretView: View = {
  resource: SECRETS,
  columns: [
    nameColumn,
    { name: "Type", type: "string", description: "The secret's type.", priority: 0 },
    { name: "Data", type: "integer", description: "The number of values.", priority: 0 },
    ageColumn,
  ],
  cells: (o) => [o.metadata.name, o.type, Object.keys((o.data as Record<string, string> | undefined) ?? {}).length, age(o.metadata.creationTimestamp)],
  fields: { type: (o) => o.type as string },
};

export function secretRoutes(deps: {
  secrets: SecretService;
  tokens: TokenService;
  watch?: WatchService;
  maxBodyBytes?: number;
  /** Where owner references are checked (an Agent of that name and uid must exist). */
  agents?: Pick<AgentService, "list">;
  /** Whether this server's controller manages pai-webhook-* (default true). */
  controller?: boolean;
}) {
  const { secrets, tokens } = deps;
  const managed = (name: string) => deps.controller !== false && name.startsWith("pai-webhook-");
  /** The Agent a stored owner uid names (its label says it for the controller's own secrets). */
  const ownerNameOf = (s: SecretRow) => s.labels?.["pai.io/agent"] ?? (s.ownerUid ? deps.agents?.list(s.namespace).find((a) => a.agent.metadata.uid === s.ownerUid)?.agent.metadata.name : undefined);
  const render = (s: SecretRow) => secretObject(s, ownerNameOf(s));

  /** The uid of the Agent that `metadata.ownerReferences` makes this secret's controller, or null. */
  function ownerUidOf(refs: unknown, namespace: string, name: string): string | null {
    if (refs === undefined || refs === null) return null;
    const field = "metadata.ownerReferences";
    if (!Array.isArray(refs)) throw invalid(SECRETS, name, [{ field, message: "must be a list of owner references" }]);
    if (refs.length === 0) return null;
    if (refs.length > 1) throw invalid(SECRETS, name, [{ field, message: "pai keeps one owner reference per secret: the controller reference to an Agent" }]);
    const ref = refs[0];
    const f = `${field}[0]`;
    if (!isObject(ref) || typeof ref.name !== "string" || typeof ref.uid !== "string")
      throw invalid(SECRETS, name, [{ field: f, message: "must have apiVersion, kind, name and uid" }]);
    if (ref.apiVersion !== "pai.io/v1" || ref.kind !== "Agent" || ref.controller !== true)
      throw invalid(SECRETS, name, [{ field: f, message: "pai keeps only a controller reference to an Agent (apiVersion: pai.io/v1, kind: Agent, controller: true)" }]);
    const owner = deps.agents?.list(namespace).find((a) => a.agent.metadata.name === ref.name);
    if (!owner || owner.agent.metadata.uid !== ref.uid)
      throw invalid(SECRETS, name, [{ field: `${f}.uid`, message: `no Agent "${String(ref.name).slice(0, 63)}" with uid "${String(ref.uid).slice(0, 64)}" in namespace "${namespace}"` }]);
    return ref.uid;
  }
  const maxBytes = deps.maxBodyBytes ?? 1024 * 1024;
  /** A JSON patch applied; one that does not apply is Invalid about this object (kubectl names it). */
  const patchedJson = (doc: unknown, ops: unknown) => {
    try {
      return jsonPatch(doc, ops, maxBytes);
    } catch (err) {
      if (err instanceof InvalidError && isObject(doc) && isObject(doc.metadata)) throw invalid(SECRETS, String(doc.metadata.name), err.problems);
      throw err;
    }
  };
  const admin = (request: Request) => requireAdmin(tokens, request.headers.get("authorization"));

  /** Checks `next` as the secret namespace/name, and writes it unless dry-run. */
  async function save(next: unknown, namespace: string, name: string, current: SecretRow | undefined, opts: WriteOptions, set: { status?: number | string; headers: Record<string, string | number> }) {
    if (!isObject(next)) throw new BadRequestError("request body must be a Secret object");
    const warnings: string[] = [];
    const unknown = [
      ...Object.keys(next).filter((k) => !KNOWN_FIELDS.has(k)),
      ...(isObject(next.metadata) ? Object.keys(next.metadata).filter((k) => !KNOWN_META.has(k)).map((k) => `metadata.${k}`) : []),
    ];
    if (unknown.length && opts.fieldValidation === "Strict") throw invalid(SECRETS, name, unknown.map((field) => ({ field, message: "unknown field" })));
    if (opts.fieldValidation === "Warn") warnings.push(...unknown.map((f) => `unknown field "${f}"`));
    checkBody(SecretBody, next);
    const body = next as Body;
    if (body.metadata?.namespace !== undefined && body.metadata.namespace !== namespace)
      throw new BadRequestError(`metadata.namespace "${body.metadata.namespace.slice(0, 63)}" does not match the namespace in the URL ("${namespace}")`);
    if (body.metadata?.name !== undefined && body.metadata.name !== name)
      throw new BadRequestError(`metadata.name "${body.metadata.name.slice(0, 63)}" does not match the name in the URL ("${name}")`);
    if (managed(name)) throw new BadRequestError(`secrets named pai-webhook-* are managed by the controller; delete it to rotate the token`);
    const rv = body.metadata?.resourceVersion;
    if (current && rv && rv !== String(current.resourceVersion)) throw stale(SECRETS, name);
    const ownerUid = ownerUidOf((next.metadata as Record<string, unknown> | undefined)?.ownerReferences, namespace, name);
    const input = { namespace, name, type: body.type, data: decodeData(body), labels: body.metadata?.labels, annotations: body.metadata?.annotations, ownerUid };
    if (warnings.length) set.headers.warning = warningHeader(warnings);
    if (opts.dryRun) {
      set.status = current ? 200 : 201;
      const now = new Date().toISOString();
      return secretObject({
        namespace,
        name,
        uid: current?.uid ?? crypto.randomUUID(),
        type: input.type ?? "Opaque",
        resourceVersion: current?.resourceVersion ?? 0,
        labels: input.labels ?? null,
        annotations: input.annotations ?? null,
        data: input.data,
        ownerUid,
        createdAt: current?.createdAt ?? now,
      });
    }
    const { secret, created } = await secrets.put(input);
    set.status = created ? 201 : 200;
    return render(secret);
  }

  function list(request: Request, namespace: string | undefined) {
    const opts = listOptions(request, secretView, namespace);
    const q = Object.fromEntries(new URL(request.url).searchParams);
    if (isWatch(q)) {
      if (!deps.watch) throw new BadRequestError("watch is not available on this server");
      return watchResponse(deps.watch, request, q, {
        kind: "Secret",
        objectKind: "Secret",
        apiVersion: "v1",
        namespace,
        ...watchView(secretView, opts, (row) => render(row as SecretRow) as unknown as KubeObject),
        list: () => secrets.list(namespace).map((s) => ({ object: s, rev: s.resourceVersion })),
        current: (ns, name) => secrets.find(ns, name),
      });
    }
    const all = secrets.list(namespace).map((s) => render(s) as unknown as KubeObject);
    const p = page(secretView, opts, all);
    const resourceVersion = String(deps.watch?.current() ?? all.reduce((max, o) => Math.max(max, Number(o.metadata.resourceVersion) || 0), 0));
    return listBody(secretView, opts, p.items, { resourceVersion, continue: p.continue, remainingItemCount: p.remainingItemCount });
  }

  return new Elysia({ name: "secrets" })
    // The token is checked before the body is read: parsing runs before onBeforeHandle.
    .onParse(kubeBody(admin, { protobuf: true }))
    // Local to this plugin's routes: every one of them needs the admin token (GET has no parse step).
    .onBeforeHandle(({ request }) => {
      admin(request);
    })
    .get(`${BASE}/secrets`, ({ request }) => list(request, undefined), { detail: { tags, summary: "List secrets in all namespaces (labelSelector, fieldSelector, limit, continue, watch)" } })
    .get(`${BASE}/namespaces/:namespace/secrets`, ({ params, request }) => list(request, checkLabel("namespace", params.namespace)), {
      params: NamespaceParams,
      detail: { tags, summary: "List secrets in a namespace (labelSelector, fieldSelector, limit, continue, watch)" },
    })
    .get(
      `${BASE}/namespaces/:namespace/secrets/:name`,
      ({ params, request }) => {
        const found = secrets.find(checkLabel("namespace", params.namespace), params.name);
        if (!found) throw notFound(SECRETS, params.name);
        return objectBody(secretView, request, render(found) as unknown as KubeObject);
      },
      { params: NamedParams, detail: { tags, summary: "Read a secret (values base64-encoded)" } },
    )
    .post(
      `${BASE}/namespaces/:namespace/secrets`,
      ({ params, body, request, set }) => {
        const namespace = checkLabel("namespace", params.namespace);
        const opts = writeOptions(request);
        const meta = isObject(body) && isObject(body.metadata) ? body.metadata : undefined;
        if (meta?.name === undefined) throw new BadRequestError("metadata.name is required: the name of the secret to create");
        if (typeof meta.name !== "string") throw new BadRequestError("metadata.name must be a string");
        const name = checkLabel("secret", meta.name);
        if (managed(name)) throw new BadRequestError(`secrets named pai-webhook-* are managed by the controller; delete it to rotate the token`);
        // find and put run in one turn of the event loop: no other request can create it in between.
        if (secrets.find(namespace, name))
          throw alreadyExists(SECRETS, name, `: replace it with PUT (pai create secret ${name} --overwrite, kubectl apply), or delete it first`);
        return save(body, namespace, name, undefined, opts, set);
      },
      { params: NamespaceParams, detail: { tags, summary: "Create a secret; 409 if one of that name exists", requestBody: { content: { "application/json": { schema: SecretBody as object } } } } },
    )
    .put(
      `${BASE}/namespaces/:namespace/secrets/:name`,
      ({ params, body, request, set }) => {
        const namespace = checkLabel("namespace", params.namespace);
        const name = checkLabel("secret", params.name);
        return save(body, namespace, name, secrets.find(namespace, name), writeOptions(request), set);
      },
      {
        params: NamedParams,
        detail: { tags, summary: "Create or replace a secret (e.g. for linearSignatureSecret.secretRef)", requestBody: { content: { "application/json": { schema: SecretBody as object } } } },
      },
    )
    .patch(
      `${BASE}/namespaces/:namespace/secrets/:name`,
      ({ params, body, request, set }) => {
        const namespace = checkLabel("namespace", params.namespace);
        const name = checkLabel("secret", params.name);
        const type = patchTypeOf(request.headers.get("content-type"));
        const opts = writeOptions(request);
        const current = secrets.find(namespace, name);
        if (type === "apply") {
          if (!opts.fieldManager) throw new BadRequestError("PATCH requests with apply content type require a fieldManager");
          if (!isObject(body)) throw new BadRequestError("a server-side apply body must be an object (a Secret manifest)");
          if (!current) return save(body, namespace, name, undefined, opts, set);
          // The configuration's fields win: given data replaces the values, labels and annotations merge.
          const base = render(current);
          const meta = isObject(body.metadata) ? body.metadata : {};
          const next = {
            ...base,
            ...body,
            metadata: {
              ...base.metadata,
              ...meta,
              labels: { ...base.metadata.labels, ...(isObject(meta.labels) ? meta.labels : {}) },
              annotations: { ...base.metadata.annotations, ...(isObject(meta.annotations) ? meta.annotations : {}) },
            },
            data: body.data ?? (body.stringData ? {} : base.data),
          };
          return save(next, namespace, name, current, opts, set);
        }
        if (!current) throw notFound(SECRETS, name);
        if (type !== "json" && !isObject(body)) throw new BadRequestError(`a ${type} patch must be a JSON object`);
        const base = render(current);
        const next = type === "json" ? patchedJson(base, body) : type === "merge" ? mergePatch(base, body) : strategicMergePatch(base, body);
        return save(next, namespace, name, current, opts, set);
      },
      { params: NamedParams, detail: { tags, summary: "Patch a secret (merge, JSON patch, strategic merge, server-side apply)" } },
    )
    .delete(
      `${BASE}/namespaces/:namespace/secrets/:name`,
      async ({ params, body, request }) => {
        const namespace = checkLabel("namespace", params.namespace);
        const opts = deleteOptions(request, body);
        const found = secrets.find(namespace, params.name);
        if (!found) throw notFound(SECRETS, params.name);
        if (opts.uid && opts.uid !== found.uid) throw stale(SECRETS, found.name, `Precondition failed: UID in precondition: ${opts.uid}, UID in object meta: ${found.uid}`);
        if (opts.resourceVersion && opts.resourceVersion !== String(found.resourceVersion))
          throw stale(SECRETS, found.name, `Precondition failed: ResourceVersion in precondition: ${opts.resourceVersion}, ResourceVersion in object meta: ${found.resourceVersion}`);
        if (opts.dryRun) return render(found);
        return render(await secrets.remove(namespace, params.name));
      },
      { params: NamedParams, detail: { tags, summary: "Delete a secret; deleting pai-webhook-<agent> rotates that agent's webhook token" } },
    );
}
