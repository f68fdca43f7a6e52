/** Secrets over HTTP, Kubernetes-shaped: /api/v1/namespaces/{namespace}/secrets[/{name}]. Admin token. */
import { Elysia, t } from "elysia";
import { BadRequestError } from "../domain/errors";
import type { SecretRow } from "../store/secrets";
import type { SecretService } from "../service/secrets";
import type { TokenService } from "../service/tokens";
import { requireAdmin } from "./auth";
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

const KEY = /^[-._a-zA-Z0-9]+$/;

function decodeData(body: typeof SecretBody.static): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(body.data ?? {})) {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) throw new BadRequestError(`data.${k}: value is not valid base64 (use stringData for plain text)`);
    out[k] = Buffer.from(v, "base64").toString("utf8");
  }
  Object.assign(out, body.stringData ?? {});
  for (const k of Object.keys(out)) if (!KEY.test(k)) throw new BadRequestError(`key "${k}" is not valid: use letters, digits, '-', '_' and '.'`);
  return out;
}

export function secretRoutes(deps: { secrets: SecretService; tokens: TokenService }) {
  const { secrets, tokens } = deps;
  const list = (rows: SecretRow[]) => ({ apiVersion: "v1", kind: "SecretList", items: rows.map(secretObject) });
  return new Elysia({ name: "secrets" })
    // Local to this plugin's routes: every one of them needs the admin token.
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
    .put(
      `${BASE}/namespaces/:namespace/secrets/:name`,
      ({ params, body, set }) => {
        const namespace = checkLabel("namespace", params.namespace);
        const name = checkLabel("secret", params.name);
        if (body.metadata?.name !== undefined && body.metadata.name !== name)
          throw new BadRequestError(`metadata.name "${body.metadata.name}" does not match the name in the URL ("${name}")`);
        if (name.startsWith("pai-webhook-"))
          throw new BadRequestError(`secrets named pai-webhook-* are managed by the controller; delete it to rotate the token`);
        const { secret, created } = secrets.put({ namespace, name, type: body.type, data: decodeData(body), labels: body.metadata?.labels });
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
