/** PaiAccessTokens: /apis/pai.io/v1/namespaces/{namespace}/accesstokens. Admin token. */
import { Elysia, t } from "elysia";
import type { TokenRow } from "../store/tokens";
import type { TokenService } from "../service/tokens";
import { authorizedBody, requireAdmin } from "./auth";
import { checkLabel, NamespaceParams } from "./params";

const BASE = "/apis/pai.io/v1";
const tags = ["Access tokens"];

const tokenObject = (r: TokenRow, token?: string) => ({
  apiVersion: "pai.io/v1",
  kind: "PaiAccessToken",
  metadata: { name: r.name, namespace: r.namespace, uid: r.id, creationTimestamp: r.createdAt },
  ...(token ? { token } : {}),
});

const TokenBody = t.Optional(t.Object({ metadata: t.Optional(t.Object({ name: t.Optional(t.String({ maxLength: 253 })) })) }));

export function tokenRoutes(deps: { tokens: TokenService }) {
  const { tokens } = deps;
  return new Elysia({ name: "tokens" })
    // The token is checked before the body is read: parsing and validation run before onBeforeHandle.
    .onParse(authorizedBody((request) => requireAdmin(tokens, request.headers.get("authorization")), TokenBody))
    // Local to this plugin's routes: every one of them needs the admin token (GET has no parse step).
    .onBeforeHandle(({ request }) => {
      requireAdmin(tokens, request.headers.get("authorization"));
    })
    .post(
      `${BASE}/namespaces/:namespace/accesstokens`,
      async ({ params, body, set }) => {
        const namespace = checkLabel("namespace", params.namespace);
        const name = body?.metadata?.name ?? "token";
        const { token, row } = await tokens.create(namespace, name);
        set.status = 201;
        return tokenObject(row, token);
      },
      {
        params: NamespaceParams,
        body: TokenBody,
        detail: { tags, summary: "Create a PaiAccessToken for a namespace; the token is shown once, only its hash is kept" },
      },
    )
    .get(
      `${BASE}/namespaces/:namespace/accesstokens`,
      async ({ params }) => ({ apiVersion: "pai.io/v1", kind: "PaiAccessTokenList", items: (await tokens.list(checkLabel("namespace", params.namespace))).map((r) => tokenObject(r)) }),
      { params: NamespaceParams, detail: { tags, summary: "List access tokens (without their values)" } },
    )
    .delete(
      `${BASE}/namespaces/:namespace/accesstokens/:id`,
      async ({ params }) => {
        await tokens.remove(params.namespace, params.id);
        return { kind: "Status", apiVersion: "v1", status: "Success", code: 200, message: `token ${params.id} revoked` };
      },
      { params: t.Object({ namespace: t.String(), id: t.String() }), detail: { tags, summary: "Revoke an access token" } },
    );
}
