/** Who sent a webhook (Linear, GitHub or anyone), whether its signature holds, and a one-line title for it. */
import { createHmac } from "node:crypto";
import { safeEqual } from "../lib/crypto";
import { BadRequestError } from "./errors";

export type Sender = "linear" | "github" | "generic";

export function detectSender(headers: Headers): Sender {
  if (headers.has("linear-delivery") || headers.has("linear-signature") || headers.has("linear-event")) return "linear";
  if (headers.has("x-github-event")) return "github";
  return "generic";
}

const DELIVERY_HEADERS = ["linear-delivery", "x-github-delivery", "idempotency-key", "webhook-id"] as const;
const MAX_DELIVERY_ID = 200;

/** The sender's id for this delivery (for dropping repeats): the first non-empty of the known headers. */
export function deliveryId(headers: Headers): string | undefined {
  for (const name of DELIVERY_HEADERS) {
    const value = headers.get(name)?.trim();
    if (!value) continue;
    if (value.length > MAX_DELIVERY_ID)
      throw new BadRequestError(`the ${name} header is too long: ${value.length} characters, at most ${MAX_DELIVERY_ID}`);
    return value;
  }
  return undefined;
}

const hmacHex = (secret: string, body: string | Uint8Array): string => createHmac("sha256", secret).update(body).digest("hex");

function hexMatches(body: string | Uint8Array, hex: string | undefined, secret: string): boolean {
  if (!secret || !hex || !/^[0-9a-f]{64}$/i.test(hex)) return false;
  return safeEqual(hmacHex(secret, body), hex.toLowerCase());
}

/** Linear-Signature: the hex HMAC-SHA256 of the raw body, keyed with the webhook's signing secret. */
export function verifyLinearSignature(rawBody: string | Uint8Array, header: string | null, secret: string): boolean {
  return hexMatches(rawBody, header?.trim(), secret);
}

/** X-Hub-Signature-256: `sha256=<hex HMAC-SHA256 of the raw body>`. */
export function verifyGitHubSignature(rawBody: string | Uint8Array, header: string | null, secret: string): boolean {
  const m = /^sha256=(.*)$/i.exec(header?.trim() ?? "");
  return hexMatches(rawBody, m?.[1], secret);
}

/** Null when the payload's `webhookTimestamp` (ms) is within `toleranceMs` of `nowMs`; otherwise why it is refused. */
export function linearTimestampProblem(payload: unknown, nowMs: number, toleranceMs = 60_000): string | null {
  const ts = (payload as { webhookTimestamp?: unknown } | null)?.webhookTimestamp;
  if (ts === undefined || ts === null) return "webhookTimestamp is missing";
  if (typeof ts !== "number" || !Number.isFinite(ts)) return "webhookTimestamp is not a number";
  const off = nowMs - ts;
  if (Math.abs(off) <= toleranceMs) return null;
  const secs = Math.ceil(Math.abs(off) / 1000);
  const tol = toleranceMs / 1000;
  return off > 0
    ? `webhookTimestamp is ${secs} s from now; Linear deliveries older than ${tol} s are refused`
    : `webhookTimestamp is ${secs} s in the future; Linear deliveries more than ${tol} s ahead are refused`;
}

// ---- Titles ----

const MAX_TITLE = 300;

/** Single line, trimmed, at most `max` characters (an ellipsis marks a cut). */
function clip(s: string, max = MAX_TITLE): string {
  const line = s.replace(/\s+/g, " ").trim();
  return line.length <= max ? line : `${line.slice(0, max - 1).trimEnd()}…`;
}

/** A non-empty string (numbers allowed), or undefined. */
function str(v: unknown): string | undefined {
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  return typeof v === "string" && v.trim() ? v.trim() : undefined;
}

const LINEAR_VERBS: Record<string, string> = { create: "created", update: "updated", remove: "removed" };

/** `IssueLabel` → `Issue label`, `IssueSLA` → `Issue SLA`, `OAuthApp` → `OAuth app`. */
function typeWords(type: string): string {
  const words = type.replace(/([a-z0-9])([A-Z])/g, "$1 $2").split(" ");
  return words.map((w, i) => (i > 0 && /^[A-Z][a-z0-9]*$/.test(w) ? w.toLowerCase() : w)).join(" ");
}

/** One line saying what a Linear delivery is about, e.g. `Project created: WhatsApp Provider`. */
export function linearTitle(payload: any): string {
  const type = str(payload?.type);
  const action = str(payload?.action);
  const data = payload?.data;
  const fallback = clip(`Linear ${type ?? "event"}${action ? ` ${action}` : ""}`);
  if (!type || !action || !data || typeof data !== "object") return fallback;
  const head = `${typeWords(type)} ${LINEAR_VERBS[action] ?? action}`;
  if (type === "Comment") {
    const firstLine = str(data.body)?.split("\n")[0]?.trim();
    const on = `${head} on ${str(data.issue?.identifier) ?? "an issue"}`;
    return clip(firstLine ? `${on}: ${clip(firstLine, 80)}` : on);
  }
  const name =
    type === "Issue"
      ? [str(data.identifier), str(data.title)].filter(Boolean).join(" ") || str(data.id)
      : (str(data.name) ?? str(data.title) ?? str(data.id));
  return name ? clip(`${head}: ${name}`) : fallback;
}

/** One line saying what a GitHub delivery is about, from its X-GitHub-Event and payload. */
export function githubTitle(event: string, payload: any): string {
  const repo = str(payload?.repository?.full_name);
  const inRepo = repo ? ` in ${repo}` : "";
  const action = str(payload?.action);
  const specific = ((): string | undefined => {
    switch (event) {
      case "pull_request": {
        const pr = payload?.pull_request;
        const n = str(payload?.number) ?? str(pr?.number);
        return action && str(pr?.title) ? `Pull request ${action}: ${pr.title}${n ? ` (#${n})` : ""}${inRepo}` : undefined;
      }
      case "issues": {
        const issue = payload?.issue;
        const n = str(issue?.number);
        return action && str(issue?.title) ? `Issue ${action}: ${issue.title}${n ? ` (#${n})` : ""}${inRepo}` : undefined;
      }
      case "issue_comment": {
        const issue = payload?.issue;
        const n = str(issue?.number);
        return action && n ? `Comment ${action} on #${n}${inRepo}${str(issue.title) ? `: ${issue.title}` : ""}` : undefined;
      }
      case "push":
        return pushTitle(payload, inRepo);
      case "release": {
        const name = str(payload?.release?.name) ?? str(payload?.release?.tag_name);
        return action && name ? `Release ${action}: ${name}${inRepo}` : undefined;
      }
      case "workflow_run": {
        const run = payload?.workflow_run;
        const outcome = str(run?.conclusion) ?? str(run?.status);
        return action && str(run?.name) ? `Workflow ${run.name} ${action}${outcome ? `: ${outcome}` : ""}${inRepo}` : undefined;
      }
    }
    return undefined;
  })();
  return clip(specific ?? `GitHub ${str(event) ?? "event"}${action ? ` ${action}` : ""}${inRepo}`);
}

function pushTitle(payload: any, inRepo: string): string | undefined {
  const ref = str(payload?.ref);
  if (!ref) return undefined;
  const deleted = payload?.deleted === true;
  if (ref.startsWith("refs/tags/")) {
    const tag = ref.slice("refs/tags/".length);
    return `Tag ${tag} ${deleted ? "deleted" : "pushed"}${inRepo}`;
  }
  const branch = ref.startsWith("refs/heads/") ? ref.slice("refs/heads/".length) : ref;
  if (deleted) return `Branch ${branch} deleted${inRepo}`;
  const n = Array.isArray(payload?.commits) ? payload.commits.length : 0;
  return `Push to ${branch}${inRepo}: ${n} ${n === 1 ? "commit" : "commits"}`;
}

/** GitHub's `ping` event, sent once when a webhook is created (carries `zen` and `hook_id`). */
export function isGitHubPing(headers: Headers): boolean {
  return headers.get("x-github-event")?.trim().toLowerCase() === "ping";
}
