/**
 * The Agent resource over HTTP, the Kubernetes way: /apis/pai.io/v1/namespaces/{namespace}/agents[/{name}]
 * and /apis/pai.io/v1/agents (all namespaces). Writes need the admin token. Reads (list, get, the
 * status subresource, watch) take a namespace token too, for its own namespace only (403 elsewhere,
 * and for the all-namespaces list, as a namespaced Role in Kubernetes gives): such a reader sees
 * the webhook URL without its token, which only the admin token may read (and rotate), and no
 * other value of the spec that may be a credential (see agentFor).
 *
 * Lists take labelSelector, fieldSelector, limit/continue and `watch`; get and list answer a Table
 * when asked (kubectl get). Writes: POST creates (409 if the name is taken), PUT creates or
 * updates, PATCH takes merge, strategic merge (as merge), JSON patch and server-side apply; each
 * result is validated like a PUT, checked against a stale metadata.resourceVersion (409), and
 * honours dryRun and fieldValidation. A write that changes nothing leaves the object as it is.
 * The status subresource (…/agents/{name}/status: GET, PUT, PATCH) writes the status only.
 */
import { Elysia } from "elysia";
import { Value } from "@sinclair/typebox/value";
import { ValueErrorType } from "@sinclair/typebox/errors";
import { AgentManifest, AgentStatus, API_VERSION, Condition, pointerToField, validateAgent, type Agent, type AgentInput } from "../domain/agent";
import { Type as T } from "@sinclair/typebox";
import { BadRequestError, ForbiddenError, InvalidError } from "../domain/errors";
import { deepEqual } from "../lib/json";
import type { AgentService } from "../service/agents";
import type { Principal, TokenService } from "../service/tokens";
import type { WatchService } from "../service/watch";
import type { StoredAgent } from "../store/agents";
import { requireAdmin, requireNamespace, requirePrincipal } from "./auth";
import { listBody, listOptions, objectBody, page, watchView, type View } from "./kube/list";
import { jsonPatch, mergePatch, strategicMergePatch } from "./kube/patch";
import { deleteOptions, dropUnknown, kubeBody, patchTypeOf, warningHeader, writeOptions, type WriteOptions } from "./kube/request";
import { AGENTS, alreadyExists, invalid, notFound, stale } from "./kube/resources";
import { age, ageColumn, nameColumn, type KubeObject } from "./kube/table";
import { checkLabel, NamedParams, NamespaceParams } from "./params";
import { isWatch, watchResponse } from "./watch";

const BASE = "/apis/pai.io/v1";
const tags = ["Agents"];
const agentBody = {
  required: true,
  description: "An Agent manifest, as JSON or YAML (Content-Type: application/yaml).",
  content: { "application/json": { schema: AgentManifest as object }, "application/yaml": { schema: AgentManifest as object } },
};
const patchBody = {
  required: true,
  description:
    "A merge patch (application/merge-patch+json), JSON patch (application/json-patch+json), strategic merge patch (application/strategic-merge-patch+json, read as a merge patch) or a server-side apply configuration (application/apply-patch+yaml, with fieldManager).",
  content: {
    "application/merge-patch+json": { schema: { type: "object" } as object },
    "application/json-patch+json": { schema: { type: "array", items: { type: "object" } } as object },
    "application/strategic-merge-patch+json": { schema: { type: "object" } as object },
    "application/apply-patch+yaml": { schema: AgentManifest as object },
  },
};

const ready = (a: Agent) => a.status.conditions?.find((c) => c.type === "Ready")?.status ?? "Unknown";

export const agentView: View = {
  resource: AGENTS,
  columns: [
    nameColumn,
    { name: "Models", type: "string", description: "Models tried in order.", priority: 0 },
    { name: "Webhook URL", type: "string", description: "The agent's secret webhook URL.", priority: 0 },
    { name: "Ready", type: "string", description: "The Ready condition.", priority: 0 },
    ageColumn,
    { name: "Generation", type: "integer", description: "The spec's generation.", priority: 1 },
  ],
  cells: (o) => {
    const a = o as unknown as Agent;
    return [a.metadata.name, a.spec.models.join(","), a.status.webhookUrl ?? "<none>", ready(a), age(a.metadata.creationTimestamp), a.metadata.generation];
  },
};

/** What a namespace token reads in place of the webhook URL's token, and of other values that may be credentials. */
export const HIDDEN_WEBHOOK_TOKEN = "<hidden: ask an admin>";
const HIDDEN = HIDDEN_WEBHOOK_TOKEN;
const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

/** `{name, value}` pairs with their values hidden; `{name, valueFrom}` ones (references) as they are. */
const hideValues = <V extends { name: string }>(vars: V[]): V[] => vars.map((v) => ("value" in v ? { ...v, value: HIDDEN } : v));
type Spec = Agent["spec"];
type McpServer = NonNullable<Spec["mcpServers"]>[number];
type Trigger = NonNullable<Spec["triggers"]>[number];

/**
 * The agent as `p` may read it. The admin token reads it whole. A namespace token reads the webhook
 * URL without its token (the URL is the credential), and no value written into the spec that may
 * be one: env and MCP env and header values, signing secrets given as strings (references to
 * Secrets stay: the Secrets are the admin's), and kubectl's copy of the applied manifest.
 */
export function agentFor(p: Principal, a: Agent): Agent {
  if (p.admin) return a;
  const spec = a.spec;
  const trigger = (t: Trigger): Trigger => {
    if (!t.webhook) return t;
    const w = { ...t.webhook };
    if (typeof w.linearSignatureSecret === "string") w.linearSignatureSecret = HIDDEN;
    if (typeof w.githubSignatureSecret === "string") w.githubSignatureSecret = HIDDEN;
    return { ...t, webhook: w };
  };
  const server = (m: McpServer): McpServer =>
    "command" in m ? (m.env ? { ...m, env: hideValues(m.env) } : m) : m.headers ? { ...m, headers: hideValues(m.headers) } : m;
  const shown: Spec = {
    ...spec,
    ...(spec.env ? { env: hideValues(spec.env) } : {}),
    ...(spec.triggers ? { triggers: spec.triggers.map(trigger) } : {}),
    ...(spec.mcpServers ? { mcpServers: spec.mcpServers.map(server) } : {}),
  };
  const annotations = a.metadata.annotations;
  const url = a.status.webhookUrl;
  return {
    ...a,
    metadata: annotations?.[LAST_APPLIED] !== undefined ? { ...a.metadata, annotations: { ...annotations, [LAST_APPLIED]: HIDDEN } } : a.metadata,
    spec: shown,
    status: url === undefined ? a.status : { ...a.status, webhookUrl: url.replace(/[^/]*$/, HIDDEN) },
  };
}

/** Where `value` has fields the Agent schema does not know, as JSON pointers (`/spec/x`). */
function unknownFields(value: unknown): string[] {
  if (!isObject(value)) return [];
  return [...Value.Errors(AgentManifest, value)].filter((e) => e.type === ValueErrorType.ObjectAdditionalProperties).map((e) => e.path);
}

/** A value from a body, for a message: JSON, cut short (never String(), which a crafted object can make throw). */
const shown = (v: unknown) => (JSON.stringify(v) ?? "null").slice(0, 80);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Checks a body's name and namespace against the URL: they may be omitted but not contradict it. */
function checkAgainstUrl(body: unknown, namespace: string, name?: string) {
  const meta = isObject(body) ? body.metadata : undefined;
  if (!isObject(meta)) return;
  if (meta.namespace !== undefined && meta.namespace !== namespace)
    throw new BadRequestError(`metadata.namespace ${shown(meta.namespace)} does not match the namespace in the URL ("${namespace}")`);
  if (name !== undefined && meta.name !== undefined && meta.name !== name)
    throw new BadRequestError(`metadata.name ${shown(meta.name)} does not match the name in the URL ("${name}")`);
  if (name !== undefined && meta.name === undefined) meta.name = name;
}

/** The object a dry run answers with: what the write would store. */
function preview(current: Agent | undefined, input: AgentInput): Agent {
  const specChanged = !current || !deepEqual(current.spec, input.spec);
  return {
    apiVersion: API_VERSION,
    kind: "Agent",
    metadata: {
      name: input.name,
      namespace: input.namespace,
      uid: current?.metadata.uid ?? crypto.randomUUID(),
      generation: current ? current.metadata.generation + (specChanged ? 1 : 0) : 1,
      resourceVersion: current?.metadata.resourceVersion ?? "",
      creationTimestamp: current?.metadata.creationTimestamp ?? new Date().toISOString(),
      ...(input.labels ? { labels: input.labels } : {}),
      ...(input.annotations ? { annotations: input.annotations } : {}),
    },
    spec: input.spec,
    status: current?.status ?? {},
  };
}

/** Server-side apply, simply: the configuration's fields win; labels and annotations merge; a given spec replaces the spec. */
function applyConfiguration(current: Agent | undefined, config: unknown): unknown {
  if (!isObject(config)) throw new BadRequestError("a server-side apply body must be an object (an Agent manifest)");
  if (!current) return config;
  const meta = isObject(config.metadata) ? config.metadata : {};
  const mergeMap = (a: unknown, b: unknown) => (isObject(b) ? { ...(isObject(a) ? a : {}), ...b } : a);
  return {
    ...config,
    metadata: {
      ...current.metadata,
      ...meta,
      ...(mergeMap(current.metadata.labels, meta.labels) ? { labels: mergeMap(current.metadata.labels, meta.labels) } : {}),
      ...(mergeMap(current.metadata.annotations, meta.annotations) ? { annotations: mergeMap(current.metadata.annotations, meta.annotations) } : {}),
    },
    spec: config.spec ?? current.spec,
  };
}

/**
 * What the status subresource accepts: the Agent status, closed (an unknown field is answered as
 * fieldValidation says), with a bounded list of conditions.
 */
const StatusWrite = T.Object(
  { ...AgentStatus.properties, conditions: T.Optional(T.Array(T.Object(Condition.properties, { additionalProperties: false }), { maxItems: 32 })) },
  { additionalProperties: false },
);
/** A status larger than this is refused: the controller's own is a few hundred bytes. */
const MAX_STATUS_BYTES = 64 * 1024;

export function agentRoutes(deps: { agents: AgentService; tokens: TokenService; watch?: WatchService; maxBodyBytes?: number }) {
  const { agents, tokens } = deps;
  const maxBytes = deps.maxBodyBytes ?? 1024 * 1024;
  /** A JSON patch applied; one that does not apply is Invalid about this object (kubectl names it). */
  const patchedJson = (doc: unknown, ops: unknown) => {
    try {
      return jsonPatch(doc, ops, maxBytes);
    } catch (err) {
      if (err instanceof InvalidError && isObject(doc) && isObject(doc.metadata)) throw invalid(AGENTS, String(doc.metadata.name), err.problems);
      throw err;
    }
  };
  const find = (namespace: string, name: string): StoredAgent | undefined => agents.find(namespace, name);

  /** Validates `next` as the agent at namespace/name (URL), applies fieldValidation, and writes it unless dry-run. */
  async function save(next: unknown, namespace: string, name: string | undefined, current: StoredAgent | undefined, opts: WriteOptions, set: { status?: number | string; headers: Record<string, string | number> }) {
    checkAgainstUrl(next, namespace, name);
    const label = name ?? (isObject(next) && isObject(next.metadata) && typeof next.metadata.name === "string" ? next.metadata.name : "");
    const rv = isObject(next) && isObject(next.metadata) ? next.metadata.resourceVersion : undefined;
    // A stale resourceVersion is a lost update waiting to happen: refuse it, as kube-apiserver does.
    if (current && typeof rv === "string" && rv !== "" && rv !== current.agent.metadata.resourceVersion) throw stale(AGENTS, current.agent.metadata.name);
    const warnings = opts.fieldValidation === "Strict" ? [] : dropUnknown(next, unknownFields(next), opts.fieldValidation);
    let input: AgentInput;
    try {
      input = validateAgent(next, namespace);
    } catch (err) {
      if (err instanceof InvalidError) throw invalid(AGENTS, label, err.problems);
      throw err;
    }
    if (warnings.length) set.headers.warning = warningHeader(warnings);
    if (opts.dryRun) {
      set.status = current ? 200 : 201;
      return preview(current?.agent, input);
    }
    const result = await agents.apply(input, "api");
    set.status = result.created ? 201 : 200;
    return result.agent;
  }

  function list(request: Request, namespace: string | undefined, reader: Principal) {
    const shown = (a: Agent) => agentFor(reader, a) as unknown as KubeObject;
    const opts = listOptions(request, agentView, namespace);
    const q = Object.fromEntries(new URL(request.url).searchParams);
    if (isWatch(q)) {
      if (!deps.watch) throw new BadRequestError("watch is not available on this server");
      return watchResponse(deps.watch, request, q, {
        kind: "Agent",
        objectKind: "Agent",
        apiVersion: API_VERSION,
        namespace,
        ...watchView(agentView, opts, (stored) => shown(stored as Agent)),
        list: () => agents.list(namespace).map((a) => ({ object: a.agent, rev: Number(a.agent.metadata.resourceVersion) })),
        current: (ns, name) => find(ns, name)?.agent,
      });
    }
    const all = agents.list(namespace).map((a) => shown(a.agent));
    const p = page(agentView, opts, all);
    const resourceVersion = String(deps.watch?.current() ?? all.reduce((max, o) => Math.max(max, Number(o.metadata.resourceVersion) || 0), 0));
    return listBody(agentView, opts, p.items, { resourceVersion, continue: p.continue, remainingItemCount: p.remainingItemCount });
  }

  const admin = (request: Request) => requireAdmin(tokens, request.headers.get("authorization"));
  /** A reader of `namespace` (checked as a name after the token, so a bad token is 401 first): the admin token or one of that namespace. */
  const reader = (request: Request, namespace: string): { p: Principal; namespace: string } => {
    const header = request.headers.get("authorization");
    requirePrincipal(tokens, header);
    const ns = checkLabel("namespace", namespace);
    return { p: requireNamespace(tokens, header, ns), namespace: ns };
  };
  /** A reader of every namespace: the admin token only. */
  const allReader = (request: Request): Principal => {
    const p = requirePrincipal(tokens, request.headers.get("authorization"));
    if (!p.admin) throw new ForbiddenError(`a namespace token reads the agents of its own namespace only: GET ${BASE}/namespaces/${p.namespace}/agents`);
    return p;
  };

  /**
   * The status subresource's write: only `status` of `next` is taken; spec and metadata in the body
   * are ignored, as Kubernetes does for …/status. The resourceVersion moves (a revision, which
   * watches see), the generation does not. The controller owns this status: its next reconcile of
   * the agent (a spec change, a restart, its webhook secret changing) writes its own webhookUrl,
   * observedGeneration and conditions again; what stays is what the controller does not write.
   */
  async function saveStatus(next: unknown, current: StoredAgent, opts: WriteOptions, set: { headers: Record<string, string | number> }) {
    const name = current.agent.metadata.name;
    if (!isObject(next)) throw new BadRequestError("request body must be an Agent object (only its status is used)");
    const meta = isObject(next.metadata) ? next.metadata : {};
    if (meta.name !== undefined && meta.name !== name) throw new BadRequestError(`metadata.name ${shown(meta.name)} does not match the name in the URL ("${name}")`);
    if (meta.namespace !== undefined && meta.namespace !== current.agent.metadata.namespace)
      throw new BadRequestError(`metadata.namespace ${shown(meta.namespace)} does not match the namespace in the URL ("${current.agent.metadata.namespace}")`);
    if (typeof meta.resourceVersion === "string" && meta.resourceVersion !== "" && meta.resourceVersion !== current.agent.metadata.resourceVersion) throw stale(AGENTS, name);
    // A copy: unknown fields are dropped from it, and `next` may share objects with the cached agent.
    const status = next.status === undefined || next.status === null ? {} : structuredClone(next.status);
    if (!isObject(status)) throw invalid(AGENTS, name, [{ field: "status", message: `must be an object (got ${shown(status)})` }]);
    const errors = [...Value.Errors(StatusWrite, status)];
    const unknown = errors.filter((e) => e.type === ValueErrorType.ObjectAdditionalProperties).map((e) => e.path);
    const fieldOf = (pointer: string) => `status${pointerToField(pointer) ? `.${pointerToField(pointer)}` : ""}`.replace(/\.\[/g, "[");
    // Paths here are relative to status: the warnings name the whole field.
    const warnings = dropUnknown(status, unknown, opts.fieldValidation).length ? unknown.map((p) => `unknown field "${fieldOf(p)}"`) : [];
    const problems = (opts.fieldValidation === "Strict" ? errors : [...Value.Errors(StatusWrite, status)]).map((e) => ({
      field: fieldOf(e.path),
      message: e.type === ValueErrorType.ObjectAdditionalProperties ? "unknown field" : e.message,
    }));
    // One problem per field: TypeBox reports a missing string as both "required" and "not a string".
    const perField = problems.filter((p, i) => problems.findIndex((q) => q.field === p.field) === i);
    if (perField.length) throw invalid(AGENTS, name, perField.slice(0, 20));
    if (JSON.stringify(status).length > MAX_STATUS_BYTES) throw invalid(AGENTS, name, [{ field: "status", message: `must be at most ${MAX_STATUS_BYTES} bytes as JSON` }]);
    if (warnings.length) set.headers.warning = warningHeader(warnings);
    if (opts.dryRun) return { ...current.agent, status };
    await agents.setStatus(current.agent.metadata.namespace, name, status as Agent["status"]);
    return find(current.agent.metadata.namespace, name)?.agent ?? current.agent;
  }

  /** One agent, as the object and as its status subresource (the whole Agent either way), for the reader the token allows. */
  const readOne = ({ params, request }: { params: { namespace: string; name: string }; request: Request }) => {
    const r = reader(request, params.namespace);
    const found = find(r.namespace, params.name);
    if (!found) throw notFound(AGENTS, params.name);
    return objectBody(agentView, request, agentFor(r.p, found.agent) as unknown as KubeObject);
  };

  return new Elysia({ name: "agents" })
    // Local to these routes: a global parser would also read webhook bodies, which must stay raw.
    // It checks the token before it reads the body (bodies are parsed before onBeforeHandle runs).
    .onParse(kubeBody(admin))
    // Local to this plugin's routes: writes need the admin token (GET has no parse step; the GET
    // routes check their reader themselves).
    .onBeforeHandle(({ request }) => {
      if (request.method !== "GET" && request.method !== "HEAD") admin(request);
    })
    .get(`${BASE}/agents`, ({ request }) => list(request, undefined, allReader(request)), {
      detail: { tags, summary: "List agents in all namespaces (labelSelector, fieldSelector, limit, continue, watch)" },
    })
    .get(
      `${BASE}/namespaces/:namespace/agents`,
      ({ params, request }) => {
        const r = reader(request, params.namespace);
        return list(request, r.namespace, r.p);
      },
      {
        params: NamespaceParams,
        detail: { tags, summary: "List agents in a namespace (labelSelector, fieldSelector, limit, continue, watch)" },
      },
    )
    .post(
      `${BASE}/namespaces/:namespace/agents`,
      ({ params, body, request, set }) => {
        const namespace = checkLabel("namespace", params.namespace);
        const opts = writeOptions(request);
        const meta = isObject(body) && isObject(body.metadata) ? body.metadata : undefined;
        const current = typeof meta?.name === "string" ? find(namespace, meta.name) : undefined;
        if (current) throw alreadyExists(AGENTS, current.agent.metadata.name);
        return save(body, namespace, undefined, undefined, opts, set);
      },
      { params: NamespaceParams, detail: { tags, summary: "Create an agent; 409 AlreadyExists if the name is taken", requestBody: agentBody } },
    )
    .get(
      `${BASE}/namespaces/:namespace/agents/:name`,
      readOne,
      { params: NamedParams, detail: { tags, summary: "Read an agent, with its status (webhookUrl, conditions)" } },
    )
    .put(
      `${BASE}/namespaces/:namespace/agents/:name`,
      ({ params, body, request, set }) => {
        const namespace = checkLabel("namespace", params.namespace);
        const name = checkLabel("agent", params.name);
        return save(body, namespace, name, find(namespace, name), writeOptions(request), set);
      },
      { params: NamedParams, detail: { tags, summary: "Apply an agent: create it, or update it in place", requestBody: agentBody } },
    )
    .patch(
      `${BASE}/namespaces/:namespace/agents/:name`,
      ({ params, body, request, set }) => {
        const namespace = checkLabel("namespace", params.namespace);
        const name = checkLabel("agent", params.name);
        const type = patchTypeOf(request.headers.get("content-type"));
        const opts = writeOptions(request);
        const current = find(namespace, name);
        if (type === "apply") {
          if (!opts.fieldManager) throw new BadRequestError("PATCH requests with apply content type require a fieldManager");
          return save(applyConfiguration(current?.agent, body), namespace, name, current, opts, set);
        }
        if (!current) throw notFound(AGENTS, name);
        if (type !== "json" && !isObject(body)) throw new BadRequestError(`a ${type} patch must be a JSON object`);
        const next =
          type === "json" ? patchedJson(current.agent, body) : type === "merge" ? mergePatch(current.agent, body) : strategicMergePatch(current.agent, body);
        return save(next, namespace, name, current, opts, set);
      },
      { params: NamedParams, detail: { tags, summary: "Patch an agent (merge, JSON patch, strategic merge, server-side apply)", requestBody: patchBody } },
    )
    // The status subresource (the CRD declares it): reads the agent, writes only its status.
    .get(
      `${BASE}/namespaces/:namespace/agents/:name/status`,
      readOne,
      { params: NamedParams, detail: { tags, summary: "Read an agent through its status subresource" } },
    )
    .put(
      `${BASE}/namespaces/:namespace/agents/:name/status`,
      ({ params, body, request, set }) => {
        const opts = writeOptions(request);
        const current = find(checkLabel("namespace", params.namespace), params.name);
        if (!current) throw notFound(AGENTS, params.name);
        return saveStatus(body, current, opts, set);
      },
      {
        params: NamedParams,
        detail: { tags, summary: "Replace an agent's status (spec and metadata in the body are ignored); the controller rewrites its own conditions on its next reconcile", requestBody: agentBody },
      },
    )
    .patch(
      `${BASE}/namespaces/:namespace/agents/:name/status`,
      ({ params, body, request, set }) => {
        const type = patchTypeOf(request.headers.get("content-type"));
        const opts = writeOptions(request);
        const current = find(checkLabel("namespace", params.namespace), params.name);
        if (!current) throw notFound(AGENTS, params.name);
        if (type === "apply") {
          if (!opts.fieldManager) throw new BadRequestError("PATCH requests with apply content type require a fieldManager");
          if (!isObject(body)) throw new BadRequestError("a server-side apply body must be an object (an Agent with a status)");
          // The configuration's status fields win over the current ones.
          const given = body.status;
          return saveStatus({ ...body, status: isObject(given) ? { ...current.agent.status, ...given } : (given ?? current.agent.status) }, current, opts, set);
        }
        if (type !== "json" && !isObject(body)) throw new BadRequestError(`a ${type} patch must be a JSON object`);
        const next =
          type === "json" ? patchedJson(current.agent, body) : type === "merge" ? mergePatch(current.agent, body) : strategicMergePatch(current.agent, body);
        return saveStatus(next, current, opts, set);
      },
      { params: NamedParams, detail: { tags, summary: "Patch an agent's status (merge, JSON patch, strategic merge, server-side apply); only status changes", requestBody: patchBody } },
    )
    .delete(
      `${BASE}/namespaces/:namespace/agents/:name`,
      async ({ params, body, request }) => {
        const namespace = checkLabel("namespace", params.namespace);
        const opts = deleteOptions(request, body);
        const found = find(namespace, params.name);
        if (!found) throw notFound(AGENTS, params.name);
        const meta = found.agent.metadata;
        if (opts.uid && opts.uid !== meta.uid) throw stale(AGENTS, meta.name, `Precondition failed: UID in precondition: ${opts.uid}, UID in object meta: ${meta.uid}`);
        if (opts.resourceVersion && opts.resourceVersion !== meta.resourceVersion)
          throw stale(AGENTS, meta.name, `Precondition failed: ResourceVersion in precondition: ${opts.resourceVersion}, ResourceVersion in object meta: ${meta.resourceVersion}`);
        if (opts.dryRun) return found.agent;
        return (await agents.remove(namespace, params.name)).agent;
      },
      { params: NamedParams, detail: { tags, summary: "Delete an agent and its webhook secret (DeleteOptions: dryRun, preconditions)" } },
    );
}
