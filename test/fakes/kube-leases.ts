/**
 * The Lease part of a Kubernetes API server, for tests: pai's own API (the "apiserver" of our
 * tests) has no coordination.k8s.io group, so this sits in front of it, keeps
 * /apis/coordination.k8s.io/v1/namespaces/{ns}/leases[/{name}] in memory with kube-apiserver's
 * protocol (resourceVersion preconditions, 409 Conflict / AlreadyExists, 404 NotFound, `Status`
 * bodies), and forwards every other request to the upstream unchanged, streaming the answer (a
 * watch must flow through, not wait for the end). Given pai's serving certificate it speaks HTTPS,
 * so a kubeconfig made by `pai kubeconfig` works against it once its server URL is swapped.
 *
 *   const proxy = await startLeaseProxy({ upstream: k.url, upstreamCa: k.ca, tls: { cert, key } });
 *   proxy.failLeaseWrites = 503;   // lease writes fail until set back to undefined
 */
import { randomUUID } from "node:crypto";

export interface LeaseProxy {
  /** http(s)://127.0.0.1:<port> */
  url: string;
  /** The stored Leases by "namespace/name" (the objects as the API would return them). */
  leases: Map<string, unknown>;
  /** Every request that reached the proxy, leases and forwarded alike; `path` includes the query. */
  requests: { method: string; path: string }[];
  /** When set, lease writes (POST, PUT, DELETE) answer this status with a `Status` body, as an overloaded API server would. */
  failLeaseWrites?: number;
  stop(): Promise<void>;
}

const GROUP = "coordination.k8s.io";
const LEASE_PATH = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/([^/]+)\/leases(?:\/([^/]+))?(\/.*)?$/;
/** Hop-by-hop headers (RFC 9110 §7.6.1), and the ones fetch sets itself. */
const HOP_BY_HOP = ["connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "host", "content-length"];
const REASONS: Record<number, string> = {
  400: "BadRequest",
  404: "NotFound",
  405: "MethodNotAllowed",
  409: "Conflict",
  422: "Invalid",
  500: "InternalError",
  503: "ServiceUnavailable",
};
/** metav1.Time / MicroTime as the API server decodes them. */
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/;

type Obj = Record<string, unknown> & { metadata?: Record<string, unknown>; spec?: Record<string, unknown> };

function status(code: number, message: string, opts: { reason?: string; name?: string } = {}): Response {
  return Response.json(
    {
      apiVersion: "v1",
      kind: "Status",
      metadata: {},
      status: "Failure",
      message,
      reason: opts.reason ?? REASONS[code] ?? "",
      ...(opts.name !== undefined ? { details: { name: opts.name, group: GROUP, kind: "leases" } } : {}),
      code,
    },
    { status: code },
  );
}

/** Why a Lease body would be refused by the API server (its status and message), or undefined. */
function invalid(body: Obj): [number, string] | undefined {
  const spec = body.spec ?? {};
  if (typeof spec !== "object" || Array.isArray(spec)) return [400, "spec: expected an object"];
  for (const f of ["acquireTime", "renewTime"])
    if (spec[f] !== undefined && spec[f] !== null && (typeof spec[f] !== "string" || !RFC3339.test(spec[f] as string)))
      return [400, `spec.${f}: ${JSON.stringify(spec[f])} is not an RFC 3339 time`];
  const d = spec.leaseDurationSeconds;
  if (d !== undefined && d !== null && !(Number.isInteger(d) && (d as number) > 0)) return [422, `spec.leaseDurationSeconds: Invalid value: ${JSON.stringify(d)}: must be greater than 0`];
  const t = spec.leaseTransitions;
  if (t !== undefined && t !== null && !(Number.isInteger(t) && (t as number) >= 0)) return [422, `spec.leaseTransitions: Invalid value: ${JSON.stringify(t)}: must be greater than or equal to 0`];
  if (spec.holderIdentity !== undefined && spec.holderIdentity !== null && typeof spec.holderIdentity !== "string") return [400, "spec.holderIdentity: expected a string"];
  return undefined;
}

export async function startLeaseProxy(opts: { upstream: string; upstreamCa?: string; tls?: { cert: string; key: string } }): Promise<LeaseProxy> {
  const upstream = opts.upstream.replace(/\/+$/, "");
  const leases = new Map<string, unknown>();
  const requests: LeaseProxy["requests"] = [];
  let revision = 0;
  const stopping = new AbortController();
  const notFound = (name: string) => status(404, `leases.${GROUP} "${name}" not found`, { name });

  async function readBody(req: Request): Promise<Obj | Response> {
    try {
      const body = (await req.json()) as unknown;
      if (!body || typeof body !== "object" || Array.isArray(body)) return status(400, "the body is not a JSON object");
      const obj = body as Obj;
      if (obj.metadata !== undefined && (typeof obj.metadata !== "object" || obj.metadata === null)) return status(400, "metadata: expected an object");
      const bad = invalid(obj);
      return bad ? status(bad[0], bad[1], { reason: bad[0] === 422 ? "Invalid" : "BadRequest" }) : obj;
    } catch {
      return status(400, "the body is not valid JSON");
    }
  }

  function store(key: string, obj: Obj): Obj {
    leases.set(key, structuredClone(obj));
    return obj;
  }

  async function serveLease(req: Request, url: URL, m: RegExpExecArray): Promise<Response> {
    const namespace = decodeURIComponent(m[1]!);
    const name = m[2] === undefined ? undefined : decodeURIComponent(m[2]);
    if (m[3] !== undefined) return status(404, "the server could not find the requested resource");
    const writing = req.method !== "GET";
    if (writing && proxy.failLeaseWrites !== undefined) return status(proxy.failLeaseWrites, `injected failure (${proxy.failLeaseWrites})`);

    if (name === undefined) {
      if (req.method === "GET") {
        if (url.searchParams.get("watch") === "1" || url.searchParams.get("watch") === "true") return status(400, "watching leases is not supported by this fake");
        const items = [...leases.entries()].filter(([k]) => k.startsWith(`${namespace}/`)).map(([, v]) => v);
        return Response.json({ apiVersion: `${GROUP}/v1`, kind: "LeaseList", metadata: { resourceVersion: String(revision) }, items });
      }
      if (req.method !== "POST") return status(405, "the server does not allow this method on the requested resource");
      const body = await readBody(req);
      if (body instanceof Response) return body;
      const meta = body.metadata ?? {};
      const objName = typeof meta.name === "string" ? meta.name : "";
      if (!objName) return status(422, `Lease.${GROUP} is invalid: metadata.name: Required value: name or generateName is required`);
      if (meta.namespace !== undefined && meta.namespace !== namespace)
        return status(400, "the namespace of the provided object does not match the namespace sent on the request");
      const key = `${namespace}/${objName}`;
      if (leases.has(key)) return status(409, `leases.${GROUP} "${objName}" already exists`, { reason: "AlreadyExists", name: objName });
      const created = store(key, {
        ...body,
        apiVersion: `${GROUP}/v1`,
        kind: "Lease",
        metadata: { ...meta, name: objName, namespace, uid: randomUUID(), resourceVersion: String(++revision), creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z") },
      });
      return Response.json(created, { status: 201 });
    }

    const key = `${namespace}/${name}`;
    const stored = leases.get(key) as Obj | undefined;
    switch (req.method) {
      case "GET":
        return stored ? Response.json(stored) : notFound(name);
      case "PUT": {
        const body = await readBody(req);
        if (body instanceof Response) return body;
        const meta = body.metadata ?? {};
        if (meta.name !== name) return status(400, `the name of the object (${String(meta.name ?? "")}) does not match the name on the URL (${name})`);
        if (meta.namespace !== undefined && meta.namespace !== namespace)
          return status(400, "the namespace of the provided object does not match the namespace sent on the request");
        if (!stored) return notFound(name);
        const rv = meta.resourceVersion;
        // As for Leases in kube-apiserver: without a resourceVersion the update is unconditional.
        if (rv !== undefined && rv !== "" && rv !== stored.metadata?.resourceVersion)
          return status(409, `Operation cannot be fulfilled on leases.${GROUP} "${name}": the object has been modified; please apply your changes to the latest version and try again`, {
            reason: "Conflict",
            name,
          });
        const updated = store(key, {
          ...body,
          apiVersion: `${GROUP}/v1`,
          kind: "Lease",
          metadata: { ...meta, namespace, uid: stored.metadata?.uid, creationTimestamp: stored.metadata?.creationTimestamp, resourceVersion: String(++revision) },
        });
        return Response.json(updated);
      }
      case "DELETE": {
        if (!stored) return notFound(name);
        leases.delete(key);
        revision++;
        return Response.json({ apiVersion: "v1", kind: "Status", metadata: {}, status: "Success", details: { name, group: GROUP, kind: "leases", uid: stored.metadata?.uid } });
      }
      default:
        return status(405, "the server does not allow this method on the requested resource");
    }
  }

  async function forward(req: Request, url: URL): Promise<Response> {
    const headers = new Headers(req.headers);
    for (const h of HOP_BY_HOP) headers.delete(h);
    // fetch would decode a compressed answer but keep its content-encoding header: ask for none.
    headers.delete("accept-encoding");
    try {
      const res = await fetch(upstream + url.pathname + url.search, {
        method: req.method,
        headers,
        body: req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer(),
        redirect: "manual",
        // A client that goes away, or stop(), ends the upstream request (a watch would run on).
        signal: AbortSignal.any([req.signal, stopping.signal]),
        ...(opts.upstreamCa ? { tls: { ca: opts.upstreamCa } } : {}),
      } as RequestInit);
      const back = new Headers(res.headers);
      for (const h of [...HOP_BY_HOP, "content-encoding"]) back.delete(h);
      return new Response(res.body, { status: res.status, statusText: res.statusText, headers: back });
    } catch (err) {
      return status(502, `lease proxy: upstream ${upstream}: ${(err as Error).message}`, { reason: "ServiceUnavailable" });
    }
  }

  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    // Watches stay open and quiet for long stretches.
    idleTimeout: 0,
    ...(opts.tls ? { tls: { cert: opts.tls.cert, key: opts.tls.key } } : {}),
    async fetch(req) {
      const url = new URL(req.url);
      requests.push({ method: req.method, path: url.pathname + url.search });
      const m = LEASE_PATH.exec(url.pathname);
      return m ? serveLease(req, url, m) : forward(req, url);
    },
  });

  const proxy: LeaseProxy = {
    url: `${opts.tls ? "https" : "http"}://127.0.0.1:${server.port}`,
    leases,
    requests,
    async stop() {
      stopping.abort();
      await server.stop(true);
    },
  };
  return proxy;
}
