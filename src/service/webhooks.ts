/**
 * Webhook invocation, the product page's contract: check the caller (allowCIDRs, URL token,
 * Linear/GitHub signatures), read the body the way senders send it, start a session (committed
 * before the answer; a retried delivery gets the session it already started), and in wait mode
 * block until the session ends or the wait runs out.
 */
import type { Agent, WebhookTrigger } from "../domain/agent";
import { hasWebhook } from "../domain/agent";
import { BadRequestError, ForbiddenError, NotFoundError, ServiceUnavailableError, TooManyRequestsError, UnauthorizedError, UnsupportedMediaTypeError } from "../domain/errors";
import { webhookSecretName } from "../domain/names";
import { forbiddenEnvNames, isFinal, Phase, type EnvVar, type Session } from "../domain/session";
import { deliveryId, detectSender, githubTitle, isGitHubPing, linearTimestampProblem, linearTitle, verifyGitHubSignature, verifyLinearSignature, type Sender } from "../domain/senders";
import { parseCidr, type Cidr } from "../lib/cidr";
import { clientIp, ipAllowed } from "../lib/client-ip";
import { safeEqual } from "../lib/crypto";
import { callbackUrlProblem } from "../lib/ssrf";
import type { Logger } from "../lib/log";
import type { AgentService } from "./agents";
import type { SecretService } from "./secrets";
import type { SessionService } from "./sessions";

export const DEFAULT_WAIT_SECONDS = 300;
export const MAX_WAIT_SECONDS = 600;
export const RETRY_AFTER_SECONDS = 10;


export interface WebhookRequest {
  namespace: string;
  name: string;
  token: string;
  method: "GET" | "POST";
  headers: Headers;
  body: string;
  /** The TCP peer's address (asked only when the agent has allowCIDRs). */
  peer: () => string;
  /** Called before blocking in wait mode; returns a signal aborted when the caller hangs up. */
  onWait?: () => AbortSignal | undefined;
}

export type WebhookReply =
  | { ok: true }
  | { session: string; agentDefinition: string }
  | { session: string; agentDefinition: string; response: string | null; phase: string; pollUrl?: string; timedOut?: true };

/** What a Pai request body may hold; everything else is the sender's own event. */
const PAI_FIELDS = new Set(["title", "wait", "env", "callbackUrl"]);

interface Invocation {
  title?: string;
  waitSeconds: number;
  env: EnvVar[];
  callbackUrl?: string;
  payload?: unknown;
  event?: string;
}

export function createWebhookService(deps: {
  agents: AgentService;
  secrets: SecretService;
  sessions: SessionService;
  log: Logger;
  trustedProxies: Cidr[];
  allowPrivateCallbacks: boolean;
}) {
  const { agents, secrets, sessions } = deps;

  function triggerOf(agent: Agent): WebhookTrigger {
    return agent.spec.triggers!.find((t) => t.webhook)!.webhook!;
  }

  /** Resolves a signing secret given as a string or {secretRef: {name, key}}. */
  function resolveSecret(agent: Agent, value: WebhookTrigger["linearSignatureSecret"], field: string): string {
    if (typeof value === "string") return value;
    const ref = value!.secretRef;
    const found = secrets.find(agent.metadata.namespace, ref.name)?.data[ref.key];
    if (!found) {
      deps.log.error(`agent ${agent.metadata.namespace}/${agent.metadata.name}: ${field}.secretRef names Secret ${ref.name} key ${ref.key}, which does not exist`);
      throw new ServiceUnavailableError("this agent's signing secret is not configured on the server; its owner must fix it (see the server log)");
    }
    return found;
  }

  /** 404, 403, 401 in that order: unknown agents, addresses outside allowCIDRs, wrong tokens. */
  function authorise(req: WebhookRequest): { agent: Agent; trigger: WebhookTrigger } {
    const agent = agents.find(req.namespace, req.name)?.agent;
    if (!agent || !hasWebhook(agent.spec)) throw new NotFoundError(`no agent "${req.name}" with a webhook trigger in namespace "${req.namespace}"`);
    const trigger = triggerOf(agent);
    if (trigger.allowCIDRs?.length) {
      const ip = clientIp(req.peer(), req.headers.get("x-forwarded-for"), deps.trustedProxies);
      const allow = trigger.allowCIDRs.map((c) => parseCidr(c)!).filter(Boolean);
      if (!ipAllowed(ip, allow)) throw new ForbiddenError(`requests from ${ip} are not allowed by this agent's allowCIDRs`);
    }
    const expected = secrets.find(req.namespace, webhookSecretName(req.name))?.data.token;
    // Compare against a same-length dummy when the secret is missing, so timing says nothing.
    if (!safeEqual(req.token, expected ?? "0".repeat(64)) || !expected) throw new UnauthorizedError("invalid webhook token");
    return { agent, trigger };
  }

  /** Requires a valid Linear or GitHub signature when the trigger names a signing secret. */
  function verifySignature(agent: Agent, trigger: WebhookTrigger, req: WebhookRequest, sender: Sender) {
    const linear = trigger.linearSignatureSecret;
    const github = trigger.githubSignatureSecret;
    if (!linear && !github) return;
    if (linear && sender === "linear") {
      if (!verifyLinearSignature(req.body, req.headers.get("linear-signature"), resolveSecret(agent, linear, "linearSignatureSecret")))
        throw new UnauthorizedError("missing or invalid Linear-Signature");
      return;
    }
    if (github && sender === "github") {
      if (!verifyGitHubSignature(req.body, req.headers.get("x-hub-signature-256"), resolveSecret(agent, github, "githubSignatureSecret")))
        throw new UnauthorizedError("missing or invalid X-Hub-Signature-256");
      return;
    }
    throw new UnauthorizedError(`this agent accepts only signed ${[linear && "Linear", github && "GitHub"].filter(Boolean).join(" or ")} deliveries`);
  }

  async function invoke(req: WebhookRequest): Promise<WebhookReply> {
    const { agent, trigger } = authorise(req);
    if (req.method === "GET") return { ok: true };
    const sender = detectSender(req.headers);
    verifySignature(agent, trigger, req, sender);
    if (sender === "github" && isGitHubPing(req.headers)) return { ok: true };

    const body = parseBody(req.headers.get("content-type"), req.body);
    const inv = interpret(agent, sender, req.headers, body);
    if (sender === "linear" && trigger.linearSignatureSecret) {
      const problem = linearTimestampProblem(body, Date.now());
      if (problem) throw new UnauthorizedError(problem);
    }
    checkEnv(trigger, inv.env);
    if (inv.callbackUrl) {
      const problem = await callbackUrlProblem(inv.callbackUrl, deps.allowPrivateCallbacks);
      if (problem) throw new BadRequestError(problem);
    }

    const delivery = deliveryId(req.headers);
    const ns = agent.metadata.namespace;
    const name = agent.metadata.name;
    const known = delivery ? sessions.findDelivery(ns, name, delivery) : undefined;
    if (!known && trigger.maxPending && sessions.pendingCount(ns, name) >= trigger.maxPending)
      throw new TooManyRequestsError(`agent "${name}" already has ${trigger.maxPending} sessions waiting to run (maxPending); retry later`, RETRY_AFTER_SECONDS);

    const { session } = known
      ? { session: sessions.get(ns, known) }
      : await sessions.startOnce(agent, {
          title: inv.title ?? `Webhook trigger — ${name}`,
          env: inv.env,
          origin: { kind: "webhook", sender, ...(delivery ? { delivery } : {}), ...(inv.event ? { event: inv.event } : {}) },
          kind: "wh",
          payload: inv.payload,
          callbackUrl: inv.callbackUrl,
        });
    const base = { session: session.name, agentDefinition: session.agentDefinition };
    if (!inv.waitSeconds) return base;
    return waitReply(session, inv.waitSeconds, req.onWait?.());
  }

  async function waitReply(session: Session, seconds: number, signal?: AbortSignal): Promise<WebhookReply> {
    const ended = await waitForEnd(session, seconds * 1000, signal);
    const base = { session: session.name, agentDefinition: session.agentDefinition };
    if (ended) return { ...base, response: ended.response, phase: ended.phase };
    return {
      ...base,
      response: null,
      phase: Phase.Running,
      pollUrl: `/agents/${session.name}/events?event_type=agent.message&namespace=${session.namespace}`,
      timedOut: true,
    };
  }

  /** The ended session, or null when the wait ran out or the caller went away (the session runs on). */
  function waitForEnd(s: Session, ms: number, signal?: AbortSignal): Promise<Session | null> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = (v: Session | null) => {
        off();
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        resolve(v);
      };
      const onAbort = () => done(null);
      const off = sessions.feed.onClosed(s.namespace, s.name, (ended) => done(ended));
      // Subscribed first, then checked: an end in between is not missed.
      const now = sessions.get(s.namespace, s.name);
      if (isFinal(now.phase)) return done(now);
      timer = setTimeout(() => done(null), ms);
      signal?.addEventListener("abort", onAbort);
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

/** Reads a body the way senders send it: JSON (any charset, +json types), forms, or nothing. */
export function parseBody(contentType: string | null, raw: string): unknown {
  const type = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  const text = raw.trim();
  if (!text) return {};
  const json = () => {
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new BadRequestError(`request body is not valid JSON: ${(err as Error).message}`);
    }
  };
  if (type === "application/json" || type.endsWith("+json") || type === "text/json") return json();
  if (type === "application/x-www-form-urlencoded") {
    // `curl -d '{"title": …}'` without -H sends JSON labelled as a form: read it as the JSON it is.
    if (text.startsWith("{") || text.startsWith("[")) return json();
    const form = new URLSearchParams(text);
    // GitHub's "application/x-www-form-urlencoded" deliveries carry the JSON event in `payload`.
    const payload = form.get("payload");
    if (payload !== null && [...form.keys()].length === 1) {
      try {
        return JSON.parse(payload);
      } catch (err) {
        throw new BadRequestError(`form field payload is not valid JSON: ${(err as Error).message}`);
      }
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of form) {
      if (k === "wait") out[k] = /^\d+$/.test(v) ? Number(v) : v === "true" ? true : v === "false" || v === "" ? false : v;
      else if (k === "env") {
        try {
          out[k] = JSON.parse(v);
        } catch {
          throw new BadRequestError('form field env must be JSON: [{"name": …, "value": …}]');
        }
      } else out[k] = v;
    }
    return out;
  }
  if (type === "" || type === "text/plain") return json();
  throw new UnsupportedMediaTypeError(`Content-Type ${type} is not supported: send application/json or application/x-www-form-urlencoded`);
}

/** Turns a parsed body into what to run, validating Pai's own fields. */
function interpret(agent: Agent, sender: Sender, headers: Headers, body: unknown): Invocation {
  if (sender === "linear") return { title: linearTitle(body), waitSeconds: 0, env: [], payload: body, event: (body as { type?: string })?.type };
  if (sender === "github") {
    const event = headers.get("x-github-event") ?? "event";
    return { title: githubTitle(event, body), waitSeconds: 0, env: [], payload: body, event };
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) return { waitSeconds: 0, env: [], payload: body };
  const b = body as Record<string, unknown>;
  if (b.title !== undefined && b.title !== null && typeof b.title !== "string") throw new BadRequestError("title must be a string");
  const title = typeof b.title === "string" && b.title.trim() ? b.title : undefined;
  const waitSeconds = parseWait(b.wait);
  if (waitSeconds && !title) throw new BadRequestError("wait requires title: without a prompt the agent has nothing to do");
  const env = parseEnv(b.env);
  if (b.callbackUrl !== undefined && typeof b.callbackUrl !== "string") throw new BadRequestError("callbackUrl must be a string");
  // A body with fields of its own is an event: keep it for the agent as webhook.json.
  const foreign = Object.keys(b).some((k) => !PAI_FIELDS.has(k));
  return { title, waitSeconds, env, callbackUrl: b.callbackUrl as string | undefined, payload: foreign ? body : undefined };
}

export function parseWait(wait: unknown): number {
  if (wait === undefined || wait === null || wait === false || wait === 0) return 0;
  if (wait === true) return DEFAULT_WAIT_SECONDS;
  if (typeof wait === "number" && Number.isInteger(wait) && wait > 0) return Math.min(wait, MAX_WAIT_SECONDS);
  throw new BadRequestError(`wait must be true, false, null or a whole number of seconds up to ${MAX_WAIT_SECONDS} (got ${JSON.stringify(wait)})`);
}

function parseEnv(env: unknown): EnvVar[] {
  if (env === undefined || env === null) return [];
  if (!Array.isArray(env)) throw new BadRequestError('env must be a list of {"name": …, "value": …}');
  return env.map((e, i) => {
    if (typeof e !== "object" || e === null || Array.isArray(e)) throw new BadRequestError(`env[${i}] must be an object {"name": …, "value": …}`);
    const { name, value, ...rest } = e as Record<string, unknown>;
    if (typeof name !== "string" || !name) throw new BadRequestError(`env[${i}].name must be a non-empty string`);
    if (typeof value !== "string") throw new BadRequestError(`env[${i}].value must be a string`);
    const extra = Object.keys(rest);
    if (extra.length) throw new BadRequestError(`env[${i}]: unknown field ${extra[0]}`);
    return { name, value };
  });
}
