/**
 * `pai serve`: the composition root of the server. Opens the store (refusing a data dir another
 * server holds), makes the admin token, starts the HTTP API, the controller and the manifests
 * watcher, and shuts them down in reverse order on SIGINT/SIGTERM.
 */
import { join } from "node:path";
import { createStore } from "./store";
import { Bus } from "./service/bus";
import { createAgentService } from "./service/agents";
import { createSecretService } from "./service/secrets";
import { createTokenService } from "./service/tokens";
import { createSessionService } from "./service/sessions";
import { createSupervisor } from "./supervisor/supervisor";
import { credentialsFrom } from "./supervisor/env";
import { selfCommand } from "./lib/self";
import { createWebhookService } from "./service/webhooks";
import { createCallbackService } from "./service/callbacks";
import { Metrics } from "./lib/metrics";
import { createController } from "./controller/controller";
import { createApi } from "./api/app";
import { registerContext } from "./config/context";
import { broadTrustedProxies, type ServeConfig } from "./config/serve";
import type { Agent } from "./domain/agent";
import type { Logger } from "./lib/log";
import { DEFAULT_NAMESPACE } from "./domain/names";

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
  const store = createStore(cfg.dataDir);
  const bus = new Bus();
  const agents = createAgentService({ store, bus });
  const secrets = createSecretService({ store, bus });
  const tokens = createTokenService({ store });
  const adminTokenFile = join(cfg.dataDir, "admin-token");
  const admin = tokens.ensureAdminToken(adminTokenFile);
  if (admin.created) log.info("created admin token", { file: adminTokenFile });

  const sessions = createSessionService({ store, log, maxPending: cfg.maxPending });
  const supervisor = createSupervisor({
    sessions,
    log,
    maxSessions: cfg.maxSessions,
    command: selfCommand(),
    baseEnv: process.env,
    credentials: credentialsFrom(process.env),
    workDir: join(cfg.dataDir, "sessions"),
    sessionNice: cfg.sessionNice,
  });

  const webhooks = createWebhookService({ agents, secrets, sessions, log, trustedProxies: cfg.trustedProxies, allowPrivateCallbacks: cfg.allowPrivateCallbacks });
  const callbacks = createCallbackService({ sessions, secrets, log, allowPrivate: cfg.allowPrivateCallbacks, backoffMs: cfg.callbackBackoffMs });
  sessions.onFinished((s) => callbacks.enqueue(s));

  const metrics = new Metrics();
  const started = metrics.counter("pai_sessions_started_total", "Sessions started (webhooks, pai run, the API).");
  const finished = metrics.counter("pai_sessions_finished_total", "Sessions ended, by final phase.");
  sessions.onStarted(() => started());
  sessions.onFinished((s) => finished({ phase: s.phase }));
  metrics.gauge("pai_sessions_running", "Sessions running now.", () => supervisor.stats().running);
  metrics.gauge("pai_sessions_pending", "Sessions waiting for a slot.", () => supervisor.stats().queued);
  metrics.gauge("pai_agents", "Agents in the store.", () => agents.list().length);
  metrics.gauge("process_resident_memory_bytes", "Resident memory of the server process.", () => process.memoryUsage.rss());

  let ready = false;
  const app = createApi({ agents, secrets, tokens, sessions, supervisor, webhooks, log, ready: () => ready, version, metrics, sseKeepAliveMs: cfg.sseKeepAliveMs, maxBodyBytes: cfg.maxBodyBytes }).listen({
    port: cfg.port,
    hostname: cfg.host,
    maxRequestBodySize: cfg.maxBodyBytes,
    // Elysia's defaults would let a second server bind the same port and split the traffic.
    reusePort: false,
    development: false,
  });
  const port = app.server!.port;
  const wildcard = cfg.host === "0.0.0.0" || cfg.host === "::";
  const localHost = wildcard ? "127.0.0.1" : cfg.host.includes(":") ? `[${cfg.host}]` : cfg.host;
  const url = `http://${localHost}:${port}`;
  const publicUrl = cfg.publicUrl ?? `http://localhost:${port}`;

  const controller = createController({ agents, secrets, bus, log, publicUrl });
  controller.start();
  // The manifests watcher (and the YAML library) is loaded only when there is a folder to watch.
  const files = cfg.manifests
    ? (await import("./controller/sources/file")).createFileSource({ dir: cfg.manifests, agents, bus, log, defaultNamespace: DEFAULT_NAMESPACE, writeStatus: cfg.writeStatus })
    : undefined;
  files?.start();
  await controller.idle();
  await supervisor.start();
  warnOnBroadTrust(cfg, agents.list().map((a) => a.agent), log);
  callbacks.resume();
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
        files?.stop();
        controller.stop();
        await app.stop(true);
        await supervisor.stop();
        callbacks.stop();
        store.close();
      })();
      return stopping;
    },
  };
}
