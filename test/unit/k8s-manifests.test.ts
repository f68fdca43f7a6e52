/**
 * manifests/kubernetes/: every YAML document parses and is the object we mean (apiVersion, kind,
 * name, namespace), the Deployment matches the container image (user, port, probes on routes the
 * server has), RBAC is exactly the least privilege the controller needs, the pai-apiserver
 * Service carries the product page's allowlist, and the real kubectl accepts the folder.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { OPERATIONS } from "../../src/api/openapi/operations";
import { ROOT } from "../helpers";

const DIR = join(ROOT, "manifests", "kubernetes");
const docs: any[] = readdirSync(DIR)
  .filter((f) => f.endsWith(".yaml"))
  .flatMap((f) =>
    parseAllDocuments(readFileSync(join(DIR, f), "utf8")).map((d) => {
      if (d.errors.length) throw new Error(`${f}: ${d.errors[0]!.message}`);
      return d.toJS();
    }),
  );
const find = (kind: string, name: string) => docs.find((d) => d.kind === kind && d.metadata?.name === name);
const containerfile = readFileSync(join(ROOT, "Containerfile"), "utf8");
// The product page's "Allow Linear's IPs" step.
const PAGE_RANGES = ["35.231.147.226/32", "35.243.134.228/32", "34.140.253.14/32", "34.38.87.206/32", "34.134.222.122/32", "35.222.25.142/32"];

describe("manifests/kubernetes", () => {
  test("every document is one of the expected objects, namespaced ones in pai-system", () => {
    const ids = docs.map((d) => `${d.apiVersion} ${d.kind} ${d.metadata.name}`).sort();
    expect(ids).toEqual(
      [
        "apiextensions.k8s.io/v1 CustomResourceDefinition agents.pai.io",
        "v1 Namespace pai-system",
        "v1 ServiceAccount pai",
        "rbac.authorization.k8s.io/v1 ClusterRole pai",
        "rbac.authorization.k8s.io/v1 ClusterRoleBinding pai",
        "rbac.authorization.k8s.io/v1 Role pai-leader-election",
        "rbac.authorization.k8s.io/v1 RoleBinding pai-leader-election",
        "v1 PersistentVolumeClaim pai-data",
        "apps/v1 Deployment pai",
        "v1 Service pai",
        "v1 Service pai-apiserver",
      ].sort(),
    );
    const clusterScoped = new Set(["CustomResourceDefinition", "Namespace", "ClusterRole", "ClusterRoleBinding"]);
    for (const d of docs) expect(`${d.kind} ${d.metadata.name} ${d.metadata.namespace}`).toBe(`${d.kind} ${d.metadata.name} ${clusterScoped.has(d.kind) ? undefined : "pai-system"}`);
  });

  test("the Deployment: one replica, the image, probes on the server's health routes, the volumes", () => {
    const dep = find("Deployment", "pai");
    expect(dep.spec.replicas).toBe(1);
    expect(dep.spec.strategy.type).toBe("Recreate");
    expect(dep.spec.template.metadata.labels).toMatchObject(dep.spec.selector.matchLabels);
    const pod = dep.spec.template.spec;
    expect(pod.serviceAccountName).toBe(find("ServiceAccount", "pai").metadata.name);
    const [c] = pod.containers;
    expect(c.image).toBe("pai:latest");
    // The controller mode, its Lease in the pod's namespace (where the Role allows it).
    expect(c.args).toEqual(["serve", "--kubernetes"]);
    expect(c.env).toContainEqual({ name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } });
    expect(find("Role", "pai-leader-election").metadata.namespace).toBe(dep.metadata.namespace);
    expect(c.env.find((e: any) => e.name === "PAI_PUBLIC_URL")?.value).toMatch(/^https:\/\//);
    const port = c.ports.find((p: any) => p.name === "http").containerPort;
    expect(containerfile).toContain(`EXPOSE ${port}`);
    expect(c.env).toContainEqual({ name: "PAI_PORT", value: String(port) });
    for (const probe of [c.readinessProbe, c.livenessProbe]) {
      expect(OPERATIONS[`GET ${probe.httpGet.path}`]).toBeDefined();
      expect(probe.httpGet.port).toBe("http");
    }
    expect(c.readinessProbe.httpGet.path).toBe("/readyz");
    expect(c.livenessProbe.httpGet.path).toBe("/healthz");
    expect(c.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(c.resources.limits.memory).toBeDefined();
    // Non-root, the same uid as the image's USER; nothing writable but /data and /tmp.
    const uid = Number(/^USER (\d+)/m.exec(containerfile)![1]);
    expect(uid).toBeGreaterThan(0);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: uid, fsGroup: uid });
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
    const mounts = Object.fromEntries(c.volumeMounts.map((m: any) => [m.mountPath, pod.volumes.find((v: any) => v.name === m.name)]));
    expect(Object.keys(mounts).sort()).toEqual(["/data", "/tmp"]);
    expect(mounts["/data"].persistentVolumeClaim.claimName).toBe(find("PersistentVolumeClaim", "pai-data").metadata.name);
    expect(mounts["/tmp"].emptyDir).toEqual({});
    expect(c.env).toContainEqual({ name: "PAI_DATA_DIR", value: "/data" });
  });

  test("the Services select the Deployment's pods; pai-apiserver has the page's allowlist", () => {
    const labels = find("Deployment", "pai").spec.template.metadata.labels;
    const svc = find("Service", "pai");
    expect(svc.spec.type).toBe("ClusterIP");
    expect(svc.spec.ports).toEqual([{ name: "http", port: 8080, targetPort: "http" }]);
    const lb = find("Service", "pai-apiserver");
    expect(lb.spec.type).toBe("LoadBalancer");
    expect(lb.spec.loadBalancerSourceRanges).toEqual(PAGE_RANGES);
    for (const s of [svc, lb]) expect(labels).toMatchObject(s.spec.selector);
  });

  test("replicas/deployment.yaml: the same pod as the one-replica Deployment, on Postgres from a Secret, rolling, no volume claim", () => {
    const [multi] = parseAllDocuments(readFileSync(join(DIR, "replicas", "deployment.yaml"), "utf8")).map((d) => d.toJS());
    const single = find("Deployment", "pai");
    // Applied after the folder, it replaces the one-replica Deployment.
    expect(multi.metadata).toEqual(single.metadata);
    expect(multi.spec.replicas).toBeGreaterThan(1);
    expect(multi.spec.strategy.type).toBe("RollingUpdate");
    const [c] = multi.spec.template.spec.containers;
    const [one] = single.spec.template.spec.containers;
    expect(c.env).toContainEqual({ name: "PAI_DATABASE_URL", valueFrom: { secretKeyRef: { name: "pai-database", key: "url" } } });
    // Everything else of the container is the same: image, args, probes, ports, limits, security.
    const { env: _e1, ...rest } = c;
    const { env: _e2, ...restOne } = one;
    expect(rest).toEqual(restOne);
    expect(c.env.filter((e: any) => e.name !== "PAI_DATABASE_URL")).toEqual(expect.arrayContaining(one.env));
    expect(multi.spec.template.spec.securityContext).toEqual(single.spec.template.spec.securityContext);
    expect(multi.spec.template.spec.serviceAccountName).toBe(single.spec.template.spec.serviceAccountName);
    // No ReadWriteOnce claim shared by pods on different nodes: /data is each pod's own.
    const data = multi.spec.template.spec.volumes.find((v: any) => v.name === "data");
    expect(data).toEqual({ name: "data", emptyDir: {} });
  });

  test("RBAC: agents and their status, secrets, and a Lease in pai-system only", () => {
    const rules = (d: any) => d.rules.map((r: any) => `${r.apiGroups.join(",")}/${r.resources.join(",")}: ${[...r.verbs].sort().join(",")}`).sort();
    expect(rules(find("ClusterRole", "pai"))).toEqual([
      "/secrets: create,delete,get,list,update,watch",
      "pai.io/agents/status: update",
      "pai.io/agents: get,list,watch",
    ]);
    expect(rules(find("Role", "pai-leader-election"))).toEqual(["coordination.k8s.io/leases: create,get,update"]);
    for (const [binding, role] of [["ClusterRoleBinding", "ClusterRole"], ["RoleBinding", "Role"]] as const) {
      const b = docs.find((d) => d.kind === binding);
      expect(b.roleRef).toMatchObject({ kind: role, apiGroup: "rbac.authorization.k8s.io" });
      expect(find(role, b.roleRef.name)).toBeDefined();
      expect(b.subjects).toEqual([{ kind: "ServiceAccount", name: "pai", namespace: "pai-system" }]);
    }
    // No wildcards anywhere.
    for (const d of docs.filter((x) => x.rules)) expect(JSON.stringify(d.rules)).not.toContain("*");
  });
});

// kubectl apply --dry-run=client still asks the apiserver's discovery which kinds exist (verified:
// without a server it fails with "unable to recognize"). A stub answers discovery for exactly the
// kinds these manifests use; nothing else, and no write, reaches it.
const kubectlBin = Bun.which("kubectl");
if (!kubectlBin) console.warn("SKIPPED test/unit/k8s-manifests.test.ts > kubectl apply --dry-run=client: kubectl is not installed");
const resource = (name: string, kind: string, namespaced: boolean) => ({ name, singularName: "", namespaced, kind, verbs: ["create", "get", "list", "patch", "update", "delete"] });
const DISCOVERY: Record<string, unknown> = {
  "/api": { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [] },
  "/api/v1": {
    kind: "APIResourceList",
    groupVersion: "v1",
    resources: [resource("namespaces", "Namespace", false), resource("serviceaccounts", "ServiceAccount", true), resource("services", "Service", true), resource("persistentvolumeclaims", "PersistentVolumeClaim", true)],
  },
  "/apis": {
    kind: "APIGroupList",
    apiVersion: "v1",
    groups: ["apps", "rbac.authorization.k8s.io", "apiextensions.k8s.io"].map((g) => ({ name: g, versions: [{ groupVersion: `${g}/v1`, version: "v1" }], preferredVersion: { groupVersion: `${g}/v1`, version: "v1" } })),
  },
  "/apis/apps/v1": { kind: "APIResourceList", groupVersion: "apps/v1", resources: [resource("deployments", "Deployment", true)] },
  "/apis/rbac.authorization.k8s.io/v1": {
    kind: "APIResourceList",
    groupVersion: "rbac.authorization.k8s.io/v1",
    resources: [resource("clusterroles", "ClusterRole", false), resource("clusterrolebindings", "ClusterRoleBinding", false), resource("roles", "Role", true), resource("rolebindings", "RoleBinding", true)],
  },
  "/apis/apiextensions.k8s.io/v1": { kind: "APIResourceList", groupVersion: "apiextensions.k8s.io/v1", resources: [resource("customresourcedefinitions", "CustomResourceDefinition", false)] },
};
const writes: string[] = [];
const stub = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  fetch(req) {
    const path = new URL(req.url).pathname;
    if (req.method !== "GET") writes.push(`${req.method} ${path}`);
    const body = DISCOVERY[path];
    return body ? Response.json(body) : Response.json({ kind: "Status", apiVersion: "v1", status: "Failure", reason: "NotFound", code: 404 }, { status: 404 });
  },
});
afterAll(() => stub.stop(true));

describe.skipIf(!kubectlBin)("kubectl", () => {
  test("kubectl apply --dry-run=client accepts the folder", async () => {
    const proc = Bun.spawn([kubectlBin!, "apply", "--dry-run=client", "--validate=false", "-s", `http://127.0.0.1:${stub.port}`, "-f", DIR], { env: { ...process.env, KUBECONFIG: "/dev/null", HOME: "/nonexistent" }, stdout: "pipe", stderr: "pipe" });
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    for (const d of docs) expect(stdout).toContain(`/${d.metadata.name} created (dry run)`);
    expect(stdout.trim().split("\n")).toHaveLength(docs.length);
    expect(writes).toEqual([]);
  });
});
