/**
 * `pai serve`: the composition root of the server. Opens the store (refusing a data dir another
 * server holds), makes the admin token, starts the HTTP API, the controller and the manifests
 * watcher, and shuts them down in reverse order on SIGINT/SIGTERM.
 */
import { join } from "node:path";
import { createCore } from "./core";
import { createApi } from "./api/app";
import { registerContext } from "./config/context";
import { broadTrustedProxies, type ServeConfig } from "./config/serve";
import type { Agent } from "./domain/agent";
import type { Logger } from "./lib/log";

/** allowCIDRs believes X-Forwarded-For from trusted proxies: say so when any host of a wide range may write it. */
function warnOnBroadTrust(cfg: ServeConfig, all: Agent[], log: Logger) {
  const broad = broadTrustedProxies(cfg.trustedProxies);
  const guarded = all.filter((a) => a.spec.triggers?.some((t) => t.webhook?.allowCIDRs?.length));
  if (!broad.length || !guarded.length) return;
  log.warn(
    `allowCIDRs of ${guarded.map((a) => `${a.metadata.namespace}/${a.metadata.name}`).join(", ")} believe X-Forwarded-For from every host in the trusted proxies ${broad.map((c) => c.text).join(", ")}; narrow --trusted-proxies to your load balancer's addresses`,
  );
}

export interface RunningServer {
  url: string;
  publicUrl: string;
  adminTokenFile: string;
  stop(): Promise<void>;
}

export async function startServer(cfg: ServeConfig, log: Logger, version: string): Promise<RunningServer> {
  const core = createCore(cfg, log);
  const adminTokenFile = join(cfg.dataDir, "admin-token");
  const admin = core.tokens.ensureAdminToken(adminTokenFile);
  if (admin.created) log.info("created admin token", { file: adminTokenFile });

  let ready = false;
  const app = createApi({ ...core, log, ready: () => ready, version, sseKeepAliveMs: cfg.sseKeepAliveMs, maxBodyBytes: cfg.maxBodyBytes }).listen({
    port: cfg.port,
    hostname: cfg.host,
    // Twice the cap: up to there the API answers 413 itself, with a Status; Bun's own 413 is empty.
    maxRequestBodySize: 2 * cfg.maxBodyBytes,
    // Elysia's defaults would let a second server bind the same port and split the traffic.
    reusePort: false,
    development: false,
  });
  const port = app.server!.port;
  const wildcard = cfg.host === "0.0.0.0" || cfg.host === "::";
  const localHost = wildcard ? "127.0.0.1" : cfg.host.includes(":") ? `[${cfg.host}]` : cfg.host;
  const url = `http://${localHost}:${port}`;
  const publicUrl = cfg.publicUrl ?? `http://localhost:${port}`;

  await core.start(publicUrl);
  warnOnBroadTrust(cfg, core.agents.list().map((a) => a.agent), log);
  ready = true;
  const unregister = registerContext({ server: url, tokenFile: adminTokenFile, dataDir: cfg.dataDir });
  // Bound to every interface, the loopback URL alone would understate who can reach the server.
  const where = wildcard ? `all interfaces (${cfg.host}), port ${port}; from this machine: ${url}` : url;
  log.info(`listening on ${where}`, { publicUrl, dataDir: cfg.dataDir, manifests: cfg.manifests });

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
