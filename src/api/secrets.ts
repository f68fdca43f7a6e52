/**
 * Secrets over HTTP, Kubernetes-shaped: /api/v1/namespaces/{namespace}/secrets[/{name}]. Admin token.
 * POST creates (409 if the name is taken), PUT creates or replaces, as in Kubernetes.
 */
import { Elysia, t } from "elysia";
import { BadRequestError, ConflictError } from "../domain/errors";
import type { SecretRow } from "../store/secrets";
import type { SecretService } from "../service/secrets";
import type { TokenService } from "../service/tokens";
import { authorizedBody, requireAdmin } from "./auth";
import { checkLabel, NamedParams, NamespaceParams } from "./params";

const BASE = "/api/v1";
const tags = ["Secrets"];

export function secretObject(s: SecretRow) {
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
      ...(s.ownerUid && s.labels?.["pai.io/agent"]
        ? { ownerReferences: [{ apiVersion: "pai.io/v1", kind: "Agent", name: s.labels["pai.io/agent"], uid: s.ownerUid, controller: true }] }
        : {}),
    },
    type: s.type,
    data: Object.fromEntries(Object.entries(s.data).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
  };
}

const SecretBody = t.Object({
  apiVersion: t.Optional(t.Literal("v1")),
  kind: t.Optional(t.Literal("Secret")),
  metadata: t.Optional(t.Object({ name: t.Optional(t.String()), namespace: t.Optional(t.String()), labels: t.Optional(t.Record(t.String(), t.String())) })),
  type: t.Optional(t.String()),
  data: t.Optional(t.Record(t.String(), t.String(), { description: "Values, base64-encoded." })),
  stringData: t.Optional(t.Record(t.String(), t.String(), { description: "Values in plain text; merged over data." })),
});

type Body = typeof SecretBody.static;

const KEY = /^[-._a-zA-Z0-9]+$/;

function decodeData(body: Body): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(body.data ?? {})) {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) throw new BadRequestError(`data.${k}: value is not valid base64 (use stringData for plain text)`);
    out[k] = Buffer.from(v, "base64").toString("utf8");
  }
  Object.assign(out, body.stringData ?? {});
  for (const k of Object.keys(out)) if (!KEY.test(k)) throw new BadRequestError(`key "${k}" is not valid: use letters, digits, '-', '_' and '.'`);
  return out;
}

/** The secret a body describes, checked against the URL; `name` is the URL's, or the body's on POST. */
function inputFrom(body: Body, namespace: string, name: string) {
  if (body.metadata?.namespace !== undefined && body.metadata.namespace !== namespace)
    throw new BadRequestError(`metadata.namespace "${body.metadata.namespace}" does not match the namespace in the URL ("${namespace}")`);
  if (name.startsWith("pai-webhook-"))
    throw new BadRequestError(`secrets named pai-webhook-* are managed by the controller; delete it to rotate the token`);
  return { namespace, name, type: body.type, data: decodeData(body), labels: body.metadata?.labels };
}

export function secretRoutes(deps: { secrets: SecretService; tokens: TokenService }) {
  const { secrets, tokens } = deps;
  const list = (rows: SecretRow[]) => ({ apiVersion: "v1", kind: "SecretList", items: rows.map(secretObject) });
  return new Elysia({ name: "secrets" })
    // The token is checked before the body is read: parsing and validation run before onBeforeHandle.
    // Every route here with a body takes a Secret.
    .onParse(authorizedBody((request) => requireAdmin(tokens, request.headers.get("authorization")), SecretBody))
    // Local to this plugin's routes: every one of them needs the admin token (GET has no parse step).
    .onBeforeHandle(({ request }) => {
      requireAdmin(tokens, request.headers.get("authorization"));
    })
    .get(`${BASE}/secrets`, () => list(secrets.list()), { detail: { tags, summary: "List secrets in all namespaces" } })
    .get(`${BASE}/namespaces/:namespace/secrets`, ({ params }) => list(secrets.list(checkLabel("namespace", params.namespace))), {
      params: NamespaceParams,
      detail: { tags, summary: "List secrets in a namespace" },
    })
    .get(`${BASE}/namespaces/:namespace/secrets/:name`, ({ params }) => secretObject(secrets.get(params.namespace, params.name)), {
      params: NamedParams,
      detail: { tags, summary: "Read a secret (values base64-encoded)" },
    })
    .post(
      `${BASE}/namespaces/:namespace/secrets`,
      ({ params, body, set }) => {
        const namespace = checkLabel("namespace", params.namespace);
        if (body.metadata?.name === undefined) throw new BadRequestError("metadata.name is required: the name of the secret to create");
        const input = inputFrom(body, namespace, checkLabel("secret", body.metadata.name));
        // find and put run in one turn of the event loop: no other request can create it in between.
        if (secrets.find(namespace, input.name))
          throw new ConflictError(
            `secret "${input.name}" already exists in namespace "${namespace}": replace it with PUT (pai create secret ${input.name} --overwrite), or delete it first`,
          );
        set.status = 201;
        return secretObject(secrets.put(input).secret);
      },
      { params: NamespaceParams, body: SecretBody, detail: { tags, summary: "Create a secret; 409 if one of that name exists" } },
    )
    .put(
      `${BASE}/namespaces/:namespace/secrets/:name`,
      ({ params, body, set }) => {
        const namespace = checkLabel("namespace", params.namespace);
        const name = checkLabel("secret", params.name);
        if (body.metadata?.name !== undefined && body.metadata.name !== name)
          throw new BadRequestError(`metadata.name "${body.metadata.name}" does not match the name in the URL ("${name}")`);
        const { secret, created } = secrets.put(inputFrom(body, namespace, name));
        set.status = created ? 201 : 200;
        return secretObject(secret);
      },
      { params: NamedParams, body: SecretBody, detail: { tags, summary: "Create or replace a secret (e.g. for linearSignatureSecret.secretRef)" } },
    )
    .delete(`${BASE}/namespaces/:namespace/secrets/:name`, ({ params }) => secretObject(secrets.remove(params.namespace, params.name)), {
      params: NamedParams,
      detail: { tags, summary: "Delete a secret; deleting pai-webhook-<agent> rotates that agent's webhook token" },
    });
}
