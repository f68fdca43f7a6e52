/**
 * The webhook request body, defined once: a TypeBox schema that the decoder checks bodies
 * against, that names Pai's own fields (everything else makes the body an event for the agent),
 * and that the OpenAPI document shows. Each field carries the message a caller gets when it is
 * wrong, so the decoder's errors and the schema cannot drift apart.
 */
import { Type as T, type Static, type TSchema } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { ValueErrorType, type ValueError } from "@sinclair/typebox/errors";
import { BadRequestError } from "./errors";
import { MAX_ENV_VALUE, type EnvVar } from "./session";

export const DEFAULT_WAIT_SECONDS = 300;
export const MAX_WAIT_SECONDS = 600;

/** `errorMessage`: what the caller is told when this part of the body is wrong (after the field's path). */
const ENV_LIST = 'must be a list of {"name": …, "value": …}';

export const WebhookEnvVar = T.Object(
  {
    name: T.String({ minLength: 1, pattern: "\\S", errorMessage: "must be a non-empty string" }),
    value: T.String({ maxLength: MAX_ENV_VALUE, errorMessage: "must be a string" }),
  },
  { additionalProperties: false, errorMessage: 'must be an object {"name": …, "value": …}' },
);

export const WebhookBody = T.Object(
  {
    // `title: null` and `env: null` mean "not given" (the decoder drops them before checking).
    title: T.Optional(T.String({ description: "Initial prompt / task description for the agent. Required when wait is set.", errorMessage: "must be a string" })),
    env: T.Optional(
      T.Array(WebhookEnvVar, {
        maxItems: 256,
        description: "[{name, value}]: session-specific environment variable overrides",
        errorMessage: ENV_LIST,
      }),
    ),
    wait: T.Optional(
      T.Union([T.Integer({ minimum: 0 }), T.Boolean(), T.Null()], {
        description: `Synchronous mode: block on the session and return its reply. true = ${DEFAULT_WAIT_SECONDS} s, an integer = seconds (capped at ${MAX_WAIT_SECONDS}); omit, false, 0 or null = fire-and-forget.`,
        errorMessage: `must be true, false, null or a whole number of seconds up to ${MAX_WAIT_SECONDS}`,
      }),
    ),
    callbackUrl: T.Optional(
      T.String({ description: "POST {session, agentDefinition, response, phase} here when the session ends (signed with Standard Webhooks)", errorMessage: "must be a string" }),
    ),
  },
  {
    additionalProperties: true,
    description: "Pai's own fields. Any other field makes the body an event: the agent gets it as webhook.json in its working folder.",
  },
);
export type WebhookBody = Static<typeof WebhookBody>;

/** Pai's own field names; a body with any other field is an event. */
export const WEBHOOK_FIELDS: ReadonlySet<string> = new Set(Object.keys(WebhookBody.properties));

const compiled = TypeCompiler.Compile(WebhookBody);

/** `/env/0/value` → `env[0].value`. */
function fieldName(path: string): string {
  return path
    .split("/")
    .filter(Boolean)
    .map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`))
    .join("");
}

/** The first problem of a body, as one sentence that names the field. */
function messageOf(error: ValueError): string {
  const field = fieldName(error.path);
  if (error.type === ValueErrorType.ObjectAdditionalProperties) {
    const parent = fieldName(error.path.split("/").slice(0, -1).join("/"));
    return `${parent}: unknown field ${error.path.split("/").pop()}`;
  }
  if (error.type === ValueErrorType.StringMaxLength) return `${field} is longer than ${(error.schema as unknown as { maxLength: number }).maxLength} characters`;
  if (error.type === ValueErrorType.ArrayMaxItems) return `${field} may have at most ${(error.schema as unknown as { maxItems: number }).maxItems} entries`;
  const own = (error.schema as { errorMessage?: string }).errorMessage ?? "is not valid";
  const shown = field === "wait" ? ` (got ${JSON.stringify(error.value)?.slice(0, 40)})` : "";
  return `${field} ${own}${shown}`;
}

export interface WebhookFields {
  title?: string;
  waitSeconds: number;
  env: EnvVar[];
  callbackUrl?: string;
}

/** Pai's own fields of a JSON-object body, checked against the schema; a 400 names the first bad field. */
export function decodeWebhookFields(input: Record<string, unknown>): WebhookFields {
  const body = input.title === null || input.env === null ? { ...input } : input;
  if (body.title === null) delete body.title;
  if (body.env === null) delete body.env;
  if (!compiled.Check(body)) {
    const first = compiled.Errors(body).First()!;
    throw new BadRequestError(messageOf(first));
  }
  const b = body as WebhookBody;
  const title = typeof b.title === "string" && b.title.trim() ? b.title : undefined;
  const waitSeconds = waitSecondsOf(b.wait);
  if (waitSeconds && !title) throw new BadRequestError("wait requires title: without a prompt the agent has nothing to do");
  return { title, waitSeconds, env: b.env ?? [], callbackUrl: b.callbackUrl };
}

/** `wait` as seconds: 0 for fire-and-forget. */
export function waitSecondsOf(wait: WebhookBody["wait"]): number {
  if (wait === undefined || wait === null || wait === false) return 0;
  if (wait === true) return DEFAULT_WAIT_SECONDS;
  return Math.min(wait, MAX_WAIT_SECONDS);
}
