/**
 * Where the controller finds its Kubernetes API (src/kube/config.ts): kubeconfig files as kubectl
 * reads them (inline data and file references, paths relative to the kubeconfig's folder, token
 * files, contexts, namespaces), the errors for what is missing or not supported, the pod's service
 * account, and client-go's order of sources. Every file is in a temp folder.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { inClusterConnection, kubeconfigConnection, KubeConfigError, loadKubeConnection } from "../../src/kube/config";
import { removeDir, tempDir } from "../helpers";

const CA = "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n";
const CERT = "-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n";
const b64 = (s: string) => Buffer.from(s).toString("base64");

let dir: string;
beforeEach(() => {
  dir = tempDir("pai-kubeconfig-");
});
afterEach(() => removeDir(dir));

/** Writes a file under the temp folder (making its folders) and returns its path. */
function file(rel: string, text: string): string {
  const path = join(dir, rel);
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, text);
  return path;
}

interface Parts {
  cluster?: Record<string, unknown>;
  user?: Record<string, unknown> | null;
  context?: Record<string, unknown>;
  currentContext?: string | null;
}

/** A kubeconfig with one cluster "c", user "u" and context "ctx" (current), plus a second context "other". */
function kubeconfig(rel: string, parts: Parts = {}): string {
  const doc = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      { name: "c", cluster: { server: "https://api.example:6443", ...parts.cluster } },
      { name: "c2", cluster: { server: "https://other.example:443/" } },
    ],
    users: parts.user === null ? [] : [{ name: "u", user: { token: "tok", ...parts.user } }],
    contexts: [
      { name: "ctx", context: { cluster: "c", user: "u", ...parts.context } },
      { name: "other", context: { cluster: "c2", namespace: "team-b" } },
    ],
    ...(parts.currentContext === null ? {} : { "current-context": parts.currentContext ?? "ctx" }),
  };
  return file(rel, stringify(doc));
}

/** The KubeConfigError message of `fn`; fails if it does not throw one. */
function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(KubeConfigError);
    return (err as Error).message;
  }
  throw new Error("expected a KubeConfigError, nothing was thrown");
}

describe("kubeconfigConnection", () => {
  test("inline data: CA, client certificate and key decoded from base64, token, namespace, server without trailing slash", () => {
    const path = kubeconfig("config", {
      cluster: { server: "https://api.example:6443/", "certificate-authority-data": b64(CA) },
      user: { "client-certificate-data": b64(CERT), "client-key-data": b64(KEY) },
      context: { namespace: "team-a" },
    });
    const c = kubeconfigConnection(path);
    expect(c.server).toBe("https://api.example:6443");
    expect(c.ca).toBe(CA);
    expect(c.cert).toBe(CERT);
    expect(c.key).toBe(KEY);
    expect(c.token?.()).toBe("tok");
    expect(c.namespace).toBe("team-a");
    expect(c.insecureSkipTLSVerify).toBe(false);
    expect(c.source).toBe(`kubeconfig ${path} (context ctx)`);
  });

  test("file fields: relative paths are read from the kubeconfig's folder, not the working directory; absolute ones as they are", () => {
    file("kube/certs/ca.crt", CA);
    file("kube/certs/client.crt", CERT);
    const keyPath = file("elsewhere/client.key", KEY);
    file("kube/token", "  file-token\n");
    const path = kubeconfig("kube/config", {
      cluster: { "certificate-authority": "certs/ca.crt" },
      user: { token: undefined, tokenFile: "token", "client-certificate": "./certs/client.crt", "client-key": keyPath },
    });
    const c = kubeconfigConnection(path);
    expect(c.ca).toBe(CA);
    expect(c.cert).toBe(CERT);
    expect(c.key).toBe(KEY);
    // Trimmed, as client-go does.
    expect(c.token?.()).toBe("file-token");
  });

  test("data wins over a file field for the same thing, and a token over a tokenFile", () => {
    const path = kubeconfig("config", {
      cluster: { "certificate-authority-data": b64(CA), "certificate-authority": "does-not-exist.crt" },
      user: { token: "inline", tokenFile: "does-not-exist" },
    });
    const c = kubeconfigConnection(path);
    expect(c.ca).toBe(CA);
    expect(c.token?.()).toBe("inline");
  });

  test("a referenced file that is missing is an error naming it", () => {
    const path = kubeconfig("config", { cluster: { "certificate-authority": "missing/ca.crt" } });
    expect(errorOf(() => kubeconfigConnection(path))).toBe(`certificate-authority ${join(dir, "missing/ca.crt")}: no such file`);
    const withToken = kubeconfig("config2", { user: { token: undefined, tokenFile: "nope" } });
    expect(errorOf(() => kubeconfigConnection(withToken))).toBe(`token file ${join(dir, "nope")}: no such file`);
  });

  test("current-context, or the context asked for; a context without namespace is in default; one without user has no credentials", () => {
    const path = kubeconfig("config", { cluster: { "insecure-skip-tls-verify": true } });
    const current = kubeconfigConnection(path);
    expect(current.namespace).toBe("default");
    expect(current.insecureSkipTLSVerify).toBe(true);
    const other = kubeconfigConnection(path, "other");
    expect(other.server).toBe("https://other.example:443");
    expect(other.namespace).toBe("team-b");
    expect(other.token).toBeUndefined();
    expect(other.cert).toBeUndefined();
    expect(other.source).toBe(`kubeconfig ${path} (context other)`);
  });

  test("what is missing is said: current-context, context, cluster, user, server", () => {
    expect(errorOf(() => kubeconfigConnection(kubeconfig("a", { currentContext: null })))).toMatch(/has no current-context: set one \(kubectl config use-context NAME\)$/);
    expect(errorOf(() => kubeconfigConnection(kubeconfig("b", { currentContext: "gone" })))).toBe(`kubeconfig ${join(dir, "b")}: no context named "gone"`);
    expect(errorOf(() => kubeconfigConnection(kubeconfig("c"), "nope"))).toMatch(/: no context named "nope"$/);
    expect(errorOf(() => kubeconfigConnection(kubeconfig("d", { context: { cluster: "nowhere" } })))).toMatch(/: no cluster named "nowhere"$/);
    expect(errorOf(() => kubeconfigConnection(kubeconfig("e", { user: null })))).toMatch(/: no user named "u"$/);
    expect(errorOf(() => kubeconfigConnection(kubeconfig("f", { cluster: { server: undefined } })))).toMatch(/: cluster "c" has no server$/);
    expect(errorOf(() => kubeconfigConnection(kubeconfig("g", { cluster: { server: "not a url" } })))).toMatch(/: server "not a url" is not a URL$/);
    expect(errorOf(() => kubeconfigConnection(kubeconfig("h", { cluster: { server: "ftp://x" } })))).toMatch(/: server "ftp:\/\/x" must be https:\/\//);
  });

  test("exec plugins and auth providers are refused, not ignored", () => {
    const exec = kubeconfig("exec", { user: { token: undefined, exec: { apiVersion: "client.authentication.k8s.io/v1", command: "aws" } } });
    expect(errorOf(() => kubeconfigConnection(exec))).toMatch(/user "u" authenticates with exec, which pai does not run: give it a token or a client certificate$/);
    const provider = kubeconfig("provider", { user: { token: undefined, "auth-provider": { name: "gcp" } } });
    expect(errorOf(() => kubeconfigConnection(provider))).toMatch(/authenticates with auth-provider/);
  });

  test("a missing file, and a file that is not YAML", () => {
    expect(errorOf(() => kubeconfigConnection(join(dir, "absent")))).toBe(`kubeconfig ${join(dir, "absent")}: no such file`);
    const bad = file("bad", "clusters: [unclosed\n");
    expect(errorOf(() => kubeconfigConnection(bad))).toMatch(new RegExp(`^kubeconfig ${bad} is not valid YAML: `));
  });
});

describe("inClusterConnection", () => {
  const env = { KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" };

  test("outside a pod (no KUBERNETES_SERVICE_HOST/PORT): undefined", () => {
    expect(inClusterConnection({}, dir)).toBeUndefined();
    expect(inClusterConnection({ KUBERNETES_SERVICE_HOST: "10.0.0.1" }, dir)).toBeUndefined();
  });

  test("the service account's token, CA and namespace", () => {
    file("sa/token", "sa-token\n");
    file("sa/ca.crt", CA);
    file("sa/namespace", "pai-system\n");
    const c = inClusterConnection(env, join(dir, "sa"))!;
    expect(c.server).toBe("https://10.0.0.1:443");
    expect(c.ca).toBe(CA);
    expect(c.token?.()).toBe("sa-token");
    expect(c.namespace).toBe("pai-system");
    expect(c.source).toBe("in-cluster");
  });

  test("an IPv6 service host is bracketed; without a namespace file or CA: default and the system's CAs", () => {
    file("sa/token", "t");
    const c = inClusterConnection({ KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "6443" }, join(dir, "sa"))!;
    expect(c.server).toBe("https://[fd00::1]:6443");
    expect(new URL(c.server).port).toBe("6443");
    expect(c.namespace).toBe("default");
    expect(c.ca).toBeUndefined();
  });

  test("inside a pod without a mounted token: an error that says how to fix it", () => {
    expect(errorOf(() => inClusterConnection(env, join(dir, "sa")))).toMatch(/token is missing: mount the service account token \(automountServiceAccountToken: true\), or pass --kubeconfig$/);
  });
});

describe("loadKubeConnection: client-go's order", () => {
  /** Four sources, each with its own server: --kubeconfig, KUBECONFIG, the pod, ~/.kube/config. */
  function sources() {
    const explicit = kubeconfig("explicit.yaml", { cluster: { server: "https://explicit:1" } });
    const fromEnv = kubeconfig("env.yaml", { cluster: { server: "https://from-env:2" } });
    file("sa/token", "t");
    const home = join(dir, "home");
    kubeconfig("home/.kube/config", { cluster: { server: "https://home:4" } });
    const env = { KUBECONFIG: fromEnv, KUBERNETES_SERVICE_HOST: "pod", KUBERNETES_SERVICE_PORT: "3", HOME: home };
    return { explicit, fromEnv, env, serviceAccountDir: join(dir, "sa") };
  }

  test("explicit, then KUBECONFIG, then in-cluster, then ~/.kube/config under env.HOME", () => {
    const s = sources();
    const server = (o: Parameters<typeof loadKubeConnection>[0]) => loadKubeConnection(o).server;
    expect(server({ kubeconfig: s.explicit, env: s.env, serviceAccountDir: s.serviceAccountDir })).toBe("https://explicit:1");
    expect(server({ env: s.env, serviceAccountDir: s.serviceAccountDir })).toBe("https://from-env:2");
    expect(server({ env: { ...s.env, KUBECONFIG: undefined }, serviceAccountDir: s.serviceAccountDir })).toBe("https://pod:3");
    expect(server({ env: { HOME: s.env.HOME }, serviceAccountDir: s.serviceAccountDir })).toBe("https://home:4");
  });

  test("KUBECONFIG with several files: the first (empty entries skipped)", () => {
    const s = sources();
    const second = kubeconfig("second.yaml", { cluster: { server: "https://second:5" } });
    expect(loadKubeConnection({ env: { KUBECONFIG: `::${s.fromEnv}:${second}` } }).server).toBe("https://from-env:2");
  });

  test("nothing anywhere: an error that says what was looked for", () => {
    const message = errorOf(() => loadKubeConnection({ env: { HOME: join(dir, "empty-home") }, serviceAccountDir: join(dir, "sa") }));
    expect(message).toBe(
      "no Kubernetes API to talk to: not inside a pod (KUBERNETES_SERVICE_HOST is not set) and no kubeconfig (pass --kubeconfig, or set KUBECONFIG)",
    );
  });
});
