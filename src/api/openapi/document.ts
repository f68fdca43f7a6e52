/**
 * The OpenAPI 3.0 document of /openapi/json, built from the Elysia route table: each route's own
 * TypeBox schemas (params, query, body) are what it validates with, so the document cannot say
 * otherwise. operations.ts adds what a route does not declare (ids, answers, errors, typed query
 * parameters) and schemas.ts the shapes of the answers. Paths served outside Elysia's router (the
 * webhook entrance, the file download) come in as ready-made path items and are converted too.
 */
import { AgentManifest } from "../../domain/agent";
import { WebhookBody } from "../../domain/webhook";
import { toOpenApiSchema, type Refs, type Schema } from "./convert";
import { ERROR_DESCRIPTIONS, OPERATIONS, type OperationInfo } from "./operations";
import { COMPONENTS } from "./schemas";

/** What the generator reads of a route (Elysia's `app.routes`). */
export interface RouteInfo {
  method: string;
  path: string;
  hooks?: {
    body?: unknown;
    query?: unknown;
    params?: unknown;
    response?: unknown;
    detail?: { hide?: boolean; tags?: string[]; summary?: string; description?: string; security?: unknown[]; requestBody?: { content?: Record<string, { schema?: unknown }>; description?: string } };
  };
}

export interface DocumentInput {
  routes: readonly RouteInfo[];
  /** Path items from outside the router (OpenAPI path → method → operation). */
  extraPaths: Record<string, Record<string, Schema>>;
  info: { title: string; version: string; description?: string };
}

type Operation = Schema & { operationId: string; responses: Record<string, unknown> };

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const statusResponse = (code: number) => ({ description: ERROR_DESCRIPTIONS[code] ?? "Error", content: { "application/json": { schema: ref("Status") } } });

/** `/agents/:session/events` → `/agents/{session}/events` */
export const openApiPath = (path: string) => path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");

/** A stand-in id for an operation missing from operations.ts: `get` + the path's words. */
export function derivedOperationId(method: string, path: string): string {
  const words = path.split(/[^A-Za-z0-9]+/).filter(Boolean);
  return method.toLowerCase() + words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join("");
}

const NAME_PARAMS: Record<string, string> = {
  namespace: "The namespace: a DNS-1123 label",
  name: "The object's name: a DNS-1123 label",
  session: "The session's name",
  id: "The token's id (metadata.uid)",
};

const TAG_DESCRIPTIONS: Record<string, string> = {
  Agents: "Agent resources (pai.io/v1), as kubectl and pai apply manage them. The admin token.",
  Secrets: "Secrets (v1), Kubernetes-shaped: values base64. Deleting pai-webhook-<agent> rotates that agent's webhook URL. The admin token.",
  Sessions: "Runs of agents: start one, read it, its events (poll or Server-Sent Events), its files. The admin token or a PaiAccessToken of the namespace.",
  "Access tokens": "PaiAccessTokens: bearer tokens limited to one namespace's sessions. The admin token.",
  Webhooks: "The secret webhook URLs: the URL's token is the credential.",
  Health: "Liveness, readiness and metrics.",
};

export function buildDocument(input: DocumentInput) {
  // Components: the response shapes, plus request bodies named by operations.ts (registered from the routes as they come).
  const schemas = new Map<string, unknown>(Object.entries(COMPONENTS));
  schemas.set("AgentManifest", AgentManifest);
  const refs = new Map<object, string>();
  for (const [name, s] of schemas) refs.set(s as object, name);
  const convert = (s: unknown) => toOpenApiSchema(s, refs, { ref: true });

  const paths: Record<string, Record<string, Operation>> = {};
  const add = (path: string, method: string, op: Operation) => ((paths[path] ??= {})[method] = op);

  for (const route of input.routes) {
    const method = route.method.toLowerCase();
    const detail = route.hooks?.detail ?? {};
    if (!METHODS.includes(method) || detail.hide || route.path.includes("*")) continue;
    const path = openApiPath(route.path);
    const info = OPERATIONS[`${method.toUpperCase()} ${path}`];
    const op: Operation = {
      operationId: info?.operationId ?? derivedOperationId(method, path),
      ...(detail.tags ? { tags: detail.tags } : {}),
      ...(detail.summary ? { summary: detail.summary } : {}),
      ...(detail.description ? { description: detail.description } : {}),
      ...(detail.security ? { security: detail.security } : {}),
      parameters: [...pathParameters(path, route.hooks?.params, convert), ...queryParameters(route.hooks?.query, info, convert)],
      responses: {},
    };
    if (!(op.parameters as unknown[]).length) delete op.parameters;
    const body = requestBody(route, info, schemas, refs, convert);
    if (body) op.requestBody = body;
    op.responses = info ? responses(info, routeResponse(route.hooks?.response), schemas, refs, convert) : fallbackResponses(route.hooks?.response, convert);
    add(path, method, op);
  }

  // Routes outside the router come documented; their schemas still become OpenAPI 3.0, ids come from operations.ts.
  for (const [path, item] of Object.entries(input.extraPaths)) {
    for (const [method, raw] of Object.entries(item)) {
      const info = OPERATIONS[`${method.toUpperCase()} ${path}`];
      const op = convertOperation(raw, convert) as Operation;
      op.operationId = info?.operationId ?? (raw.operationId as string | undefined) ?? derivedOperationId(method, path);
      if (info?.body?.example !== undefined && isObject(op.requestBody)) addExamples(op.requestBody, info.body.example);
      add(path, method, op);
    }
  }
  webhookForm(paths);

  const components: Record<string, Schema> = {};
  for (const [name, s] of [...schemas].sort(([a], [b]) => a.localeCompare(b))) components[name] = toOpenApiSchema(s, refs);
  const tags = [...new Set(Object.values(paths).flatMap((item) => Object.values(item).flatMap((op) => (op.tags as string[] | undefined) ?? [])))];
  return {
    openapi: "3.0.3",
    info: input.info,
    tags: tags.map((name) => ({ name, ...(TAG_DESCRIPTIONS[name] ? { description: TAG_DESCRIPTIONS[name] } : {}) })),
    paths,
    components: { schemas: components, securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "The admin token (<data-dir>/admin-token) or a PaiAccessToken" } } },
    security: [{ bearer: [] }],
  };
}

const isObject = (v: unknown): v is Schema => typeof v === "object" && v !== null && !Array.isArray(v);

function pathParameters(path: string, params: unknown, convert: (s: unknown) => Schema) {
  const declared = (isObject(params) && isObject(params.properties) ? params.properties : {}) as Record<string, unknown>;
  return [...path.matchAll(/\{([^}]+)\}/g)].map(([, name]) => {
    const schema = declared[name!] ? convert(declared[name!]) : { type: "string" };
    const description = (schema.description as string | undefined) ?? NAME_PARAMS[name!];
    delete schema.description;
    return { name, in: "path", required: true, ...(description ? { description } : {}), schema };
  });
}

/** The route's query schema, each parameter typed as operations.ts says where it says so. */
function queryParameters(query: unknown, info: OperationInfo | undefined, convert: (s: unknown) => Schema) {
  const props = (isObject(query) && isObject(query.properties) ? query.properties : {}) as Record<string, unknown>;
  const required = new Set(isObject(query) && Array.isArray(query.required) ? (query.required as string[]) : []);
  const names = [...new Set([...Object.keys(props), ...Object.keys(info?.query ?? {})])];
  return names.map((name) => {
    const declared = props[name] ? convert(props[name]) : {};
    const schema = info?.query?.[name] ? convert(info.query[name]) : declared;
    const description = (schema.description as string | undefined) ?? (declared.description as string | undefined);
    delete schema.description;
    return { name, in: "query", required: required.has(name), ...(description ? { description } : {}), schema };
  });
}

/** The route's body schema: its `body` hook, else the schema its detail documents. */
function routeBodySchema(route: RouteInfo): unknown {
  if (route.hooks?.body) return route.hooks.body;
  const content = route.hooks?.detail?.requestBody?.content;
  return content ? Object.values(content)[0]?.schema : undefined;
}

function requestBody(route: RouteInfo, info: OperationInfo | undefined, schemas: Map<string, unknown>, refs: Map<object, string>, convert: (s: unknown) => Schema) {
  const own = routeBodySchema(route);
  const description = route.hooks?.detail?.requestBody?.description;
  if (!info?.body) {
    if (!own) return undefined;
    const schema = convert(own);
    return { required: true, content: { "application/json": { schema } } };
  }
  const content: Record<string, Schema> = {};
  for (const [type, name] of Object.entries(info.body.content)) {
    // A name schemas.ts does not define is this route's own body schema, shared under that name.
    if (!schemas.has(name) && own) {
      schemas.set(name, own);
      refs.set(own as object, name);
    }
    content[type] = { schema: schemas.has(name) ? ref(name) : convert(own) };
  }
  const body: Schema = { required: info.body.required, ...(description ? { description } : {}), content };
  if (info.body.example !== undefined) addExamples(body, info.body.example);
  return body;
}

function addExamples(body: Schema, example: unknown) {
  for (const [type, media] of Object.entries(body.content as Record<string, Schema>)) if (!type.includes("yaml")) media.example ??= example;
}

/** The schema a route declares for its 200 answer (`response: {200: …}` or `response: …`). */
function routeResponse(response: unknown): unknown {
  if (isObject(response) && isObject(response[200])) return response[200];
  return isObject(response) && "type" in response ? response : undefined;
}

function responses(info: OperationInfo, own: unknown, schemas: Map<string, unknown>, refs: Map<object, string>, convert: (s: unknown) => Schema) {
  const out: Record<string, unknown> = {};
  // A name schemas.ts does not define is this route's own response schema, shared under that name.
  for (const name of Object.values(info.ok).flatMap((a) => (typeof a === "string" ? [a] : Object.values(a.content ?? {}))))
    if (name && !schemas.has(name) && own) {
      schemas.set(name, own);
      refs.set(own as object, name);
    }
  for (const [code, answer] of Object.entries(info.ok)) {
    if (typeof answer === "string") out[code] = { description: code === "201" ? "Created" : "OK", content: { "application/json": { schema: ref(answer) } } };
    else
      out[code] = {
        description: answer.description,
        ...(answer.content
          ? { content: Object.fromEntries(Object.entries(answer.content).map(([type, name]) => [type, { schema: name ? ref(name) : convert({ type: "string" }) }])) }
          : {}),
      };
  }
  for (const code of info.errors) out[code] = statusResponse(code);
  return out;
}

/** An operation operations.ts does not know: its declared response, or "OK", and a Status for errors. */
function fallbackResponses(response: unknown, convert: (s: unknown) => Schema) {
  const declared = routeResponse(response);
  return {
    200: { description: "OK", ...(declared ? { content: { "application/json": { schema: convert(declared) } } } : {}) },
    default: { description: "An error", content: { "application/json": { schema: ref("Status") } } },
  };
}

/** A ready-made operation, its schemas made OpenAPI 3.0 (and components by reference where they are ours). */
function convertOperation(op: Schema, convert: (s: unknown) => Schema): Schema {
  const out: Schema = { ...op };
  if (Array.isArray(op.parameters)) out.parameters = op.parameters.map((p: Schema) => (p.schema ? { ...p, schema: convert(p.schema) } : p));
  const media = (content: unknown) =>
    isObject(content) ? Object.fromEntries(Object.entries(content).map(([type, m]) => [type, isObject(m) && m.schema ? { ...m, schema: convert(m.schema) } : m])) : content;
  if (isObject(op.requestBody)) out.requestBody = { ...op.requestBody, content: media(op.requestBody.content) };
  if (isObject(op.responses))
    out.responses = Object.fromEntries(Object.entries(op.responses).map(([code, r]) => [code, isObject(r) && r.content ? { ...r, content: media(r.content) } : r]));
  return out;
}

/**
 * The webhook POST as a form (application/x-www-form-urlencoded): the same fields, `env` as JSON
 * text (src/service/webhook-body.ts), or GitHub's single `payload` field holding the event.
 */
function webhookForm(paths: Record<string, Record<string, Operation>>) {
  const post = paths["/webhooks/{namespace}/{name}/{token}"]?.post;
  const content = (post?.requestBody as Schema | undefined)?.content as Record<string, Schema> | undefined;
  if (!content) return;
  const example = { title: "what sound does a cow make?", wait: 30 };
  const answer = (post!.responses as Record<string, Schema>)[200];
  if (answer?.content) answer.content = { "application/json": { schema: ref("WebhookAccepted") } };
  const ping = (paths["/webhooks/{namespace}/{name}/{token}"]!.get?.responses as Record<string, Schema> | undefined)?.[200];
  if (ping?.content) ping.content = { "application/json": { schema: ref("WebhookPing") } };
  if (content["application/json"]) {
    content["application/json"].schema = ref("WebhookBody");
    content["application/json"].example = example;
  }
  const form = toOpenApiSchema(WebhookBody) as Schema & { properties: Record<string, Schema> };
  form.properties.payload = { type: "string", description: "GitHub's form deliveries: the whole event as JSON (when it is the only field)" };
  content["application/x-www-form-urlencoded"] = { schema: form, encoding: { env: { contentType: "application/json" } }, example };
  (post!.requestBody as Schema).description =
    "Pai's own fields (title, wait, env, callbackUrl); any other field makes the body an event, which the agent gets as webhook.json. As JSON, or as a form.";
}
