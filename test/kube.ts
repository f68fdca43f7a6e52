/**
 * Kubernetes-client test helpers: a real `pai serve --tls` on 127.0.0.1 (test/helpers.ts
 * startServer), its kubeconfig made by the real `pai kubeconfig`, and the real kubectl run with that
 * kubeconfig and nothing else of the machine's Kubernetes setup: HOME is a temp folder of the
 * server's (no ~/.kube/config, a discovery cache of its own), and the environment holds only PATH,
 * HOME and KUBECONFIG.
 *
 *   const k = await startKubeServer();
 *   const r = await k.kubectl(["get", "agents"]);                        // admin token
 *   const n = await k.kubectl(["get", "sessions"], { namespaceToken: "team-a" }); // a team-a token
 *   await k.stop();
 *
 * Without kubectl (a local run), tests that need it skip, and say so loudly: use
 * `describe.skipIf(!HAVE_KUBECTL)` and call `warnSkippedWithoutKubectl("what is skipped")` once.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { removeDir, startServer, tempDir, type CliResult, type TestServer } from "./helpers";

/** The kubectl binary on PATH (Debian/Ubuntu: /usr/bin/kubectl), or undefined. */
export const KUBECTL = Bun.which("kubectl") ?? undefined;
export const HAVE_KUBECTL = KUBECTL !== undefined;

/** Says, where nobody can miss it, that tests were skipped because kubectl is not installed. */
export function warnSkippedWithoutKubectl(what: string): void {
  if (HAVE_KUBECTL) return;
  console.warn(
    `\n${"!".repeat(78)}\nSKIPPED: ${what}\n  kubectl is not installed, so these tests did not run. Install it (apt-get install kubectl,\n  or kubernetes-client; .ci/run does this in CI) to run them.\n${"!".repeat(78)}\n`,
  );
}

export interface KubectlOptions {
  stdin?: string;
  /** Run with a kubeconfig holding a new PaiAccessToken of this namespace (made with `pai kubeconfig -n NS`). */
  namespaceToken?: string;
  /** Kill kubectl after this long (default 30 s); the result then has code -1 and says so in stderr. */
  timeoutMs?: number;
}

export interface KubeServer {
  server: TestServer;
  /** https://127.0.0.1:<port> */
  url: string;
  /** PEM of the server's CA (<data-dir>/tls/ca.crt). */
  ca: string;
  /** The admin kubeconfig file. */
  kubeconfig: string;
  /** HOME and the environment kubectl runs with (admin kubeconfig). */
  home: string;
  env: Record<string, string>;
  /** The kubeconfig file of a namespace token for `namespace`, made on first use. */
  namespaceKubeconfig(namespace: string): Promise<string>;
  /** Runs the real kubectl with the admin kubeconfig, or a namespace token's. */
  kubectl(args: string[], opts?: KubectlOptions): Promise<CliResult>;
  /** Starts kubectl and leaves it running (for `-w`): read its stdout, kill it when done. */
  spawnKubectl(args: string[], opts?: Pick<KubectlOptions, "namespaceToken">): Promise<Subprocess<"ignore", "pipe", "pipe">>;
  /** fetch against the server over TLS with the admin token (as TestServer.api, which has no CA). */
  api(path: string, init?: RequestInit & { json?: unknown; token?: string }): Promise<Response>;
  /** Runs the pai CLI against the server (it finds the CA through the context file). */
  cli: TestServer["cli"];
  stop(): Promise<number>;
}

export async function startKubeServer(opts: { args?: string[]; env?: Record<string, string>; manifests?: string; dataDir?: string } = {}): Promise<KubeServer> {
  const server = await startServer({ ...opts, args: ["--tls", ...(opts.args ?? [])] });
  const home = tempDir("pai-kube-home-");
  mkdirSync(join(home, ".kube"), { recursive: true });
  const configs = new Map<string, Promise<string>>();

  async function writeKubeconfig(namespace?: string): Promise<string> {
    const r = await server.cli(["kubeconfig", ...(namespace ? ["-n", namespace] : [])]);
    if (r.code !== 0) throw new Error(`pai kubeconfig${namespace ? ` -n ${namespace}` : ""} failed (exit ${r.code}): ${r.stderr}`);
    const file = join(home, ".kube", namespace ? `pai-${namespace}.yaml` : "pai.yaml");
    writeFileSync(file, r.stdout, { mode: 0o600 });
    return file;
  }
  const kubeconfig = await writeKubeconfig();
  const envFor = (file: string) => ({ PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, KUBECONFIG: file });
  const configFor = (ns?: string) => {
    if (!ns) return Promise.resolve(kubeconfig);
    let p = configs.get(ns);
    if (!p) configs.set(ns, (p = writeKubeconfig(ns)));
    return p;
  };
  const ca = await Bun.file(join(server.dataDir, "tls", "ca.crt")).text();

  async function spawnKubectl(args: string[], o: Pick<KubectlOptions, "namespaceToken"> = {}) {
    if (!KUBECTL) throw new Error("kubectl is not installed (check HAVE_KUBECTL first)");
    return Bun.spawn([KUBECTL, ...args], { env: envFor(await configFor(o.namespaceToken)), cwd: home, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  }

  return {
    server,
    url: server.url,
    ca,
    kubeconfig,
    home,
    env: envFor(kubeconfig),
    namespaceKubeconfig: (ns) => configFor(ns),
    async kubectl(args, o = {}) {
      if (!KUBECTL) throw new Error("kubectl is not installed (check HAVE_KUBECTL first)");
      const proc = Bun.spawn([KUBECTL, ...args], {
        env: envFor(await configFor(o.namespaceToken)),
        cwd: home,
        stdin: o.stdin !== undefined ? new Blob([o.stdin]) : "ignore",
        stdout: "pipe",
        stderr: "pipe",
      });
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        proc.kill("SIGKILL");
      }, o.timeoutMs ?? 30_000);
      const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      clearTimeout(timer);
      return timedOut ? { code: -1, stdout, stderr: `${stderr}\n(kubectl ${args.join(" ")} killed after ${o.timeoutMs ?? 30_000} ms)` } : { code, stdout, stderr };
    },
    spawnKubectl,
    api(path, init = {}) {
      const { json, token, ...rest } = init;
      return fetch(`${server.url}${path}`, {
        ...rest,
        tls: { ca },
        headers: { authorization: `Bearer ${token ?? server.token}`, ...(json !== undefined ? { "content-type": "application/json" } : {}), ...(rest.headers as Record<string, string>) },
        body: json !== undefined ? JSON.stringify(json) : rest.body,
      });
    },
    cli: server.cli,
    async stop() {
      const code = await server.stop();
      removeDir(home);
      return code;
    },
  };
}
