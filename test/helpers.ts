/**
 * Test helpers: a real `pai serve` child process on a free loopback port with a temp data dir,
 * the real CLI spawned as a process, and polling for eventually-true conditions.
 */
import { mkdtempSync, readFileSync, readlinkSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";

export const ROOT = resolve(import.meta.dir, "..");
export const MAIN = join(ROOT, "src", "main.ts");

export const tempDir = (prefix = "pai-test-") => mkdtempSync(join(tmpdir(), prefix));

export interface TestServer {
  url: string;
  port: number;
  dataDir: string;
  token: string;
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Everything the server wrote to stderr so far. */
  logs(): string;
  /** Sends SIGTERM and waits for exit. */
  stop(): Promise<number>;
  /** An authenticated fetch against the server. */
  api(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  /** Runs the CLI against this server. */
  cli(args: string[], opts?: { stdin?: string; env?: Record<string, string> }): Promise<CliResult>;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(args: string[], opts: { env?: Record<string, string>; stdin?: string; cwd?: string } = {}): Promise<CliResult> {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    stdin: opts.stdin !== undefined ? new Blob([opts.stdin]) : "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

export async function startServer(opts: { dataDir?: string; manifests?: string; args?: string[]; env?: Record<string, string> } = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? tempDir("pai-data-");
  const args = ["serve", "--port", "0", "--host", "127.0.0.1", "--data-dir", dataDir, ...(opts.manifests ? ["--manifests", opts.manifests] : []), ...(opts.args ?? [])];
  const proc = Bun.spawn([process.execPath, MAIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...opts.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let logs = "";
  const decoder = new TextDecoder();
  const listening = new Promise<string>((resolveUrl, reject) => {
    (async () => {
      for await (const chunk of proc.stderr) {
        logs += decoder.decode(chunk);
        const m = /listening on (?:all interfaces .*?from this machine: )?(https?:\/\/[^\s]+)/.exec(logs);
        if (m) resolveUrl(m[1]!);
      }
      reject(new Error(`server exited before listening:\n${logs}`));
    })();
  });
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`server did not start in 10 s:\n${logs}`)), 10_000));
  const url = await Promise.race([listening, timeout]);
  const token = readFileSync(join(dataDir, "admin-token"), "utf8").trim();
  const server: TestServer = {
    url,
    port: Number(new URL(url).port),
    dataDir,
    token,
    proc,
    logs: () => logs,
    async stop() {
      proc.kill("SIGTERM");
      return proc.exited;
    },
    api(path, init = {}) {
      const { json, ...rest } = init;
      return fetch(`${url}${path}`, {
        ...rest,
        headers: { authorization: `Bearer ${token}`, ...(json !== undefined ? { "content-type": "application/json" } : {}), ...(rest.headers as Record<string, string>) },
        body: json !== undefined ? JSON.stringify(json) : rest.body,
      });
    },
    cli(cliArgs, o = {}) {
      return runCli(cliArgs, { stdin: o.stdin, env: { PAI_SERVER: url, PAI_TOKEN: token, ...o.env } });
    },
  };
  return server;
}

/** Polls `fn` until it returns a truthy value (returned) or `timeoutMs` passes (throws). */
export async function eventually<T>(fn: () => T | Promise<T>, timeoutMs = 5000, what = "condition"): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await Bun.sleep(25);
  }
}

export function removeDir(dir: string) {
  rmSync(dir, { recursive: true, force: true });
}

/** The product page's agent, with a chosen name and extra spec. */
export function agentYaml(name: string, extra = "", opts: { webhook?: boolean; namespace?: string } = {}): string {
  return `apiVersion: pai.io/v1
kind: Agent
metadata:
  name: ${name}${opts.namespace ? `\n  namespace: ${opts.namespace}` : ""}
spec:
  models:
    - anthropic/claude-sonnet-4-6
${opts.webhook === false ? "" : "  triggers:\n    - webhook: {}\n"}  system: |
    You are a helpful agent. ...
${extra}`;
}

export const WEBHOOK_LINE = (ns: string, name: string) => new RegExp(`^Webhook URL (http://localhost:\\d+/webhooks/${ns}/${name}/([0-9a-f]{64}))$`, "m");

/** The pids of `parent`'s direct children (session processes of a server: running, warm or idle). */
export function childPids(parent: number): number[] {
  return Bun.spawnSync(["pgrep", "-P", String(parent)]).stdout.toString().trim().split("\n").filter(Boolean).map(Number);
}

/** `parent`'s children whose working folder is `folder` (compared after resolving symlinks). */
export function childrenIn(parent: number, folder: string): number[] {
  let real: string;
  try {
    real = realpathSync(folder);
  } catch {
    return []; // not made yet: nobody runs there
  }
  return childPids(parent).filter((pid) => {
    try {
      return readlinkSync(`/proc/${pid}/cwd`) === real;
    } catch {
      return false; // gone meanwhile
    }
  });
}

/**
 * The pid of the process running a session: the server's child whose working folder is the
 * session's (a child spawned for it starts there; a warm or reused one moves there for the run).
 */
export function sessionPid(server: { proc: { pid: number }; dataDir: string }, name: string, namespace = "default"): number | undefined {
  return childrenIn(server.proc.pid, join(server.dataDir, "sessions", namespace, name))[0];
}

/** Whether `pid` runs: not gone, and not a zombie waiting to be reaped. */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat[stat.lastIndexOf(")") + 2] !== "Z";
  } catch {
    return false;
  }
}
