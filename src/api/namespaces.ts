/**
 * Namespaces over HTTP, read-only: GET /api/v1/namespaces and /api/v1/namespaces/{name}, so
 * `kubectl get ns` and the namespace pickers of k9s and Lens work. A namespace is derived (see
 * src/service/namespaces.ts): it cannot be created, changed, deleted or watched.
 *
 * The admin token sees every namespace. A namespace token reads its own namespace only (403 for
 * another's), and its list holds just that one: a cluster would refuse such a user the list, but
 * pai's namespace users should see where they may work.
 */
import { Elysia, t } from "elysia";
import { DNS_LABEL, DNS_LABEL_MAX } from "../domain/names";
import { MethodNotAllowedError } from "../domain/errors";
import type { NamespaceInfo, NamespaceService } from "../service/namespaces";
import type { TokenService } from "../service/tokens";
import { requireNamespace, requirePrincipal } from "./auth";
import { listBody, listOptions, objectBody, page, type View } from "./kube/list";
import { NAMESPACES, notFound } from "./kube/resources";
import { age, ageColumn, nameColumn, type KubeObject } from "./kube/table";
import { isWatch } from "./watch";

const tags = ["Namespaces"];

export function namespaceObject(n: NamespaceInfo, resourceVersion: number) {
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: {
      name: n.name,
      // Derived objects change whenever what is in them does: the store's revision stands for both.
      resourceVersion: String(resourceVersion),
      creationTimestamp: n.createdAt,
      // The label kube-apiserver puts on every namespace (selectors in network policies use it).
      labels: { "kubernetes.io/metadata.name": n.name },
    },
    spec: { finalizers: ["kubernetes"] },
    status: { phase: "Active" },
  };
}

export const namespaceView: View = {
  resource: NAMESPACES,
  columns: [nameColumn, { name: "Status", type: "string", description: "The phase of the namespace.", priority: 0 }, ageColumn],
  cells: (o) => [o.metadata.name, (o.status as { phase: string }).phase, age(o.metadata.creationTimestamp)],
  fields: { "status.phase": (o) => (o.status as { phase: string }).phase },
};

export function namespaceRoutes(deps: { namespaces: NamespaceService; tokens: TokenService }) {
  const { namespaces, tokens } = deps;
  // Writes are refused (405) once the caller is known, without reading a body.
  const refuse = ({ request }: { request: Request }) => {
    requirePrincipal(tokens, request.headers.get("authorization"));
    throw new MethodNotAllowedError(
      "namespaces are read-only in pai: one exists while an agent, secret, session or token lives in it (and default always); create the agent or secret in the namespace you want",
    );
  };

  function list(request: Request) {
    const p = requirePrincipal(tokens, request.headers.get("authorization"));
    const opts = listOptions(request, namespaceView, undefined);
    if (isWatch(Object.fromEntries(new URL(request.url).searchParams)))
      throw new MethodNotAllowedError("namespaces cannot be watched: they follow the objects in them; list them again, or watch agents or secrets");
    const rev = namespaces.revision();
    const found = p.admin ? namespaces.list() : [namespaces.find(p.namespace!) ?? { name: p.namespace!, createdAt: new Date().toISOString() }];
    const p2 = page(namespaceView, opts, found.map((n) => namespaceObject(n, rev) as unknown as KubeObject));
    return listBody(namespaceView, opts, p2.items, { resourceVersion: String(rev), continue: p2.continue, remainingItemCount: p2.remainingItemCount });
  }

  return new Elysia({ name: "namespaces" })
    .get("/api/v1/namespaces", ({ request }) => list(request), {
      detail: { tags, summary: "List namespaces: those with agents, secrets, sessions or tokens, and default (a namespace token: its own)" },
    })
    .get(
      // `:namespace`, as the namespaced routes under this path name it (the router wants one name per place).
      "/api/v1/namespaces/:namespace",
      ({ params, request }) => {
        const name = params.namespace;
        // Another namespace's token learns nothing, not even whether it exists.
        requireNamespace(tokens, request.headers.get("authorization"), name);
        // A name that cannot be a namespace is simply not one (as kube-apiserver answers a GET).
        const found = name.length <= DNS_LABEL_MAX && DNS_LABEL.test(name) ? namespaces.find(name) : undefined;
        if (!found) throw notFound(NAMESPACES, name.slice(0, 253));
        return objectBody(namespaceView, request, namespaceObject(found, namespaces.revision()) as unknown as KubeObject);
      },
      { params: t.Object({ namespace: t.String() }), detail: { tags, summary: "Read a namespace (kubectl get ns NAME)" } },
    )
    .post("/api/v1/namespaces", refuse, { parse: "none", detail: { hide: true } })
    .put("/api/v1/namespaces/:namespace", refuse, { parse: "none", detail: { hide: true } })
    .patch("/api/v1/namespaces/:namespace", refuse, { parse: "none", detail: { hide: true } })
    .delete("/api/v1/namespaces/:namespace", refuse, { parse: "none", detail: { hide: true } });
}
