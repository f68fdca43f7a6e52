/**
 * `pai serve` configuration: flags first, then their PAI_* environment twins, then defaults.
 * Validated once here; a bad value stops the server with a message that names the flag.
 */
import { isAbsolute, resolve } from "node:path";
import { parseCidr, type Cidr } from "../lib/cidr";
import { UsageError, type FlagSpec, parseArgs } from "../lib/args";
import type { LogLevel } from "../lib/log";
import { DEFAULT_MAX_PENDING } from "../service/sessions";
import { DEFAULT_SESSION_NICE, DEFAULT_WARM_CHILDREN } from "../supervisor/supervisor";
import { formatDuration, parseDuration } from "../lib/duration";
import { DEFAULT_RETENTION_INTERVAL_MS, DEFAULT_SESSION_RETENTION_MS } from "../service/retention";
import { loadTlsFiles, sanProblem, TlsError, type TlsMaterial } from "../lib/tls";
import { dnsLabelProblem } from "../domain/names";

/**
 * HTTPS, or none (plain HTTP, e.g. behind a load balancer that terminates TLS): the operator's
 * certificate files, read and checked here, or the CA and certificate pai keeps in <data-dir>/tls.
 */
export type TlsConfig =
  | { source: "files"; certFile: string; keyFile: string; caFile?: string; material: TlsMaterial }
  | { source: "generated"; extraNames: string[] };

export interface ServeConfig {
  port: number;
  host: string;
  dataDir: string;
  manifests?: string;
  /** Base of every webhook URL; defaults to http://localhost:<port> once the port is known. */
  publicUrl?: string;
  trustedProxies: Cidr[];
  maxBodyBytes: number;
  logLevel: LogLevel;
  writeStatus: boolean;
  /** Sessions running at once, across all agents. */
  maxSessions: number;
  /** Pending sessions across all agents; starts beyond it get 429. */
  maxPending: number;
  /** Nice value added for session processes (0: the server's own priority). */
  sessionNice: number;
  /** Session processes kept started ahead of demand, each for one session (0: none). */
  warmProcesses: number;
  /** Delays between callback attempts (PAI_CALLBACK_BACKOFF_MS, comma-separated). */
  callbackBackoffMs?: number[];
  /** Let callbackUrl (and the web_fetch tool) reach loopback and private addresses. */
  allowPrivateCallbacks: boolean;
  /** Let `bash` and stdio MCP servers run without bubblewrap when it is missing. */
  allowUnsandboxedTools: boolean;
  /** Absolute paths tool processes see read-only although the sandbox would cover them. */
  sandboxReadOnly: string[];
  /** Interval of keep-alive comments on SSE streams. */
  sseKeepAliveMs: number;
  /** Sessions that finished longer ago than this are removed with their folder and events (0: kept forever). */
  sessionRetentionMs: number;
  /** Time between retention runs (PAI_RETENTION_INTERVAL_MS). */
  retentionIntervalMs: number;
  tls?: TlsConfig;
  /** Agents and Secrets are a Kubernetes cluster's (pai serve --kubernetes) instead of the database's. */
  kubernetes?: KubernetesConfig;
  /** Reconcile agents (webhook secrets, status); false serves the API alone (--no-controller). */
  controller: boolean;
  /** Sessions, events and access tokens in this Postgres, shared by replicas (--database); default: SQLite in the data dir. */
  database?: DatabaseConfig;
}

export interface DatabaseConfig {
  url: string;
  /** A replica whose heartbeat is older than this has lost its sessions (PAI_REPLICA_LEASE_MS, default 15 s). */
  replicaLeaseMs: number;
}

export interface KubernetesConfig {
  /** --kubeconfig; without it: KUBECONFIG, the pod's service account, ~/.kube/config. */
  kubeconfig?: string;
  /** Watch only these namespaces; default: every namespace. */
  namespaces?: string[];
  /** Where the leader Lease lives; default POD_NAMESPACE, else the kubeconfig context's namespace. */
  leaseNamespace?: string;
  /** Lease timing (PAI_LEASE_DURATION_MS; renew deadline 2/3 and retry 2/15 of it, as client-go's defaults). */
  leaseDurationMs: number;
}

export const DEFAULT_LEASE_DURATION_MS = 15_000;

export const SERVE_FLAGS: FlagSpec = {
  port: { short: "p" },
  host: {},
  "data-dir": {},
  manifests: {},
  "public-url": {},
  "trusted-proxies": {},
  "max-body-bytes": {},
  "log-level": {},
  "max-sessions": {},
  "max-pending": {},
  "session-nice": {},
  "warm-processes": {},
  "session-retention": {},
  "no-write-status": { boolean: true },
  "allow-private-callbacks": { boolean: true },
  "allow-unsandboxed-tools": { boolean: true },
  "sandbox-read-only": {},
  tls: { boolean: true },
  "tls-cert-file": {},
  "tls-private-key-file": {},
  "tls-ca-file": {},
  "tls-san": { multiple: true },
  kubernetes: { boolean: true },
  kubeconfig: {},
  "watch-namespaces": {},
  "lease-namespace": {},
  "no-controller": { boolean: true },
  database: {},
  help: { short: "h", boolean: true },
};

/**
 * Loopback only: a reverse proxy on the same machine. Trusting private ranges by default would let
 * any host on the LAN forge X-Forwarded-For past allowCIDRs; a load balancer's range is added by hand.
 */
export const DEFAULT_TRUSTED_PROXIES = "127.0.0.0/8,::1/128";

/**
 * Trusted ranges wider than one small subnet (more than 256 IPv4 or a /64 of IPv6 addresses), not
 * counting loopback: every host in them may write the X-Forwarded-For that allowCIDRs believes.
 */
export function broadTrustedProxies(trusted: Cidr[]): Cidr[] {
  const loopback = (c: Cidr) => c.text.startsWith("127.") || c.text === "::1" || c.text === "::1/128";
  const v4 = (c: Cidr) => c.text.includes(".") && !c.text.includes(":");
  return trusted.filter((c) => !loopback(c) && (v4(c) ? c.bits - 96 < 24 : c.bits < 64));
}

export const SERVE_HELP = `Usage: pai serve [flags]

Serves the webhook and management API, runs the controller and watches the manifests folder.

Flags (each has an environment twin):
  -p, --port N              PAI_PORT            port to listen on (default 8080; 0 picks a free one)
      --host ADDR           PAI_HOST            address to bind (default 0.0.0.0)
      --data-dir DIR        PAI_DATA_DIR        where the database and admin token live (default ./.pai)
      --manifests DIR       PAI_MANIFESTS       folder of Agent YAML files to apply and watch
      --public-url URL      PAI_PUBLIC_URL      base of webhook URLs (default http://localhost:<port>)
      --trusted-proxies L   PAI_TRUSTED_PROXIES CIDRs whose X-Forwarded-For is believed
                                                (default loopback only: 127.0.0.0/8, ::1)
      --max-body-bytes N    PAI_MAX_BODY_BYTES  largest request body accepted (default 1048576)
      --max-sessions N      PAI_MAX_SESSIONS    sessions running at once (default 8); more wait, Pending
      --max-pending N       PAI_MAX_PENDING     sessions waiting Pending, all agents (default 100000);
                                                more starts get 429 with Retry-After
      --session-nice N      PAI_SESSION_NICE    run sessions N nice levels below the server (0-19,
                                                default 10; 0 keeps the server's priority)
      --warm-processes N    PAI_WARM_PROCESSES  session processes kept started ahead of demand, each
                                                for one session (0-64, default 2; 0: none)
      --session-retention D PAI_SESSION_RETENTION
                                                remove sessions (folder, events, record) D after
                                                they finish: 30d, 12h, 90m (default 30d; 0 keeps all)
      --log-level L         PAI_LOG_LEVEL       debug, info, warn or error (default info)
      --no-write-status                         do not write status back into manifest files
      --allow-private-callbacks PAI_ALLOW_PRIVATE_CALLBACKS=true
                                                let webhook callbackUrl and the web_fetch tool reach
                                                loopback/private addresses
      --allow-unsandboxed-tools PAI_ALLOW_UNSANDBOXED_TOOLS=true
                                                run bash and stdio MCP servers without bubblewrap
                                                when bwrap is missing (refused otherwise)
      --sandbox-read-only P PAI_SANDBOX_READ_ONLY  comma-separated absolute paths tool processes
                                                see read-only although the sandbox hides them
                                                (its /tmp is private: e.g. programs under /tmp)

TLS (off by default: plain HTTP, e.g. behind a load balancer that terminates TLS):
      --tls                 PAI_TLS=true        serve HTTPS with a CA and certificate that pai makes
                                                in <data-dir>/tls on first start and keeps (names:
                                                localhost, 127.0.0.1, ::1, this host, --host, the
                                                --public-url host)
      --tls-san NAME[,NAME] PAI_TLS_SAN         more DNS names or IPs for that certificate
      --tls-cert-file F     PAI_TLS_CERT_FILE   serve HTTPS with this PEM certificate (chain: the
                                                server's certificate first)
      --tls-private-key-file F PAI_TLS_PRIVATE_KEY_FILE
                                                its PEM private key (both files, or neither)
      --tls-ca-file F       PAI_TLS_CA_FILE     the CA that clients trust (pai kubeconfig); default:
                                                the last certificate in --tls-cert-file

Replicas (see "Running on more than one machine" in the README):
      --database URL        PAI_DATABASE_URL    postgres://user:password@host:5432/db: sessions, events
                                                and access tokens (and Agents and Secrets, unless
                                                --kubernetes) live there, shared by every replica

In a Kubernetes cluster (see manifests/kubernetes and the README):
      --kubernetes          PAI_KUBERNETES=true Agents are the cluster's agents.pai.io resources and
                                                webhook tokens its Secrets (watched; sessions stay
                                                in the data dir); one replica at a time runs the
                                                controller, holding the Lease pai-controller
      --kubeconfig F        KUBECONFIG          the cluster to use (default: the pod's service
                                                account, then ~/.kube/config)
      --watch-namespaces L  PAI_WATCH_NAMESPACES
                                                comma-separated namespaces to watch (default: all)
      --lease-namespace NS  PAI_LEASE_NAMESPACE namespace of the Lease (default: POD_NAMESPACE, else
                                                the kubeconfig's namespace)
      --no-controller       PAI_NO_CONTROLLER=true
                                                serve the API without reconciling agents (no webhook
                                                tokens, no status): for a pai that is the API
                                                server of another pai's --kubernetes controller
`;

export function loadServeConfig(argv: string[], env: Record<string, string | undefined> = process.env): ServeConfig | "help" {
  const { flags, positionals } = parseArgs(argv, SERVE_FLAGS);
  if (flags.help) return "help";
  if (positionals.length) throw new UsageError(`pai serve takes no arguments (got "${positionals[0]}")`);
  const pick = (flag: string, envName: string) => (flags[flag] as string | undefined) ?? (env[envName] || undefined);

  const portText = pick("port", "PAI_PORT") ?? "8080";
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) throw new UsageError(`--port must be a number from 0 to 65535 (got "${portText}")`);

  const publicUrl = pick("public-url", "PAI_PUBLIC_URL");
  if (publicUrl !== undefined) {
    let u: URL;
    try {
      u = new URL(publicUrl);
    } catch {
      throw new UsageError(`--public-url must be an absolute http(s) URL (got "${publicUrl}")`);
    }
    if (!/^https?:$/.test(u.protocol)) throw new UsageError(`--public-url must start with http:// or https:// (got "${publicUrl}")`);
  }

  const proxiesText = pick("trusted-proxies", "PAI_TRUSTED_PROXIES") ?? DEFAULT_TRUSTED_PROXIES;
  const trustedProxies = proxiesText
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const c = parseCidr(s);
      if (!c) throw new UsageError(`--trusted-proxies: "${s}" is not an IP address or CIDR range`);
      return c;
    });

  const bodyText = pick("max-body-bytes", "PAI_MAX_BODY_BYTES") ?? String(1024 * 1024);
  const maxBodyBytes = Number(bodyText);
  if (!/^\d+$/.test(bodyText) || maxBodyBytes < 1024) throw new UsageError(`--max-body-bytes must be a whole number of at least 1024 (got "${bodyText}")`);

  const logLevel = (pick("log-level", "PAI_LOG_LEVEL") ?? "info") as LogLevel;
  if (!["debug", "info", "warn", "error"].includes(logLevel)) throw new UsageError(`--log-level must be debug, info, warn or error (got "${logLevel}")`);

  const maxText = pick("max-sessions", "PAI_MAX_SESSIONS") ?? "8";
  const maxSessions = Number(maxText);
  if (!/^\d+$/.test(maxText) || maxSessions < 1 || maxSessions > 10000) throw new UsageError(`--max-sessions must be a whole number from 1 to 10000 (got "${maxText}")`);

  const pendingText = pick("max-pending", "PAI_MAX_PENDING") ?? String(DEFAULT_MAX_PENDING);
  const maxPending = Number(pendingText);
  if (!/^\d+$/.test(pendingText) || maxPending < 1 || maxPending > 1_000_000_000) throw new UsageError(`--max-pending must be a whole number from 1 to 1000000000 (got "${pendingText}")`);

  const niceText = pick("session-nice", "PAI_SESSION_NICE") ?? String(DEFAULT_SESSION_NICE);
  const sessionNice = Number(niceText);
  if (!/^\d+$/.test(niceText) || sessionNice > 19) throw new UsageError(`--session-nice must be a whole number from 0 to 19 (got "${niceText}")`);

  const warmText = pick("warm-processes", "PAI_WARM_PROCESSES") ?? String(DEFAULT_WARM_CHILDREN);
  const warmProcesses = Number(warmText);
  if (!/^\d+$/.test(warmText) || warmProcesses > 64) throw new UsageError(`--warm-processes must be a whole number from 0 to 64 (got "${warmText}")`);

  const readOnlyText = pick("sandbox-read-only", "PAI_SANDBOX_READ_ONLY") ?? "";
  const sandboxReadOnly = readOnlyText.split(",").map((p) => p.trim()).filter(Boolean);
  const relative = sandboxReadOnly.filter((p) => !isAbsolute(p) || p.includes("\0"));
  if (relative.length) throw new UsageError(`--sandbox-read-only takes absolute paths, separated by commas (got ${relative.map((p) => JSON.stringify(p)).join(", ")})`);

  const retentionText = pick("session-retention", "PAI_SESSION_RETENTION") ?? formatDuration(DEFAULT_SESSION_RETENTION_MS);
  const sessionRetentionMs = parseDuration(retentionText);
  if (sessionRetentionMs === undefined)
    throw new UsageError(`--session-retention must be a whole number with a unit, d, h, m or s (e.g. 30d, 12h, 90m), or 0 to keep every session (got "${retentionText}")`);

  const retentionIntervalText = env.PAI_RETENTION_INTERVAL_MS || String(DEFAULT_RETENTION_INTERVAL_MS);
  const retentionIntervalMs = Number(retentionIntervalText);
  if (!/^\d+$/.test(retentionIntervalText) || retentionIntervalMs < 10) throw new UsageError(`PAI_RETENTION_INTERVAL_MS must be a whole number of milliseconds, at least 10 (got "${retentionIntervalText}")`);

  const keepAliveText = env.PAI_SSE_KEEPALIVE_MS || "15000";
  const sseKeepAliveMs = Number(keepAliveText);
  if (!/^\d+$/.test(keepAliveText) || sseKeepAliveMs < 10) throw new UsageError(`PAI_SSE_KEEPALIVE_MS must be a whole number of milliseconds, at least 10 (got "${keepAliveText}")`);

  const backoffText = env.PAI_CALLBACK_BACKOFF_MS || undefined;
  const callbackBackoffMs = backoffText?.split(",").map((x) => {
    if (!/^\d+$/.test(x.trim())) throw new UsageError(`PAI_CALLBACK_BACKOFF_MS must be comma-separated whole milliseconds (got "${backoffText}")`);
    return Number(x.trim());
  });

  const manifests = pick("manifests", "PAI_MANIFESTS");
  const tls = loadTlsConfig(flags, env);
  const bool = (flag: string, envName: string) => {
    if (flags[flag] !== undefined) return !!flags[flag];
    const text = env[envName];
    if (!text) return false;
    if (!/^(1|true|yes|0|false|no)$/i.test(text)) throw new UsageError(`${envName} must be true or false (got "${text}")`);
    return /^(1|true|yes)$/i.test(text);
  };
  const controller = !bool("no-controller", "PAI_NO_CONTROLLER");
  const kubernetes = bool("kubernetes", "PAI_KUBERNETES") ? loadKubernetesConfig(pick, env) : undefined;
  if (!kubernetes)
    for (const [flag, envName] of [["kubeconfig", ""], ["watch-namespaces", "PAI_WATCH_NAMESPACES"], ["lease-namespace", "PAI_LEASE_NAMESPACE"]] as const)
      if (flags[flag] !== undefined || (envName && env[envName])) throw new UsageError(`--${flag} is a setting of --kubernetes mode: pass --kubernetes too (PAI_KUBERNETES=true)`);
  if (kubernetes && manifests)
    throw new UsageError("--manifests and --kubernetes do not go together: in a cluster, Agents are custom resources (kubectl apply -f the folder against the cluster)");
  if (kubernetes && !controller) throw new UsageError("--no-controller and --kubernetes do not go together: --kubernetes runs the controller (one replica at a time, by the Lease)");
  const database = loadDatabaseConfig(pick("database", "PAI_DATABASE_URL"), env);
  if (database && !controller) throw new UsageError("--no-controller and --database do not go together: replicas run the controller one at a time");
  return {
    port,
    host: pick("host", "PAI_HOST") ?? "0.0.0.0",
    dataDir: resolve(pick("data-dir", "PAI_DATA_DIR") ?? ".pai"),
    manifests: manifests ? resolve(manifests) : undefined,
    publicUrl: publicUrl?.replace(/\/+$/, ""),
    trustedProxies,
    maxBodyBytes,
    logLevel,
    writeStatus: !flags["no-write-status"],
    allowPrivateCallbacks: !!flags["allow-private-callbacks"] || /^(1|true|yes)$/i.test(env.PAI_ALLOW_PRIVATE_CALLBACKS ?? ""),
    allowUnsandboxedTools: !!flags["allow-unsandboxed-tools"] || /^(1|true|yes)$/i.test(env.PAI_ALLOW_UNSANDBOXED_TOOLS ?? ""),
    sandboxReadOnly,
    maxSessions,
    maxPending,
    sessionNice,
    warmProcesses,
    sseKeepAliveMs,
    callbackBackoffMs,
    sessionRetentionMs,
    retentionIntervalMs,
    tls,
    kubernetes,
    controller,
    database,
  };
}

function loadDatabaseConfig(url: string | undefined, env: Record<string, string | undefined>): DatabaseConfig | undefined {
  if (url === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // The value may hold a password: it is not repeated.
    throw new UsageError("--database must be a postgres:// URL, e.g. postgres://pai:secret@db:5432/pai (the value given is not a URL)");
  }
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") throw new UsageError(`--database must be a postgres:// URL (got a ${u.protocol}// one); SQLite in the data dir is the default without --database`);
  if (!u.hostname) throw new UsageError("--database: the URL has no host (postgres://user:password@host:5432/db)");
  const leaseText = env.PAI_REPLICA_LEASE_MS || "15000";
  const replicaLeaseMs = Number(leaseText);
  if (!/^\d+$/.test(leaseText) || replicaLeaseMs < 200) throw new UsageError(`PAI_REPLICA_LEASE_MS must be a whole number of milliseconds, at least 200 (got "${leaseText}")`);
  return { url, replicaLeaseMs };
}

function loadKubernetesConfig(pick: (flag: string, envName: string) => string | undefined, env: Record<string, string | undefined>): KubernetesConfig {
  const kubeconfig = pick("kubeconfig", "");
  const namespacesText = pick("watch-namespaces", "PAI_WATCH_NAMESPACES");
  const namespaces = namespacesText?.split(",").map((n) => n.trim()).filter(Boolean);
  const leaseNamespace = pick("lease-namespace", "PAI_LEASE_NAMESPACE") ?? (env.POD_NAMESPACE || undefined);
  for (const ns of [...(namespaces ?? []), ...(leaseNamespace ? [leaseNamespace] : [])]) {
    const problem = dnsLabelProblem(ns);
    if (problem) throw new UsageError(`${namespaces?.includes(ns) ? "--watch-namespaces" : "--lease-namespace"}: ${problem}`);
  }
  if (namespacesText !== undefined && !namespaces?.length) throw new UsageError("--watch-namespaces needs at least one namespace (leave it out to watch all)");
  const durationText = env.PAI_LEASE_DURATION_MS || String(DEFAULT_LEASE_DURATION_MS);
  const leaseDurationMs = Number(durationText);
  if (!/^\d+$/.test(durationText) || leaseDurationMs < 300) throw new UsageError(`PAI_LEASE_DURATION_MS must be a whole number of milliseconds, at least 300 (got "${durationText}")`);
  return { kubeconfig: kubeconfig && resolve(kubeconfig), namespaces, leaseNamespace, leaseDurationMs };
}

function loadTlsConfig(flags: Record<string, string | boolean | string[] | undefined>, env: Record<string, string | undefined>): TlsConfig | undefined {
  const pick = (flag: string, envName: string) => (flags[flag] as string | undefined) ?? (env[envName] || undefined);
  const certFile = pick("tls-cert-file", "PAI_TLS_CERT_FILE");
  const keyFile = pick("tls-private-key-file", "PAI_TLS_PRIVATE_KEY_FILE");
  const caFile = pick("tls-ca-file", "PAI_TLS_CA_FILE");
  const sanTexts = (flags["tls-san"] as string[] | undefined) ?? (env.PAI_TLS_SAN ? [env.PAI_TLS_SAN] : []);
  const extraNames = sanTexts.flatMap((t) => t.split(",")).map((n) => n.trim().toLowerCase()).filter(Boolean);
  let enabled = flags.tls as boolean | undefined;
  if (enabled === undefined && env.PAI_TLS) {
    if (!/^(1|true|yes|0|false|no)$/i.test(env.PAI_TLS)) throw new UsageError(`PAI_TLS must be true or false (got "${env.PAI_TLS}")`);
    enabled = /^(1|true|yes)$/i.test(env.PAI_TLS);
  }

  if (!!certFile !== !!keyFile)
    throw new UsageError(`--tls-cert-file and --tls-private-key-file go together (PAI_TLS_CERT_FILE, PAI_TLS_PRIVATE_KEY_FILE): ${certFile ? "--tls-private-key-file" : "--tls-cert-file"} is missing`);
  if (certFile && keyFile) {
    if (extraNames.length) throw new UsageError("--tls-san adds names to the certificate pai makes (--tls); a certificate from --tls-cert-file has the names it was made with");
    try {
      return { source: "files", certFile: resolve(certFile), keyFile: resolve(keyFile), caFile: caFile && resolve(caFile), material: loadTlsFiles({ certFile: resolve(certFile), keyFile: resolve(keyFile), caFile: caFile && resolve(caFile) }) };
    } catch (err) {
      if (err instanceof TlsError) throw new UsageError(err.message);
      throw err;
    }
  }
  if (caFile) throw new UsageError("--tls-ca-file names the CA of --tls-cert-file; pass it with --tls-cert-file and --tls-private-key-file");
  if (!enabled) {
    if (extraNames.length) throw new UsageError("--tls-san adds names to the certificate of --tls: pass --tls too (PAI_TLS=true)");
    return undefined;
  }
  const bad = extraNames.map(sanProblem).filter(Boolean);
  if (bad.length) throw new UsageError(`--tls-san: ${bad.join("; ")}`);
  return { source: "generated", extraNames };
}
