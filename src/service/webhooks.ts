/**
 * Webhook invocation, the product page's contract: check the caller (allowCIDRs, URL token,
 * Linear/GitHub signatures), read the body the way senders send it, start a session (committed
 * before the answer; a retried delivery gets the session it already started), and in wait mode
 * block until the session ends or the wait runs out.
 */
import type { Agent, WebhookTrigger } from "../domain/agent";
import { hasWebhook } from "../domain/agent";
import { BadRequestError, ForbiddenError, NotFoundError, ServiceUnavailableError, UnauthorizedError } from "../domain/errors";
import { webhookSecretName } from "../domain/names";
import { forbiddenEnvNames, isFinal, Phase, type EnvVar, type Session, type SessionOrigin } from "../domain/session";
import { decodeWebhookFields, WEBHOOK_FIELDS } from "../domain/webhook";
import { deliveryId, detectSender, githubTitle, isGitHubPing, linearTimestampProblem, linearTitle, verifyGitHubSignature, verifyLinearSignature, type Sender } from "../domain/senders";
import { parseCidr, type Cidr } from "../lib/cidr";
import { clientIp, ipAllowed } from "../lib/client-ip";
import { safeEqual } from "../lib/crypto";
import { callbackUrlProblem } from "../lib/ssrf";
import type { Logger } from "../lib/log";
import type { ObjectStore } from "../objects/types";
import type { SessionService } from "./sessions";
import { parseBody } from "./webhook-body";
import { sessionKey } from "./topics";

export interface WebhookRequest {
  namespace: string;
  name: string;
  token: string;
  method: "GET" | "POST";
  headers: Headers;
  /**
   * Reads the body's bytes. Called only after the agent, the caller's address and the URL token
   * passed, so an anonymous caller never makes the server hold its body.
   */
  body: () => Promise<Uint8Array>;
  /** The TCP peer's address (asked only when the agent has allowCIDRs). */
  peer: () => string;
  /** Called before blocking in wait mode; returns a signal aborted when the caller hangs up. */
  onWait?: () => AbortSignal | undefined;
  /** Filled in as the request is handled, for the delivery log (src/service/deliveries.ts). */
  facts?: WebhookFacts;
}

/** What the delivery log needs to know of a request beyond its answer. */
export interface WebhookFacts {
  /** The agent exists and has a webhook trigger (requests to anything else are not logged). */
  found: boolean;
  event?: string;
  delivery?: string;
  /** The session started, or the one an earlier delivery with the same id started. */
  session?: string;
}

export type WebhookReply =
  | { ok: true }
  | { session: string; agentDefinition: string }
  | { session: string; agentDefinition: string; response: string | null; phase: string; pollUrl?: string; timedOut?: true };

interface Invocation {
  title?: string;
  waitSeconds: number;
  env: EnvVar[];
  callbackUrl?: string;
  payload?: unknown;
  event?: string;
}

export function createWebhookService(deps: {
  /** Where agents and their secrets are read (pai's database, or a cluster's watch-fed caches). */
  objects: Pick<ObjectStore, "findAgent" | "findSecret">;
  sessions: SessionService;
  log: Logger;
  trustedProxies: Cidr[];
  allowPrivateCallbacks: boolean;
}) {
  const { objects, sessions } = deps;

  function triggerOf(agent: Agent): WebhookTrigger {
    return agent.spec.triggers!.find((t) => t.webhook)!.webhook!;
  }

  /** Resolves a signing secret given as a string or {secretRef: {name, key}}. */
  function resolveSecret(agent: Agent, value: WebhookTrigger["linearSignatureSecret"], field: string): string {
    if (typeof value === "string") return value;
    const ref = value!.secretRef;
    const found = objects.findSecret(agent.metadata.namespace, ref.name)?.data[ref.key];
    if (!found) {
      deps.log.error(`agent ${agent.metadata.namespace}/${agent.metadata.name}: ${field}.secretRef names Secret ${ref.name} key ${ref.key}, which does not exist`);
      throw new ServiceUnavailableError("this agent's signing secret is not configured on the server; its owner must fix it (see the server log)");
    }
    return found;
  }

  /** 404, 403, 401 in that order: unknown agents, addresses outside allowCIDRs, wrong tokens. */
  function authorise(req: WebhookRequest): { agent: Agent; trigger: WebhookTrigger } {
    const agent = objects.findAgent(req.namespace, req.name);
    if (!agent || !hasWebhook(agent.spec)) throw new NotFoundError(`no agent "${req.name}" with a webhook trigger in namespace "${req.namespace}"`);
    if (req.facts) req.facts.found = true;
    const trigger = triggerOf(agent);
    if (trigger.allowCIDRs?.length) {
      const ip = clientIp(req.peer(), req.headers.get("x-forwarded-for"), deps.trustedProxies);
      const allow = trigger.allowCIDRs.map((c) => parseCidr(c)!).filter(Boolean);
      if (!ipAllowed(ip, allow)) throw new ForbiddenError(`requests from ${ip} are not allowed by this agent's allowCIDRs`);
    }
    const expected = objects.findSecret(req.namespace, webhookSecretName(req.name))?.data.token;
    // Compare against a same-length dummy when the secret is missing, so timing says nothing.
    if (!safeEqual(req.token, expected ?? DUMMY_TOKEN) || !expected) throw new UnauthorizedError("invalid webhook token");
    return { agent, trigger };
  }

  /**
   * Requires a valid Linear or GitHub signature when the trigger names a signing secret; returns
   * the verified signature (an HMAC of the body: the same for the same body, whatever the headers).
   */
  function verifySignature(agent: Agent, trigger: WebhookTrigger, req: WebhookRequest, raw: Uint8Array, sender: Sender): string | undefined {
    const linear = trigger.linearSignatureSecret;
    const github = trigger.githubSignatureSecret;
    if (!linear && !github) return undefined;
    if (linear && sender === "linear") {
      const header = req.headers.get("linear-signature");
      if (!verifyLinearSignature(raw, header, resolveSecret(agent, linear, "linearSignatureSecret")))
        throw new UnauthorizedError("missing or invalid Linear-Signature");
      return header!.trim().toLowerCase();
    }
    if (github && sender === "github") {
      const header = req.headers.get("x-hub-signature-256");
      if (!verifyGitHubSignature(raw, header, resolveSecret(agent, github, "githubSignatureSecret")))
        throw new UnauthorizedError("missing or invalid X-Hub-Signature-256");
      return header!.trim().toLowerCase().replace(/^sha256=/, "");
    }
    throw new UnauthorizedError(`this agent accepts only signed ${[linear && "Linear", github && "GitHub"].filter(Boolean).join(" or ")} deliveries`);
  }

  async function invoke(req: WebhookRequest): Promise<WebhookReply> {
    const { agent, trigger } = authorise(req);
    if (req.method === "GET") return { ok: true };
    const raw = await req.body();
    const sender = detectSender(req.headers);
    // Signatures are over the bytes as sent; the text is decoded (by its charset) only afterwards.
    const signature = verifySignature(agent, trigger, req, raw, sender);
    if (sender === "github" && isGitHubPing(req.headers)) return { ok: true };

    const body = parseBody(req.headers.get("content-type"), raw);
    const inv = interpret(sender, req.headers, body);
    if (req.facts && inv.event !== undefined) req.facts.event = inv.event;
    if (sender === "linear" && trigger.linearSignatureSecret) {
      const problem = linearTimestampProblem(body, Date.now());
      if (problem) throw new UnauthorizedError(problem);
    }
    if (inv.env.length) checkEnv(trigger, inv.env); // an empty env has nothing to refuse
    if (inv.callbackUrl) {
      const problem = await callbackUrlProblem(inv.callbackUrl, deps.allowPrivateCallbacks);
      if (problem) throw new BadRequestError(problem);
    }

    const delivery = deliveryId(req.headers);
    if (req.facts && delivery) req.facts.delivery = delivery;
    const ns = agent.metadata.namespace;
    const name = agent.metadata.name;
    const known = (delivery ? await sessions.findDelivery(ns, name, delivery) : undefined) ?? (signature ? await sessions.findDelivery(ns, name, `signature:${signature}`) : undefined);
    // {kind, sender, delivery?, event?}, in that order.
    const origin: SessionOrigin = { kind: "webhook", sender };
    if (delivery) origin.delivery = delivery;
    if (inv.event) origin.event = inv.event;

    const { session } = known
      ? { session: await sessions.get(ns, known) }
      : await sessions.startOnce(agent, {
          title: inv.title ?? `Webhook trigger — ${name}`,
          env: inv.env,
          origin,
          kind: "wh",
          payload: inv.payload,
          callbackUrl: inv.callbackUrl,
          // Checked in the same write as the insert, so concurrent deliveries cannot overshoot it.
          maxPending: trigger.maxPending,
          // A signed body replayed (within Linear's 60 s, or any time for GitHub) under a new delivery id or event name starts nothing new.
          signature,
        });
    if (req.facts) req.facts.session = session.name;
    const base = { session: session.name, agentDefinition: session.agentDefinition };
    if (!inv.waitSeconds) return base;
    // The session is committed: whatever happens while waiting, the caller learns its name, never a 500.
    try {
      return await waitReply(session, inv.waitSeconds, req.onWait?.());
    } catch (err) {
      deps.log.error("failed to wait for session", { session: `${ns}/${session.name}`, error: (err as Error)?.message });
      return timedOut(session, Phase.Running);
    }
  }

  async function waitReply(session: Session, seconds: number, signal?: AbortSignal): Promise<WebhookReply> {
    const ended = await waitForEnd(session, seconds * 1000, signal);
    if (ended) return { session: session.name, agentDefinition: session.agentDefinition, response: ended.response, phase: ended.phase };
    // Still queued behind other sessions, or running: say which.
    const now = await sessions.find(session.namespace, session.name);
    return timedOut(session, now?.phase === Phase.Pending ? Phase.Pending : Phase.Running);
  }

  function timedOut(session: Session, phase: Phase): WebhookReply {
    return {
      session: session.name,
      agentDefinition: session.agentDefinition,
      response: null,
      phase,
      pollUrl: `/agents/${session.name}/events?event_type=agent.message&namespace=${session.namespace}`,
      timedOut: true,
    };
  }

  /** The ended session, or null when the wait ran out or the caller went away (the session runs on). */
  function waitForEnd(s: Session, ms: number, signal?: AbortSignal): Promise<Session | null> {
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = (v: Session | null) => {
        off();
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        resolve(v);
      };
      const onAbort = () => done(null);
      const off = sessions.topics.sessionEnded.subscribeKey(sessionKey(s.namespace, s.name), (ended) => done(ended));
      timer = setTimeout(() => done(null), ms);
      signal?.addEventListener("abort", onAbort);
      // Subscribed first, then checked: an end in between is not missed.
      const check = (now: Session) => {
        if (isFinal(now.phase)) done(now);
      };
      const now = sessions.get(s.namespace, s.name);
      if (now instanceof Promise)
        now.then(check, (err) => {
          off();
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          reject(err);
        });
      else check(now);
    });
  }

  function checkEnv(trigger: WebhookTrigger, env: EnvVar[]) {
    const forbidden = forbiddenEnvNames(env);
    if (forbidden.length) throw new BadRequestError(`env: these variables may not be set by a webhook caller: ${forbidden.join(", ")}`);
    if (trigger.allowedEnv) {
      const allowed = new Set(trigger.allowedEnv);
      const extra = env.map((e) => e.name).filter((n) => !allowed.has(n));
      if (extra.length)
        throw new BadRequestError(`env: ${extra.join(", ")} ${extra.length > 1 ? "are" : "is"} not in this agent's allowedEnv (${trigger.allowedEnv.join(", ") || "none"})`);
    }
  }

  return { invoke };
}

export type WebhookService = ReturnType<typeof createWebhookService>;

const DUMMY_TOKEN = "0".repeat(64);

/** Turns a parsed body into what to run: Linear and GitHub events get a title; other bodies are checked against WebhookBody. */
function interpret(sender: Sender, headers: Headers, body: unknown): Invocation {
  if (sender === "linear") {
    // The event name is the sender's to choose: kept only when it is a plain string.
    const type = (body as { type?: unknown } | null)?.type;
    return { title: linearTitle(body), waitSeconds: 0, env: [], payload: body, event: typeof type === "string" ? type.slice(0, 100) : undefined };
  }
  if (sender === "github") {
    const event = headers.get("x-github-event") ?? "event";
    return { title: githubTitle(event, body), waitSeconds: 0, env: [], payload: body, event };
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) return { waitSeconds: 0, env: [], payload: body };
  const fields = decodeWebhookFields(body as Record<string, unknown>);
  // A body with fields of its own is an event: keep it for the agent as webhook.json, without the
  // env values (they may be secrets, which the API itself never shows).
  const foreign = Object.keys(body).some((k) => !WEBHOOK_FIELDS.has(k));
  if (!foreign) return { title: fields.title, waitSeconds: fields.waitSeconds, env: fields.env, callbackUrl: fields.callbackUrl, payload: undefined };
  const { env: _env, ...rest } = body as Record<string, unknown>;
  return { ...fields, payload: rest };
}
