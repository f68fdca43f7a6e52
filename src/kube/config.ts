/**
 * Where the Kubernetes API is and how to prove who we are, as client-go finds it: inside a pod, the
 * service account (KUBERNETES_SERVICE_HOST/PORT and the files under
 * /var/run/secrets/kubernetes.io/serviceaccount); outside, a kubeconfig (--kubeconfig, then
 * KUBECONFIG, then ~/.kube/config) and its current context. Only what a server needs is read:
 * the server URL, its CA, a bearer token (or token file) or a client certificate, and the
 * context's namespace. Anything else a kubeconfig can say (exec plugins, auth providers) is refused
 * with a message, not ignored: a controller that silently runs unauthenticated is worse than one
 * that does not start.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
import { parse } from "yaml";

/** Why no connection could be made from the configuration; the message says what to fix. */
export class KubeConfigError extends Error {
  override name = "KubeConfigError";
}

export interface KubeConnection {
  /** https://host:port (no trailing slash). */
  server: string;
  /** PEM of the CA(s) to trust; undefined: the system's. */
  ca?: string;
  /** The bearer token, read again on each call (service-account tokens are rotated on disk). */
  token?: () => string;
  /** A client certificate and key (PEM). */
  cert?: string;
  key?: string;
  insecureSkipTLSVerify?: boolean;
  /** The namespace of the context, or of the pod; "default" when none is said. */
  namespace: string;
  /** Where this came from, for logs: "in-cluster" or the kubeconfig path and context. */
  source: string;
}

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new KubeConfigError(`${what} ${file}: ${(err as { code?: string }).code === "ENOENT" ? "no such file" : (err as Error).message}`);
  }
}

/** A token file, re-read at most once a minute (bound service-account tokens rotate hourly). */
function tokenFile(file: string): () => string {
  let value = readText(file, "token file").trim();
  let readAt = Date.now();
  return () => {
    if (Date.now() - readAt > 60_000) {
      try {
        value = readFileSync(file, "utf8").trim();
      } catch {
        // Keep the last token; the next call tries again.
      }
      readAt = Date.now();
    }
    return value;
  };
}

/** The pod's own service account, or undefined when not inside a pod. */
export function inClusterConnection(env: Record<string, string | undefined>, dir = SERVICE_ACCOUNT_DIR): KubeConnection | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) return undefined;
  if (!existsSync(join(dir, "token")))
    throw new KubeConfigError(`KUBERNETES_SERVICE_HOST is set but ${dir}/token is missing: mount the service account token (automountServiceAccountToken: true), or pass --kubeconfig`);
  const namespaceFile = join(dir, "namespace");
  return {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    ca: existsSync(join(dir, "ca.crt")) ? readText(join(dir, "ca.crt"), "service account CA") : undefined,
    token: tokenFile(join(dir, "token")),
    namespace: existsSync(namespaceFile) ? readText(namespaceFile, "namespace file").trim() || "default" : "default",
    source: "in-cluster",
  };
}

type Named<T> = { name?: unknown; cluster?: T; user?: T; context?: T };
const obj = (v: unknown): Record<string, unknown> => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

/** The connection of a kubeconfig file's current context (or `context`). */
export function kubeconfigConnection(file: string, context?: string): KubeConnection {
  let doc: unknown;
  try {
    doc = parse(readText(file, "kubeconfig"));
  } catch (err) {
    if (err instanceof KubeConfigError) throw err;
    throw new KubeConfigError(`kubeconfig ${file} is not valid YAML: ${(err as Error).message}`);
  }
  const root = obj(doc);
  const base = dirname(file);
  const path = (p: string) => (isAbsolute(p) ? p : join(base, p));
  const find = (list: unknown, name: string, kind: string): Record<string, unknown> => {
    const entry = (Array.isArray(list) ? (list as Named<unknown>[]) : []).find((e) => obj(e).name === name);
    if (!entry) throw new KubeConfigError(`kubeconfig ${file}: no ${kind} named "${name}"`);
    return obj(obj(entry)[kind]);
  };
  const ctxName = context ?? str(root["current-context"]);
  if (!ctxName) throw new KubeConfigError(`kubeconfig ${file} has no current-context: set one (kubectl config use-context NAME)`);
  const ctx = find(root.contexts, ctxName, "context");
  const cluster = find(root.clusters, str(ctx.cluster) ?? "", "cluster");
  const user = ctx.user === undefined ? {} : find(root.users, str(ctx.user) ?? "", "user");
  const server = str(cluster.server);
  if (!server) throw new KubeConfigError(`kubeconfig ${file}: cluster "${String(ctx.cluster)}" has no server`);
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new KubeConfigError(`kubeconfig ${file}: server "${server}" is not a URL`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new KubeConfigError(`kubeconfig ${file}: server "${server}" must be https:// (or http://)`);
  for (const unsupported of ["exec", "auth-provider"])
    if (user[unsupported] !== undefined)
      throw new KubeConfigError(`kubeconfig ${file}: user "${String(ctx.user)}" authenticates with ${unsupported}, which pai does not run: give it a token or a client certificate`);
  const pemOf = (dataKey: string, fileKey: string, what: string) => {
    const data = str(user[dataKey] ?? cluster[dataKey]);
    if (data) return Buffer.from(data, "base64").toString("utf8");
    const f = str(user[fileKey] ?? cluster[fileKey]);
    return f ? readText(path(f), what) : undefined;
  };
  const token = str(user.token);
  const tokenPath = str(user.tokenFile);
  return {
    server: server.replace(/\/+$/, ""),
    ca: pemOf("certificate-authority-data", "certificate-authority", "certificate-authority"),
    token: token ? () => token : tokenPath ? tokenFile(path(tokenPath)) : undefined,
    cert: pemOf("client-certificate-data", "client-certificate", "client-certificate"),
    key: pemOf("client-key-data", "client-key", "client-key"),
    insecureSkipTLSVerify: cluster["insecure-skip-tls-verify"] === true,
    namespace: str(ctx.namespace) ?? "default",
    source: `kubeconfig ${file} (context ${ctxName})`,
  };
}

/**
 * client-go's order: an explicit kubeconfig, then KUBECONFIG (its first file), then the pod's
 * service account, then ~/.kube/config.
 */
export function loadKubeConnection(opts: { kubeconfig?: string; env?: Record<string, string | undefined>; serviceAccountDir?: string } = {}): KubeConnection {
  const env = opts.env ?? process.env;
  if (opts.kubeconfig) return kubeconfigConnection(opts.kubeconfig);
  const fromEnv = env.KUBECONFIG?.split(":").find((f) => f !== "");
  if (fromEnv) return kubeconfigConnection(fromEnv);
  const pod = inClusterConnection(env, opts.serviceAccountDir);
  if (pod) return pod;
  const home = join(env.HOME ?? homedir(), ".kube", "config");
  if (existsSync(home)) return kubeconfigConnection(home);
  throw new KubeConfigError("no Kubernetes API to talk to: not inside a pod (KUBERNETES_SERVICE_HOST is not set) and no kubeconfig (pass --kubeconfig, or set KUBECONFIG)");
}
