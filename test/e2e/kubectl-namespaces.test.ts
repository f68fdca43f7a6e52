/**
 * The real kubectl and pai's read-only namespaces (test/kube.ts): `kubectl get ns` lists default
 * and every namespace something lives in, `get ns NAME` reads one, a namespace token sees its own,
 * discovery marks namespaces cluster-wide, and the errors kubectl prints.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { HAVE_KUBECTL, startKubeServer, warnSkippedWithoutKubectl, type KubeServer } from "../kube";

warnSkippedWithoutKubectl("test/e2e/kubectl-namespaces.test.ts (kubectl get ns, api-resources, namespace tokens and NotFound with the real kubectl)");

let k: KubeServer;

async function ok(args: string[], opts: { namespaceToken?: string; stdin?: string } = {}): Promise<string> {
  const r = await k.kubectl(args, opts);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** The NAME and STATUS columns of `kubectl get ns` output, header first. */
const rows = (out: string) =>
  out
    .trim()
    .split("\n")
    .map((l) => l.trim().split(/\s+/).slice(0, 2).join(" "));

describe.skipIf(!HAVE_KUBECTL)("kubectl and namespaces", () => {
  beforeAll(async () => {
    k = await startKubeServer();
    await ok(["apply", "-n", "team-a", "-f", "-"], {
      stdin: "apiVersion: pai.io/v1\nkind: Agent\nmetadata:\n  name: helper\nspec:\n  models: [pai/echo]\n",
    });
    await ok(["create", "secret", "generic", "plain", "-n", "vault", "--from-literal=k=v"]);
  });
  afterAll(async () => {
    await k?.stop();
  });

  test("kubectl api-resources lists namespaces as cluster-wide (NAMESPACED false), short name ns", async () => {
    const out = await ok(["api-resources", "--api-group="]);
    const line = out.split("\n").find((l) => /^namespaces\s/.test(l));
    expect(line?.trim().split(/\s+/)).toEqual(["namespaces", "ns", "v1", "false", "Namespace"]);
  });

  test("kubectl get ns shows default and each namespace with objects, Active", async () => {
    const out = await ok(["get", "ns"]);
    expect(out.split("\n")[0]).toMatch(/^NAME\s+STATUS\s+AGE\s*$/);
    expect(rows(out)).toEqual(["NAME STATUS", "default Active", "team-a Active", "vault Active"]);
    expect(await ok(["get", "namespaces", "-o", "name"])).toBe("namespace/default\nnamespace/team-a\nnamespace/vault\n");
  });

  test("kubectl get ns NAME -o jsonpath, and a label selector", async () => {
    expect(await ok(["get", "ns", "team-a", "-o", "jsonpath={.status.phase}"])).toBe("Active");
    expect(await ok(["get", "ns", "vault", "-o", "jsonpath={.metadata.labels.kubernetes\\.io/metadata\\.name}"])).toBe("vault");
    expect(rows(await ok(["get", "ns", "-l", "kubernetes.io/metadata.name=vault"]))).toEqual(["NAME STATUS", "vault Active"]);
  });

  test("an unknown namespace is NotFound, as against a cluster", async () => {
    const r = await k.kubectl(["get", "ns", "nope"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim()).toBe('Error from server (NotFound): namespaces "nope" not found');
  });

  test("a namespace token sees its own namespace only", async () => {
    expect(rows(await ok(["get", "ns"], { namespaceToken: "team-a" }))).toEqual(["NAME STATUS", "team-a Active"]);
    expect(await ok(["get", "ns", "team-a", "-o", "jsonpath={.metadata.name}"], { namespaceToken: "team-a" })).toBe("team-a");
    const other = await k.kubectl(["get", "ns", "vault"], { namespaceToken: "team-a" });
    expect(other.code).not.toBe(0);
    expect(other.stderr).toContain("Error from server (Forbidden)");
  });

  test("kubectl create ns is refused: namespaces are read-only in pai", async () => {
    const r = await k.kubectl(["create", "ns", "made"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("Error from server (MethodNotAllowed)");
    expect(r.stderr).toContain("read-only");
    expect((await k.kubectl(["get", "ns", "made"])).code).not.toBe(0);
  });
});
