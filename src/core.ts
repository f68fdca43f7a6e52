/**
 * The server without HTTP: the store, the topics, the services, the supervisor, the callbacks, the
 * controller and the manifests folder, wired as `pai serve` runs them. `src/server.ts` puts the
 * API in front of it; benchmarks and tests use it as it is instead of rebuilding the wiring.
 */
import { join, resolve } from "node:path";
import type { ServeConfig } from "./config/serve";
import { createController } from "./controller/controller";
import { DEFAULT_NAMESPACE } from "./domain/names";
import type { Logger } from "./lib/log";
import { Metrics } from "./lib/metrics";
import { selfCommand } from "./lib/self";
import { createAgentService } from "./service/agents";
import { createCallbackService } from "./service/callbacks";
import { createSecretService } from "./service/secrets";
import { createRetentionService } from "./service/retention";
import { createSessionFileService } from "./service/session-files";
import { createRetentionRepo } from "./store/retention";
import { createSessionService } from "./service/sessions";
import { createTokenService } from "./service/tokens";
import { createTopics } from "./service/topics";
import { createWebhookService } from "./service/webhooks";
import { createWatchService } from "./service/watch";
import { createStore } from "./store";
import { createNamespaceService } from "./service/namespaces";
import { createLocalObjects } from "./objects/local";
import { clusterAgentView, clusterSecretView } from "./objects/views";
import type { ObjectStore } from "./objects/types";
import type { Cluster } from "./objects/cluster";
import type { LeaderElector } from "./kube/lease";
import type { SharedDatabase } from "./replicas";
import { createPgSessionService } from "./service/sessions-pg";
import { createPgTokenService } from "./service/tokens-pg";
import type { SessionService } from "./service/sessions";
import type { TokenService } from "./service/tokens";
import { createPostgresObjects } from "./objects/postgres";
import { createPgLeader } from "./objects/pg-leader";
import { createPgRetentionService } from "./service/retention-pg";
import { createDeliveryLog } from "./service/deliveries";
import { createDeliveryRepo } from "./store/deliveries";
import { createPgDeliveryRepo } from "./store/pg/deliveries";
import { createPgRevisionFeed } from "./objects/pg-revisions";
import { createOverview } from "./service/overview";
import type { ModelCredentials } from "./harness/protocol";
import { credentialsFrom } from "./supervisor/env";
import { createSupervisor } from "./supervisor/supervisor";

export type CoreConfig = Pick<ServeConfig, "dataDir" | "maxSessions" | "trustedProxies" | "allowPrivateCallbacks"> &
  Partial<Pick<ServeConfig, "maxPending" | "sessionNice" | "warmProcesses" | "callbackBackoffMs" | "manifests" | "writeStatus" | "allowUnsandboxedTools" | "sandboxReadOnly" | "sessionRetentionMs" | "retentionIntervalMs" | "kubernetes" | "controller">>;

export interface CoreOptions {
  /** argv that starts this program (`harness` is appended); default: this very program. */
  command?: string[];
  /** The environment children inherit (minus secrets) and model settings come from; default process.env. */
  env?: Record<string, string | undefined>;
  credentials?: ModelCredentials;
  /** The clock retention measures session age by (epoch ms); default Date.now. */
  now?: () => number;
  /** --kubernetes mode: the cluster whose agents and secrets these are (src/objects/cluster.ts). */
  cluster?: Cluster;
  /** --database mode: the Postgres replicas share sessions, events and access tokens in (src/replicas.ts). */
  database?: SharedDatabase;
}

export function createCore(cfg: CoreConfig, log: Logger, opts: CoreOptions = {}) {
  const env = opts.env ?? process.env;
  const store = createStore(cfg.dataDir);
  const topics = createTopics(log);
  const localAgents = createAgentService({ store, topics });
  const localSecrets = createSecretService({ store, topics });
  // In a cluster, agents and secrets are the cluster's; pai's API reads agents from its caches.
  // Without one, replicas on Postgres keep them there (cached by each replica).
  const kube = opts.cluster;
  const db = opts.database;
  const pgObjects = db && !kube ? createPostgresObjects({ sql: db.sql, repo: db.repo, topics, log, replicaId: db.replicaId }) : undefined;
  const agents = kube ? clusterAgentView(kube.objects) : (pgObjects?.agents ?? localAgents);
  const secrets = kube ? clusterSecretView() : (pgObjects?.secrets ?? localSecrets);
  const objects: ObjectStore = kube?.objects ?? createLocalObjects({ agents, secrets, topics });
  const pgTokens = db ? createPgTokenService({ repo: db.repo, log }) : undefined;
  const tokens: TokenService = pgTokens ?? createTokenService({ store });
  // Watches read the revision log: SQLite's, or, on Postgres, this replica's copy of it.
  const pgRevisions = pgObjects ? createPgRevisionFeed({ sql: db!.sql, log }) : undefined;
  const watch = createWatchService({ store: pgRevisions ? { revisions: pgRevisions } : store });
  // On Postgres, the namespaces of the shared agents and secrets (sessions live in an agent's namespace).
  const namespaces = createNamespaceService({ store: pgObjects && pgRevisions ? { namespaces: pgObjects.namespaces, revisions: pgRevisions } : store });
  const pgSessions = db ? createPgSessionService({ repo: db.repo, log, replicaId: db.replicaId, topics, maxPending: cfg.maxPending, leaseMs: db.replicaLeaseMs }) : undefined;
  const sessions: SessionService = pgSessions ?? createSessionService({ store, log, topics, maxPending: cfg.maxPending });
  const supervisor = createSupervisor({
    sessions,
    ...(pgSessions ? { work: pgSessions.work, cancelElsewhere: pgSessions.cancelElsewhere } : {}),
    log,
    maxSessions: cfg.maxSessions,
    command: opts.command ?? selfCommand(),
    baseEnv: env,
    credentials: opts.credentials ?? credentialsFrom(env),
    workDir: join(cfg.dataDir, "sessions"),
    sessionNice: cfg.sessionNice,
    warmChildren: cfg.warmProcesses,
    onChildStart: (how) => processStarted({ start: how }),
    // Tool processes never see the data dir (pai.db, tokens, other sessions' folders).
    tools: { allowUnsandboxed: !!cfg.allowUnsandboxedTools, allowPrivateFetch: cfg.allowPrivateCallbacks, hidden: [resolve(cfg.dataDir)], readOnly: cfg.sandboxReadOnly ?? [] },
    secretValue: (namespace, name, key) => objects.findSecret(namespace, name)?.data[key],
  });
  const webhooks = createWebhookService({ objects, sessions, log, trustedProxies: cfg.trustedProxies, allowPrivateCallbacks: cfg.allowPrivateCallbacks });
  const callbacks = createCallbackService({ sessions, objects, log, allowPrivate: cfg.allowPrivateCallbacks, backoffMs: cfg.callbackBackoffMs });
  topics.sessionEnded.subscribe((s) => callbacks.enqueue(s));
  const sessionFiles = createSessionFileService({
    sessions,
    workDir: join(cfg.dataDir, "sessions"),
    ...(db ? { ranElsewhere: async (ns: string, name: string) => ((o) => (o && o !== db.replicaId ? o : undefined))(await db.repo.ownerOf(ns, name)) } : {}),
  });
  // Webhook answers (src/api/webhooks.ts records them), in the shared database with replicas.
  const deliveries = createDeliveryLog({ repo: db ? createPgDeliveryRepo(db.sql) : createDeliveryRepo(store.db, store.tx), log });
  // Without a setting (tests, benchmarks), sessions are kept.
  const retention = db
    ? createPgRetentionService({ repo: db.repo, replicaId: db.replicaId, leaseMs: db.replicaLeaseMs, workDir: join(cfg.dataDir, "sessions"), log, retentionMs: cfg.sessionRetentionMs ?? 0, intervalMs: cfg.retentionIntervalMs, now: opts.now, deliveries })
    : createRetentionService({ tx: store.tx, repo: createRetentionRepo(store.db), workDir: join(cfg.dataDir, "sessions"), log, retentionMs: cfg.sessionRetentionMs ?? 0, intervalMs: cfg.retentionIntervalMs, now: opts.now, deliveries });

  const metrics = new Metrics();
  const started = metrics.counter("pai_sessions_started_total", "Sessions started (webhooks, pai run, the API).").with();
  const finished = metrics.counter("pai_sessions_finished_total", "Sessions ended, by final phase.");
  topics.sessionStarted.subscribe(() => started());
  const processStarted = metrics.counter(
    "pai_session_processes_total",
    "Processes handed a session, by how they were started: cold (spawned for the session), warm (started ahead of demand), reused (kept by an agent with spec.harness.reuse). A waiting process that died before it took its session is followed by a cold one for the same session.",
  );
  topics.sessionEnded.subscribe((s) => finished({ phase: s.phase }));
  metrics.gauge("pai_sessions_running", "Sessions running now.", () => supervisor.stats().running);
  metrics.gauge("pai_sessions_pending", "Sessions waiting for a slot.", () => supervisor.stats().queued);
  metrics.gauge("pai_agents", "Agents in the store.", () => agents.list().length);
  metrics.gauge("pai_store_checkpoints", "WAL checkpoints run by the store's checkpoint thread since start (0 without one: SQLite checkpoints on the writer).", () => store.checkpointer?.stats().runs ?? 0);
  metrics.gauge("pai_store_wal_frames", "Frames in the store's write-ahead log at the last checkpoint (kept small by the checkpoint thread).", () => store.checkpointer?.stats().walFrames ?? 0);
  metrics.gauge("process_resident_memory_bytes", "Resident memory of the server process.", () => process.memoryUsage.rss());
  const overview = createOverview({ metrics, running: () => supervisor.stats().running, pending: () => supervisor.stats().queued });

  let controller: ReturnType<typeof createController> | undefined;
  let files: { stop(): void } | undefined;
  let elector: LeaderElector | undefined;

  return {
    store,
    topics,
    agents,
    secrets,
    /** Agents and secrets as the controller and the webhook path read them. */
    objects,
    tokens,
    sessions,
    namespaces,
    supervisor,
    webhooks,
    callbacks,
    sessionFiles,
    retention,
    deliveries,
    metrics,
    /** The last hour per minute, from the metrics (the console's overview). */
    overview,
    /** Watches of agents and secrets from the store's revision log (in a cluster, the API serves none: watch the cluster). */
    watch,
    /** The leader election of replicas (--kubernetes or --database; undefined otherwise, or before start). */
    leader: () => elector,
    /**
     * Starts the controller (webhook URLs under `publicUrl`) and the manifests folder, waits until
     * every agent is reconciled, then runs the sessions and callbacks left from before.
     */
    async start(publicUrl: string) {
      await pgObjects?.open();
      if (pgRevisions) {
        await pgRevisions.open();
        // Every change this replica hears of (its own writes, other replicas' notifications) is in the log by then.
        topics.changes.subscribe(() => void pgRevisions.poll());
      }
      await objects.start();
      // The manifests watcher (and the YAML library) is loaded only when there is a folder to watch.
      const fileSource = cfg.manifests
        ? (await import("./controller/sources/file")).createFileSource({ dir: cfg.manifests, agents, topics, log, defaultNamespace: DEFAULT_NAMESPACE, writeStatus: cfg.writeStatus })
        : undefined;
      const startFiles = () => {
        files = fileSource;
        return fileSource?.start().catch((err) => log.error("failed to apply the manifests folder", { dir: cfg.manifests, error: (err as Error).message }));
      };
      // Replicas: every one serves webhooks from its caches; one at a time reconciles (and applies the manifests folder).
      const hooks = {
        onStartedLeading: () => {
          log.info("leading: this replica runs the controller");
          controller = createController({ objects, log, publicUrl });
          controller.start();
          void startFiles();
        },
        onStoppedLeading: () => {
          log.info("no longer leading: the controller stops here");
          fileSource?.stop();
          files = undefined;
          controller?.stop();
          controller = undefined;
        },
      };
      if (kube || db) {
        // In a cluster, the Lease pai-controller; on Postgres alone, an advisory lock.
        elector = kube ? kube.elector(hooks) : createPgLeader({ sql: db!.sql, log, retryMs: Math.max(100, Math.round(db!.replicaLeaseMs / 5)), ...hooks });
        elector.start();
      } else {
        if (cfg.controller !== false) {
          controller = createController({ objects, log, publicUrl });
          controller.start();
        } else log.info("the controller is off (--no-controller): no webhook tokens or status are written by this server");
        await startFiles();
      }
      await controller?.idle();
      if (pgSessions) {
        await pgTokens!.open();
        await pgSessions.open();
        // Another replica was asked to cancel a session: the one running it does.
        pgSessions.onAdoptedCallback((s) => callbacks.enqueue(s));
        pgSessions.onCancelRequest((namespace, name) => {
          if (supervisor.runsHere(namespace, name)) supervisor.cancel(namespace, name).catch((err) => log.warn("failed to cancel on request", { session: `${namespace}/${name}`, error: (err as Error).message }));
        });
      }
      await supervisor.start();
      await callbacks.resume();
      retention.start();
    },
    /** Stops the sources and the controller, then every session (they end Error), then the callbacks, and closes the store. */
    async stop() {
      files?.stop();
      // Gives the Lease back, so another replica takes over at once.
      await elector?.stop();
      controller?.stop();
      objects.stop();
      await supervisor.stop();
      // Attempts on the way record their outcome, and what they recorded is committed, before the store closes.
      await callbacks.stop();
      await retention.stop();
      await deliveries.stop();
      overview.stop();
      await sessions.flush();
      if (db) {
        await pgSessions!.close();
        await pgTokens!.close();
        await pgObjects?.close();
        pgRevisions?.close();
        await db.repo.close();
      }
      store.close();
    },
  };
}

export type Core = ReturnType<typeof createCore>;
