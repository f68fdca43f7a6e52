/**
 * Everything --kubernetes mode adds, in one module that `pai serve` imports only in that mode (the
 * kubeconfig reader pulls in the YAML library): the connection, the client, the object store on the
 * cluster and the leader election of the controller.
 */
import { hostname } from "node:os";
import type { KubernetesConfig } from "../config/serve";
import { loadKubeConnection } from "../kube/config";
import { createKubeClient, type KubeClient } from "../kube/client";
import { createLeaderElector, type LeaderElector } from "../kube/lease";
import { randomId } from "../lib/crypto";
import type { Logger } from "../lib/log";
import { createKubernetesObjects } from "./kubernetes";
import type { ObjectStore } from "./types";

/** The Lease one replica holds while it runs the controller. */
export const CONTROLLER_LEASE = "pai-controller";

export interface Cluster {
  client: KubeClient;
  objects: ObjectStore;
  /** The leader election of the controller; `onStartedLeading`/`onStoppedLeading` start and stop it. */
  elector(hooks: { onStartedLeading(): void; onStoppedLeading(): void }): LeaderElector;
}

export function connectCluster(k: KubernetesConfig, log: Logger): Cluster {
  const connection = loadKubeConnection({ kubeconfig: k.kubeconfig });
  log.info("agents and secrets are the cluster's", { api: connection.server, from: connection.source, namespaces: k.namespaces?.join(",") ?? "all" });
  const client = createKubeClient(connection);
  return {
    client,
    objects: createKubernetesObjects({ client, log, namespaces: k.namespaces }),
    elector: (hooks) =>
      createLeaderElector({
        client,
        namespace: k.leaseNamespace ?? connection.namespace,
        name: CONTROLLER_LEASE,
        identity: `${hostname()}_${process.pid}_${randomId(4)}`,
        log,
        // client-go's proportions (15 s, 10 s, 2 s by default).
        leaseDurationMs: k.leaseDurationMs,
        renewDeadlineMs: Math.round((k.leaseDurationMs * 2) / 3),
        retryPeriodMs: Math.max(100, Math.round((k.leaseDurationMs * 2) / 15)),
        ...hooks,
      }),
  };
}
