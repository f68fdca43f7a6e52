/**
 * Rows as Bun's Postgres driver returns them (snake_case columns, JSON documents as TEXT, `bigint`
 * as strings) turned into the domain's shapes. Session conversion must agree with `rowToSession`
 * in ../sessions.ts, so a session reads the same from either store.
 */
import type { Session, SessionEvent } from "../../domain/session";
import type { AgentSpec } from "../../domain/agent";
import type { TokenRow } from "../tokens";

/** A `sessions` row (`SELECT *`). */
export interface PgSessionRow {
  namespace: string;
  name: string;
  uid: string;
  agent_definition: string;
  generation: number;
  spec: string;
  title: string;
  env: string;
  origin: string;
  phase: string;
  response: string | null;
  error: string | null;
  payload: string | null;
  callback_url: string | null;
  callback_state: string | null;
  /** int8: a string from the driver. */
  seq: string | number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  usage: string | null;
  owner: string | null;
}

export interface PgEventRow {
  id: number;
  type: string;
  content: string;
  timestamp: string;
}

export interface PgTokenRow {
  id: string;
  namespace: string | null;
  name: string;
  hash: string;
  created_at: string;
}

export function rowToSession(r: PgSessionRow): Session {
  return {
    name: r.name,
    namespace: r.namespace,
    uid: r.uid,
    agentDefinition: r.agent_definition,
    generation: r.generation,
    spec: JSON.parse(r.spec) as AgentSpec,
    title: r.title,
    env: JSON.parse(r.env) as Session["env"],
    origin: JSON.parse(r.origin) as Session["origin"],
    phase: r.phase as Session["phase"],
    response: r.response,
    error: r.error,
    // As ../sessions.ts reads it: no payload, SQL NULL or a JSON null, is undefined.
    payload: (r.payload === null ? null : JSON.parse(r.payload)) ?? undefined,
    callbackUrl: r.callback_url,
    callbackState: r.callback_state as Session["callbackState"],
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    usage: r.usage === null ? null : ((JSON.parse(r.usage) as Session["usage"]) ?? null),
  };
}

export const rowToEvent = (r: PgEventRow): SessionEvent => ({ id: r.id, type: r.type, content: JSON.parse(r.content), timestamp: r.timestamp });

export const rowToToken = (r: PgTokenRow): TokenRow => ({ id: r.id, namespace: r.namespace, name: r.name, hash: r.hash, createdAt: r.created_at });

/** An int8 (or count) as the driver returns it: a string, or a number when it fits int4. */
export const num = (v: string | number | bigint | null | undefined): number => (v === null || v === undefined ? 0 : Number(v));
