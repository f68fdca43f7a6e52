/**
 * Callbacks: when a webhook session that asked for one (`callbackUrl`) ends, POST
 * `{session, agentDefinition, response, phase}` there, signed with Standard Webhooks headers and the
 * agent's `callbackSecret` (kept in its webhook Secret). Retried with exponential backoff; each
 * attempt is recorded as a `session.callback` event. Undelivered callbacks resume after a restart.
 * Every attempt goes through safeFetch: resolved and checked once, connected to the checked address,
 * redirects not followed.
 */
import { CallbackState, EventType, type Session } from "../domain/session";
import { webhookSecretName } from "../domain/names";
import { safeFetch } from "../lib/safe-fetch";
import { callbackUrlSyntaxProblem, SsrfError, type Resolver } from "../lib/ssrf";
import { signatureHeaders } from "../lib/standard-webhooks";
import type { Logger } from "../lib/log";
import type { ObjectStore } from "../objects/types";
import type { SessionService } from "./sessions";

export interface CallbackDeps {
  sessions: SessionService;
  /** Where the agent's webhook Secret (its callbackSecret signs callbacks) is read. */
  objects: Pick<ObjectStore, "findSecret">;
  log: Logger;
  allowPrivate: boolean;
  /** Delays before attempts 2, 3, …; its length + 1 is the number of attempts. */
  backoffMs?: number[];
  timeoutMs?: number;
  /** The resolver and address rule; defaults are the system resolver and public addresses only. */
  resolve?: Resolver;
  addressProblem?: (ip: string) => string | null;
}

export const DEFAULT_BACKOFF_MS = [1_000, 5_000, 30_000, 120_000, 600_000];

export function callbackBody(s: Session) {
  return { session: s.name, agentDefinition: s.agentDefinition, response: s.response, phase: s.phase };
}

export function createCallbackService(deps: CallbackDeps) {
  const { sessions, objects, log } = deps;
  const backoff = deps.backoffMs ?? DEFAULT_BACKOFF_MS;
  const inFlight = new Set<Promise<void>>();
  /** Attempts whose POST is on the way: a stop waits for them, so an answer received is recorded. */
  const exchanges = new Set<Promise<unknown>>();
  let stopped = false;

  /** One POST: `delivered`, `refused` (retrying cannot help) or `retry`. */
  async function attempt(s: Session, url: string, body: string, n: number): Promise<"delivered" | "refused" | "retry"> {
    const record = (content: Record<string, unknown>) => sessions.appendEvent(s.namespace, s.name, EventType.Callback, { url, attempt: n, ...content });
    const problem = callbackUrlSyntaxProblem(url);
    if (problem) {
      record({ error: problem });
      return "refused";
    }
    const secret = objects.findSecret(s.namespace, webhookSecretName(s.agentDefinition))?.data.callbackSecret;
    if (!secret) {
      record({ error: "the agent has no callback signing secret (its webhook trigger was removed)" });
      return "refused";
    }
    try {
      const res = await safeFetch(
        url,
        {
          method: "POST",
          headers: { ...signatureHeaders(secret, `${s.uid}`, body), "user-agent": "pai-webhooks" },
          body,
          signal: AbortSignal.timeout(deps.timeoutMs ?? 10_000),
        },
        { allowPrivate: deps.allowPrivate, resolve: deps.resolve, addressProblem: deps.addressProblem },
      );
      await res.arrayBuffer().catch(() => undefined);
      // A 3xx is not followed (it could point anywhere) and counts as a failed attempt.
      record({ status: res.status });
      return res.status >= 200 && res.status < 300 ? "delivered" : "retry";
    } catch (err) {
      // A forbidden address stays forbidden; a name that does not resolve now may resolve later.
      if (err instanceof SsrfError) {
        record({ error: `callbackUrl ${err.message}` });
        return "refused";
      }
      record({ error: (err as Error).message });
      return "retry";
    }
  }

  async function deliver(s: Session) {
    const url = s.callbackUrl;
    if (!url) return;
    const body = JSON.stringify(callbackBody(s));
    for (let n = 1; n <= backoff.length + 1 && !stopped; n++) {
      const exchange = attempt(s, url, body, n);
      exchanges.add(exchange);
      exchange.finally(() => exchanges.delete(exchange)).catch(() => {});
      const outcome = await exchange;
      if (outcome !== "retry") {
        await sessions.setCallbackState(s, outcome === "delivered" ? CallbackState.Delivered : CallbackState.Failed);
        return;
      }
      if (n <= backoff.length) await Bun.sleep(backoff[n - 1]!);
    }
    if (!stopped) {
      await sessions.setCallbackState(s, CallbackState.Failed);
      log.warn("gave up delivering callback", { session: `${s.namespace}/${s.name}` });
    }
  }

  function enqueue(s: Session) {
    if (!s.callbackUrl || stopped) return;
    const p = deliver(s).catch((err) => log.error("callback delivery failed", { session: `${s.namespace}/${s.name}`, error: (err as Error).message }));
    inFlight.add(p);
    p.finally(() => inFlight.delete(p));
  }

  return {
    enqueue,
    /** Resumes callbacks a previous process did not finish. */
    async resume() {
      for (const s of await sessions.pendingCallbacks()) enqueue(s);
    },
    /**
     * No new attempt starts; resolves once the attempts on the way have recorded their outcome
     * (at most `graceMs`), so a stop right after a receiver answered does not lose that answer.
     */
    async stop(graceMs = 2000) {
      stopped = true;
      if (!exchanges.size) return;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([Promise.allSettled([...exchanges]), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    },
    idle: () => Promise.allSettled([...inFlight]),
  };
}

export type CallbackService = ReturnType<typeof createCallbackService>;
