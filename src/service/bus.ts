/** In-process change notifications: the store's writers publish, the controller and sources listen. */
import { EventEmitter } from "node:events";

export interface Changes {
  /** An agent was created, updated or deleted. */
  agent: [namespace: string, name: string];
  /** An agent's status changed (written by the controller). */
  agentStatus: [namespace: string, name: string];
  /** A secret was created, replaced or deleted. */
  secret: [namespace: string, name: string];
}

export class Bus extends EventEmitter<Changes> {}
