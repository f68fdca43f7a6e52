/**
 * `pai serve`: the composition root of the server. Opens the store (refusing a data dir another
 * server holds), makes the admin token, starts the HTTP API, the controller and the manifests
 * watcher, and shuts them down in reverse order on SIGINT/SIGTERM.
 */
import { hostname } from "node:os";
import { join } from "node:path";
import { createCore } from "./core";
import { createApi } from "./api/app";
import { registerContext } from "./config/context";
import { broadTrustedProxies, type ServeConfig } from "./config/serve";
import type { Agent } from "./domain/agent";
import type { Logger } from "./lib/log";
import { ensureGeneratedTls, servingNames, type TlsMaterial } from "./lib/tls";

/** allowCIDRs believes X-Forwarded-For from trusted proxies: say so when any host of a wide range may write it. */
function warnOnBroadTrust(cfg: ServeConfig, all: Agent[], log: Logger) {
  const broad = broadTrustedProxies(cfg.trustedProxies);
  const guarded = all.filter((a) => a.spec.triggers?.some((t) => t.webhook?.allowCIDRs?.length));
  if (!broad.length || !guarded.length) return;
  log.warn(
    `allowCIDRs of ${guarded.map((a) => `${a.metadata.namespace}/${a.metadata.name}`).join(", ")} believe X-Forwarded-For from every host in the trusted proxies ${broad.map((c) => c.text).join(", ")}; narrow --trusted-proxies to your load balancer's addresses`,
  );
}

/**
 * The certificate to serve: the operator's (checked when the config was read), or the one pai keeps
 * in <data-dir>/tls, made or renewed here. Runs after the store opened, so only the server that
 * holds the data dir writes there.
 */
async function prepareTls(cfg: ServeConfig, log: Logger): Promise<TlsMaterial | undefined> {
  if (!cfg.tls) return undefined;
  if (cfg.tls.source === "files") {
    const m = cfg.tls.material;
    const left = m.notAfter.getTime() - Date.now();
    if (left < 30 * 86_400_000) log.warn(`the certificate in --tls-cert-file ${left <= 0 ? "expired" : "expires"} ${m.notAfter.toISOString()}: clients will refuse it${left <= 0 ? "" : " then"}`, { file: cfg.tls.certFile });
    log.info("serving TLS with the certificate from --tls-cert-file", { file: cfg.tls.certFile, names: m.names.join(","), notAfter: m.notAfter.toISOString() });
    return m;
  }
  // The X.509 encoder is loaded (by ensureGeneratedTls) only when a certificate has to be made.
  const names = servingNames({ host: cfg.host, publicUrl: cfg.publicUrl, extra: cfg.tls.extraNames, hostname: hostname() });
  const t = await ensureGeneratedTls(join(cfg.dataDir, "tls"), names);
  if (t.caCreated) log.info("created a CA for TLS", { file: join(t.dir, "ca.crt") });
  const fields = { file: join(t.dir, "server.crt"), names: names.join(","), notAfter: t.notAfter.toISOString() };
  if (t.action === "reused") log.info("serving TLS with the certificate in the data dir", fields);
  else log.info(`${t.action} the TLS serving certificate${t.reason ? `: ${t.reason}` : ""}`, fields);
  return t;
}

export interface RunningServer {
  url: string;
  publicUrl: string;
  adminTokenFile: string;
  stop(): Promise<void>;
}

/**
 * The loopback address the CLI on this machine uses for a server bound to every interface: one
 * that the certificate names (an operator's certificate may name only public host names; then the
 * CLI needs --server with one of them, and the start log says so).
 */
function localTlsHost(tls: TlsMaterial | undefined): string {
  if (!tls) return "127.0.0.1";
  return tls.names.includes("127.0.0.1") ? "127.0.0.1" : tls.names.includes("localhost") ? "localhost" : tls.names.includes("::1") ? "[::1]" : "127.0.0.1";
}

export async function startServer(cfg: ServeConfig, log: Logger, version: string): Promise<RunningServer> {
  // The cluster's client and caches are loaded only in --kubernetes mode.
  const cluster = cfg.kubernetes ? (await import("./objects/cluster")).connectCluster(cfg.kubernetes, log) : undefined;
  // The Postgres client and repository are loaded only with --database.
  const database = cfg.database ? await (await import("./replicas")).connectDatabase(cfg.database, log) : undefined;
  const core = createCore(cfg, log, { cluster, database });
  const adminTokenFile = join(cfg.dataDir, "admin-token");
  const admin = await core.tokens.ensureAdminToken(adminTokenFile);
  if (admin.created) log.info("created admin token", { file: adminTokenFile });

  let tls: TlsMaterial | undefined;
  try {
    tls = await prepareTls(cfg, log);
  } catch (err) {
    await core.stop().catch(() => {});
    throw err;
  }
  let ready = false;
  const app = createApi({ ...core, watch: core.objects.mode === "kubernetes" ? undefined : core.watch, log, ready: () => ready, version, sseKeepAliveMs: cfg.sseKeepAliveMs, maxBodyBytes: cfg.maxBodyBytes, controller: cfg.controller }).listen({
    port: cfg.port,
    hostname: cfg.host,
    // Twice the cap: up to there the API answers 413 itself, with a Status; Bun's own 413 is empty.
    maxRequestBodySize: 2 * cfg.maxBodyBytes,
    // Elysia's defaults would let a second server bind the same port and split the traffic.
    reusePort: false,
    development: false,
    ...(tls ? { tls: { cert: tls.cert, key: tls.key } } : {}),
  });
  const port = app.server!.port;
  const wildcard = cfg.host === "0.0.0.0" || cfg.host === "::";
  const localHost = wildcard ? localTlsHost(tls) : cfg.host.includes(":") ? `[${cfg.host}]` : cfg.host;
  const scheme = tls ? "https" : "http";
  const url = `${scheme}://${localHost}:${port}`;
  const publicUrl = cfg.publicUrl ?? `${scheme}://localhost:${port}`;

  await core.start(publicUrl);
  warnOnBroadTrust(cfg, core.agents.list().map((a) => a.agent), log);
  ready = true;
  // The CA goes into the context (it is public): the CLI verifies the server with it, and
  // `pai kubeconfig` hands it to kubectl.
  const unregister = registerContext({ server: url, tokenFile: adminTokenFile, dataDir: cfg.dataDir, ...(tls ? { ca: tls.ca } : {}) });
  if (tls && !tls.names.includes(localHost.replace(/^\[|\]$/g, "")))
    log.warn(`the TLS certificate does not name ${localHost}, so clients on this machine cannot verify ${url}: give the CLI --server https://<a name in the certificate>:${port}`, { names: tls.names.join(",") });
  // Bound to every interface, the loopback URL alone would understate who can reach the server.
  const where = wildcard ? `all interfaces (${cfg.host}), port ${port}; from this machine: ${url}` : url;
  log.info(`listening on ${where}`, { publicUrl, dataDir: cfg.dataDir, manifests: cfg.manifests });
  log.info(`web console: ${url}/console (sign in with an access token; the admin token is in ${adminTokenFile})`);

  let stopping: Promise<void> | undefined;
  return {
    url,
    publicUrl,
    adminTokenFile,
    stop() {
      stopping ??= (async () => {
        ready = false;
        unregister();
        await app.stop(true);
        await core.stop();
      })();
      return stopping;
    },
  };
}
