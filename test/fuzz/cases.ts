/**
 * What the fuzz test (test/e2e/fuzz.test.ts) sends: fast-check arbitraries that describe requests
 * as small recipes (so a failing case prints in a few lines, however large its body), and
 * `materialise`, which turns a recipe into the exact request against a running server.
 *
 * Everything stays on loopback: callback URLs are only ever loopback, private, documentation or
 * malformed addresses (which the server refuses before any DNS lookup or delivery), and no host
 * name other than `localhost` is generated.
 */
import fc from "fast-check";
import { createHmac } from "node:crypto";
import { stringify as yamlStringify } from "yaml";

/** --max-body-bytes of the server under test. */
export const MAX_BODY = 256 * 1024;

// ---------------------------------------------------------------------------------------------
// The server's fixed agents (the test applies them before fuzzing; mutations never touch them).

export const LINEAR_SECRET = "fz-lin-secret";
export const GITHUB_SECRET = "fz-gh-secret";

export const FIXED = {
  echo: { ns: "default", name: "fz-echo", spec: { models: ["pai/echo"], triggers: [{ webhook: {} }] } },
  linear: { ns: "default", name: "fz-linear", spec: { models: ["pai/echo"], triggers: [{ webhook: { linearSignatureSecret: LINEAR_SECRET } }] } },
  github: {
    ns: "default",
    name: "fz-github",
    spec: { models: ["pai/echo"], triggers: [{ webhook: { githubSignatureSecret: { secretRef: { name: "fz-gh", key: "secret" } } } }] },
  },
  cidr: { ns: "default", name: "fz-cidr", spec: { models: ["pai/echo"], triggers: [{ webhook: { allowCIDRs: ["203.0.113.0/24", "2001:db8::/32"] } }] } },
  env: { ns: "default", name: "fz-env", spec: { models: ["pai/echo"], triggers: [{ webhook: { allowedEnv: ["FOO", "BAR_BAZ", "http_proxy"], maxPending: 3 } }] } },
  teamb: { ns: "team-b", name: "fz-echo", spec: { models: ["pai/echo"], triggers: [{ webhook: {} }] } },
  nohook: { ns: "default", name: "fz-nohook", spec: { models: ["pai/echo"] } },
} as const;
export type FixedKey = keyof typeof FIXED;
export const FIXED_KEYS = Object.keys(FIXED) as FixedKey[];
/** Fixed agents that have a webhook URL (and so a token). */
export const HOOKED_KEYS = FIXED_KEYS.filter((k) => k !== "nohook");
/** Names the management fuzzing may create, change and delete. */
export const MUTABLE_AGENTS = ["fz-m1", "fz-m2", "fz-m3"];
export const MUTABLE_SECRETS = ["fz-s1", "fz-s2", "fz-s3"];

/** What `materialise` needs from the running test. */
export interface Ctx {
  url: string;
  adminToken: string;
  /** A PaiAccessToken of namespace team-b. */
  nsToken: string;
  /** Webhook token of each fixed agent with a webhook. */
  tokens: Record<string, string>;
  /** Webhook tokens of the agents the fuzzer itself applies (fz-m*), by "ns/name", as last seen in an answer. */
  mutableTokens: Record<string, string>;
  /** Sessions acknowledged so far ({ns, session}), for management cases that read one. */
  acked: { ns: string; session: string }[];
}

export type Method = "GET" | "POST" | "PUT" | "DELETE" | "PATCH";

export interface Materialised {
  method: Method;
  url: string;
  headers: Record<string, string>;
  body?: Uint8Array;
  /** Bytes in the body (also when it was not kept, see `body`). */
  bodyBytes: number;
}

// ---------------------------------------------------------------------------------------------
// Small building blocks.

/** `arb` in about `pct` percent of cases, else undefined. */
const sometimes = <T>(arb: fc.Arbitrary<T>, pct: number) => fc.oneof({ arbitrary: fc.constant(undefined), weight: 100 - pct }, { arbitrary: arb, weight: pct });

const anyText = fc.oneof(
  { arbitrary: fc.string({ maxLength: 60 }), weight: 3 },
  { arbitrary: fc.string({ unit: "grapheme", maxLength: 30 }), weight: 2 },
  { arbitrary: fc.string({ unit: "binary", maxLength: 30 }), weight: 1 },
  { arbitrary: fc.constantFrom("", " ", "\u0000", "\uFEFF{}", "null", "__proto__", "constructor", "${HOME}", "$(id)", "../../etc/passwd", "\ud800", "'; DROP TABLE sessions; --"), weight: 1 },
);
const label = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?$/);
/**
 * Objects that break code which turns a value into text without checking its type first:
 * `String(v)`, `${v}` and `[v].join()` throw on an object whose toString is not a function.
 */
const hostileObject = fc.constantFrom<unknown>(
  JSON.parse('{"toString":""}'),
  JSON.parse('{"toString":1,"valueOf":2}'),
  JSON.parse('[{"toString":""}]'),
  JSON.parse('{"toString":{},"a":1}'),
  JSON.parse('{"__proto__":{"polluted":true}}'),
  JSON.parse('{"constructor":{"prototype":{"polluted":true}}}'),
  JSON.parse('{"toJSON":"x","length":-1}'),
);
/** Any JSON value up to `depth`, hostile objects among them. */
const jv = (depth: number) => fc.oneof({ arbitrary: fc.jsonValue({ maxDepth: depth }), weight: 5 }, { arbitrary: hostileObject, weight: 1 });
/** Header values a fetch client can send: visible ASCII, spaces and tabs. */
const headerText = (max = 60) => fc.string({ unit: fc.constantFrom(..."abcXYZ019-_.:/;=,+ \t\"'{}[]()<>@!?*%&#~^`|\\".split("")), maxLength: max });

/** Namespaces as they appear in a path: the fixed ones, random labels and invalid names. */
export const nsArb = fc.oneof(
  { arbitrary: fc.constantFrom("default", "team-b"), weight: 6 },
  { arbitrary: label, weight: 2 },
  {
    arbitrary: fc.constantFrom("Default", "DEFAULT", "-x", "x-", "..", ".", "a_b", "a.b", "défault", "a".repeat(63), "a".repeat(64), "a".repeat(3000), " default", "default ", "kube-system", "%00", "a b", "default%2Fteam-b", "%2e%2e"),
    weight: 2,
  },
);
const nameArb = fc.oneof(
  { arbitrary: fc.constantFrom(...MUTABLE_AGENTS), weight: 5 },
  { arbitrary: fc.constantFrom("fz-echo", "fz-linear", "fz-nohook"), weight: 2 },
  { arbitrary: label, weight: 2 },
  { arbitrary: fc.constantFrom("Fz-M1", "fz_m1", "-", "", "a".repeat(64), "x".repeat(5000), "fz-m1.", "ünï", "pai-webhook-fz-m1", "..", "%2F"), weight: 1 },
);

/** Names for environment variables: what a caller may set, and what it must not. */
const envName = fc.oneof(
  { arbitrary: fc.constantFrom("FOO", "BAR_BAZ", "http_proxy"), weight: 3 },
  {
    arbitrary: fc.constantFrom(
      "LD_PRELOAD", "ld_preload", "LD_LIBRARY_PATH", "DYLD_INSERT_LIBRARIES", "PATH", "Path", "HOME", "NODE_OPTIONS", "BUN_INSTALL", "PAI_DATA_DIR",
      "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "http_proxy", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "GIT_SSH_COMMAND", "GIT_AUTHOR_NAME",
      "PYTHONPATH", "BASH_ENV", "SSL_CERT_FILE", "NODE_TLS_REJECT_UNAUTHORIZED", "PS4", "IFS", "GLIBC_TUNABLES", "EDITOR", "SUDO_ASKPASS",
      "KUBECONFIG", "AWS_ENDPOINT_URL", "DOCKER_HOST", "TZ", "LANG", "LC_ALL", "TERM", "_", "__", "A", "a1",
    ),
    weight: 5,
  },
  { arbitrary: fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,20}$/), weight: 2 },
  { arbitrary: fc.constantFrom("", " ", "1ABC", "A-B", "A=B", "A B", "A\u0000B", "É", "x".repeat(5000), "FOO\n"), weight: 1 },
);
const envValue = fc.oneof(
  { arbitrary: anyText, weight: 4 },
  { arbitrary: fc.constantFrom("/tmp/evil.so", "http://127.0.0.1:9", "a\u0000b", "x".repeat(10_000), "() { :; }; echo pwned"), weight: 1 },
);
const envEntry = fc.oneof(
  { arbitrary: fc.record({ name: envName, value: envValue }), weight: 8 },
  {
    arbitrary: fc.oneof(
      fc.record({ name: envName }),
      fc.record({ name: envName, value: fc.oneof(fc.integer(), fc.constant(null), fc.boolean()) }),
      fc.record({ name: envName, value: envValue, extra: anyText }),
      fc.constant("FOO=bar"),
      fc.constant(null),
      fc.constant([]),
    ),
    weight: 1,
  },
);
const envList = fc.oneof(
  { arbitrary: fc.array(envEntry, { maxLength: 4 }), weight: 8 },
  { arbitrary: fc.constantFrom(null, "FOO=bar", { FOO: "bar" }, 3), weight: 1 },
  { arbitrary: fc.constant(Array.from({ length: 257 }, (_, i) => ({ name: `V${i}`, value: "x" }))), weight: 1 },
);

/**
 * Callback URLs that the server must refuse without any network traffic: loopback, private,
 * link-local, documentation and other special addresses in their many spellings, `localhost`
 * (resolved from /etc/hosts), and malformed or non-http URLs. No public address, no other host name.
 */
const specialHost = fc.oneof(
  fc.constantFrom(
    "127.0.0.1", "127.1", "0x7f.1", "0177.0.0.1", "2130706433", "0", "0.0.0.0", "localhost", "LOCALHOST", "[::1]", "[::]", "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]", "[64:ff9b::7f00:1]", "[64:ff9b::a9fe:a9fe]", "[2002:7f00:1::]", "[fe80::1]", "[fc00::1]", "[fd12:3456::1]", "[2001:db8::1]",
    "169.254.169.254", "[::ffff:169.254.169.254]", "100.64.0.1", "192.0.2.1", "198.51.100.7", "203.0.113.9", "224.0.0.1", "255.255.255.255", "10.0.0.1",
    "172.16.5.4", "192.168.1.1", "198.18.0.1", "[ff02::1]", "[::127.0.0.1]",
  ),
  fc.tuple(fc.constantFrom(10, 127), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join(".")),
  fc.tuple(fc.nat(255), fc.nat(255)).map(([a, b]) => `192.168.${a}.${b}`),
);
export const callbackUrlArb = fc.oneof(
  {
    arbitrary: fc
      .tuple(fc.constantFrom("http", "https", "HTTP"), specialHost, fc.option(fc.integer({ min: 0, max: 70000 }), { nil: undefined }), fc.constantFrom("/", "/hook", "/a?b=c#d", "", "/%00"))
      .map(([scheme, host, port, path]) => `${scheme}://${host}${port !== undefined ? `:${port}` : ""}${path}`),
    weight: 6,
  },
  {
    arbitrary: fc.constantFrom(
      "", "not a url", "/relative", "ftp://127.0.0.1/", "file:///etc/passwd", "javascript:alert(1)", "data:text/plain,x", "gopher://127.0.0.1:6379/_",
      "http://user:pass@127.0.0.1/", "http://@127.0.0.1/", "http://127.0.0.1:99999/", "http://[::1/", "http://%31%32%37.0.0.1/", "http:\\\\127.0.0.1\\",
      "http://127.0.0.1:" + "9".repeat(3000), "http://127.0.0.1/" + "x".repeat(5000), "http://[::1]:" + "1".repeat(100) + "/",
    ),
    weight: 2,
  },
  { arbitrary: fc.oneof(fc.integer(), fc.constant(null), fc.constant(true), fc.constant(["http://127.0.0.1/"])), weight: 1 },
);

/** `wait` values; the valid ones are at most one second so no case blocks for long. */
const waitArb = fc.oneof(
  { arbitrary: fc.constantFrom(0, false, null, 1), weight: 6 },
  // Wrong types and ranges (all refused with 400): never a valid wait longer than one second.
  { arbitrary: fc.constantFrom(-1, 1.5, "1", "true", "", {}, [], -0, "0x1", "600", -(2 ** 53)), weight: 2 },
);

const extraFields = fc.dictionary(
  fc.oneof(fc.constantFrom("order", "event", "__proto__", "constructor", "prototype", "payload", "data", "", "toString", "hasOwnProperty"), fc.string({ maxLength: 12 })),
  jv(3),
  { maxKeys: 4 },
);

/** A webhook body object: Pai's own fields, each of the right or a wrong type, and extra fields. */
const webhookObject = fc
  .record({
    title: sometimes(fc.oneof({ arbitrary: anyText, weight: 8 }, { arbitrary: fc.constantFrom(null, 42, true, [], {}, "   "), weight: 1 }), 75),
    wait: sometimes(waitArb, 30),
    env: sometimes(envList, 30),
    // Always refused (no callback may leave this machine), so rarer than the other fields.
    callbackUrl: sometimes(callbackUrlArb, 12),
    extra: sometimes(extraFields, 40),
  })
  .map(({ extra, ...own }) => {
    const out: Record<string, unknown> = { ...(extra ?? {}) };
    for (const [k, v] of Object.entries(own)) if (v !== undefined) out[k] = v;
    return out;
  });

// ---------------------------------------------------------------------------------------------
// Webhook requests.

export type SigRecipe = "valid" | "valid-upper" | "wrong-secret" | "random-hex" | "sha1" | "empty" | { garbage: string };
const sigArb: fc.Arbitrary<SigRecipe> = fc.oneof(
  { arbitrary: fc.constantFrom<SigRecipe>("valid", "valid-upper"), weight: 5 },
  { arbitrary: fc.constantFrom<SigRecipe>("wrong-secret", "random-hex", "sha1", "empty"), weight: 3 },
  { arbitrary: headerText(150).map((garbage) => ({ garbage })), weight: 1 },
);

/** Delivery ids: a small pool (so repeats happen), odd ones, and ones over the 200-character cap. */
const deliveryArb = fc.oneof(
  { arbitrary: fc.constantFrom("d-1", "d-2", "d-3", "d-4", " d-1 ", "D-1"), weight: 4 },
  { arbitrary: fc.uuid(), weight: 2 },
  { arbitrary: headerText(40), weight: 1 },
  { arbitrary: fc.constantFrom("x".repeat(200), "x".repeat(201), "y".repeat(5000), " ", "\t"), weight: 1 },
);

const contentTypeArb = fc.oneof(
  { arbitrary: fc.constantFrom("application/json", "application/json; charset=utf-8", "application/x-www-form-urlencoded"), weight: 8 },
  {
    arbitrary: fc.constantFrom(
      "APPLICATION/JSON", "application/json;charset=\"UTF-8\"", "application/json; charset=iso-8859-1", "application/json; charset=utf-16le",
      "application/json; charset=klingon", "application/json; charset=", "application/json; charset", "application/vnd.github+json",
      "application/cloudevents+json", "application/merge-patch+json", "text/json", "text/plain", "text/plain; charset=windows-1252", "text/html",
      "text/xml", "application/xml", "multipart/form-data; boundary=x", "application/octet-stream", "application/x-www-form-urlencoded; charset=utf-8",
      "application/x-www-form-urlencoded; charset=shift_jis", "*/*", ";", "json", "application/json, text/plain", "application/json; boundary=\u0022\u0022",
    ),
    weight: 3,
  },
  { arbitrary: headerText(80), weight: 1 },
  { arbitrary: fc.constant(undefined), weight: 2 },
);

const githubEvents = ["ping", "PING", " ping ", "push", "pull_request", "issues", "issue_comment", "release", "workflow_run", "star", "", "__proto__"];
const githubPayload = fc.oneof(
  fc.record(
    {
      action: fc.oneof(fc.constantFrom("opened", "closed", "created"), anyText, jv(1)),
      number: fc.oneof(fc.integer(), anyText, fc.constant(null)),
      pull_request: fc.oneof(fc.record({ title: fc.oneof(anyText, jv(1)), number: fc.oneof(fc.integer(), anyText) }, { requiredKeys: [] }), jv(1)),
      issue: fc.oneof(fc.record({ title: fc.oneof(anyText, jv(1)), number: fc.oneof(fc.integer(), anyText) }, { requiredKeys: [] }), jv(1)),
      repository: fc.oneof(fc.record({ full_name: fc.oneof(anyText, jv(1)) }), jv(1)),
      ref: fc.oneof(fc.constantFrom("refs/heads/main", "refs/tags/v1", "refs/tags/", "main"), anyText, jv(1)),
      deleted: fc.oneof(fc.boolean(), jv(1)),
      commits: fc.oneof(fc.array(jv(1), { maxLength: 3 }), jv(1)),
      release: jv(2),
      workflow_run: fc.oneof(fc.record({ name: anyText, conclusion: fc.oneof(anyText, fc.constant(null)), status: anyText }, { requiredKeys: [] }), jv(1)),
      title: anyText,
      wait: waitArb,
      env: envList,
      callbackUrl: callbackUrlArb,
    },
    { requiredKeys: [] },
  ),
  jv(2),
);
const linearData = fc.oneof(
  fc.record(
    {
      name: fc.oneof(anyText, jv(1)),
      title: fc.oneof(anyText, fc.integer()),
      identifier: fc.oneof(fc.constantFrom("ENG-42"), anyText, fc.integer()),
      id: fc.oneof(fc.uuid(), fc.integer(), jv(1)),
      body: fc.oneof(anyText, fc.constant("line one\nline two"), jv(1)),
      issue: fc.oneof(fc.record({ identifier: fc.oneof(anyText, fc.integer()) }), jv(1)),
    },
    { requiredKeys: [] },
  ),
  jv(2),
);

export type TsRecipe = "now" | "old" | "future" | "missing" | "string" | "nan" | "float";

export type BodyRecipe =
  | { t: "empty" }
  | { t: "object"; value: Record<string, unknown>; encoding: "utf8" | "latin1" | "utf16le" | "bom" }
  | { t: "json"; value: unknown }
  | { t: "text"; text: string }
  | { t: "bytes"; bytes: Uint8Array }
  | { t: "deep"; style: "array" | "object" | "mixed" | "in-title" | "in-env" | "in-extra" | "form-payload" | "form-env" | "string-brackets"; depth: number; closed: boolean }
  | { t: "huge"; where: "title" | "extra" | "env-value" | "whitespace" | "raw-string" | "form-title"; size: "small" | "under" | "exact" | "over" | "double" }
  | { t: "form"; fields: [string, string][] }
  | { t: "linear"; type: unknown; action: unknown; data: unknown; ts: TsRecipe; extra: Record<string, unknown> }
  | { t: "github"; payload: unknown; asForm: boolean };

const depthArb = fc.oneof(
  { arbitrary: fc.integer({ min: 60, max: 70 }), weight: 2 },
  { arbitrary: fc.integer({ min: 1, max: 3000 }), weight: 3 },
  { arbitrary: fc.integer({ min: 3000, max: 20_000 }), weight: 1 },
);

const formValue = fc.oneof(anyText, fc.constantFrom("true", "false", "0", "1", "", "600", "-1", '[{"name":"FOO","value":"x"}]', '[{"name":"LD_PRELOAD","value":"x"}]', "{", "[]"));
const formArb = fc.array(
  fc.tuple(fc.oneof({ arbitrary: fc.constantFrom("title", "wait", "env", "callbackUrl", "payload", "extra"), weight: 4 }, { arbitrary: anyText, weight: 1 }), formValue),
  { maxLength: 5 },
).map((pairs) => pairs.map(([k, v]) => [k, k === "callbackUrl" ? "http://127.0.0.1/" + v.slice(0, 5) : k === "wait" && ((/^\d+$/.test(v) && Number(v) > 1) || v === "true") ? "1" : v] as [string, string]));

const linearBody: fc.Arbitrary<BodyRecipe> = fc
  .record({
    type: fc.oneof(
      { arbitrary: fc.constantFrom("Issue", "Comment", "Project", "ProjectUpdate", "IssueLabel", "OAuthApp"), weight: 4 },
      { arbitrary: anyText, weight: 1 },
      { arbitrary: jv(1), weight: 1 },
      { arbitrary: hostileObject, weight: 1 },
    ),
    action: fc.oneof({ arbitrary: fc.constantFrom("create", "update", "remove"), weight: 4 }, { arbitrary: anyText, weight: 1 }, { arbitrary: jv(1), weight: 1 }),
    data: linearData,
    ts: fc.constantFrom<TsRecipe>("now", "now", "now", "now", "now", "old", "future", "missing", "string", "nan", "float"),
    extra: fc.oneof(fc.constant({}), extraFields),
  })
  .map((r) => ({ t: "linear" as const, ...r }));
const githubBody: fc.Arbitrary<BodyRecipe> = fc.record({ payload: githubPayload, asForm: fc.boolean() }).map((r) => ({ t: "github" as const, ...r }));

export const bodyArb: fc.Arbitrary<BodyRecipe> = fc.oneof(
  { arbitrary: fc.constant<BodyRecipe>({ t: "empty" }), weight: 1 },
  {
    arbitrary: fc.record({ value: webhookObject, encoding: fc.constantFrom("utf8", "utf8", "utf8", "latin1", "utf16le", "bom") }).map((r) => ({ t: "object" as const, ...r })),
    weight: 10,
  },
  { arbitrary: jv(3).map((value) => ({ t: "json" as const, value })), weight: 2 },
  {
    arbitrary: fc
      .oneof(
        fc.string({ maxLength: 80 }),
        fc.constantFrom("{", "}", "[", '{"title": "x"', '{"title": "x",}', "{'title': 'x'}", "NaN", "-", "1e99999", '"\\ud800"', '{"a":1}{"b":2}', "\u0000", '{"title":"x"}\u0000', "[]", "null", " \n\t "),
      )
      .map((text) => ({ t: "text" as const, text })),
    weight: 2,
  },
  { arbitrary: fc.uint8Array({ maxLength: 600 }).map((bytes) => ({ t: "bytes" as const, bytes })), weight: 2 },
  {
    arbitrary: fc
      .record({
        style: fc.constantFrom("array", "object", "mixed", "in-title", "in-env", "in-extra", "form-payload", "form-env", "string-brackets"),
        depth: depthArb,
        closed: fc.boolean(),
      })
      .map((r) => ({ t: "deep" as const, ...r })),
    weight: 3,
  },
  {
    arbitrary: fc
      .record({
        where: fc.constantFrom("title", "extra", "env-value", "whitespace", "raw-string", "form-title"),
        size: fc.constantFrom("small", "under", "exact", "exact", "over", "double"),
      })
      .map((r) => ({ t: "huge" as const, ...r })),
    weight: 2,
  },
  { arbitrary: formArb.map((fields) => ({ t: "form" as const, fields })), weight: 3 },
  { arbitrary: linearBody, weight: 3 },
  { arbitrary: githubBody, weight: 3 },
);

export type TokenRecipe = "right" | "wrong" | "upper" | "short" | "long" | "empty-ish" | "other-agent" | "prefix";
export type PathRecipe =
  | "plain"
  | "slash"
  | "double-slash"
  | "extra-segment"
  | "pct-name"
  | "pct-token"
  | "pct-slash"
  | "upper-ns"
  | "query"
  | "long-name"
  | "long-token"
  | "dot-segment"
  | "double-leading"
  | "upper-prefix";

export interface HeaderRecipe {
  contentType?: string;
  linear?: { delivery?: string; signature?: SigRecipe; event?: string };
  github?: { event?: string; delivery?: string; signature?: SigRecipe };
  idempotencyKey?: string;
  webhookId?: string;
  xff?: string;
  extra: [string, string][];
}

const xffArb = fc.oneof(
  fc.constantFrom("203.0.113.5", "203.0.113.5, 127.0.0.1", "1.2.3.4, 203.0.113.5", "2001:db8::5", "[2001:db8::5]:443", "::ffff:203.0.113.5", "unknown", "", ",,,", "203.0.113.5:8080", "300.1.1.1", "1.1.1.1, junk, 203.0.113.5", "x".repeat(8000)),
  fc.tuple(fc.array(fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4Extended(), headerText(15)), { maxLength: 6 }), fc.constantFrom(", ", ",", " , ")).map(([a, sep]) => a.join(sep)),
);


const linearHeaders = fc
  .record({ delivery: sometimes(deliveryArb, 70), signature: sometimes(sigArb, 85), event: sometimes(fc.constantFrom("Issue", "", "x"), 20) })
  .map((linear) => ({ linear }));
const githubHeaders = fc
  .record({ event: sometimes(fc.constantFrom(...githubEvents), 90), delivery: sometimes(deliveryArb, 70), signature: sometimes(sigArb, 85) })
  .map((github) => ({ github }));
/** Who the request claims to be from: mostly what the agent expects, sometimes anyone. */
const senderFor = (agent: WebhookCase["agent"]) =>
  fc.oneof(
    { arbitrary: fc.constant(undefined), weight: agent === "linear" || agent === "github" ? 1 : 5 },
    { arbitrary: linearHeaders, weight: agent === "linear" ? 8 : 2 },
    { arbitrary: githubHeaders, weight: agent === "github" ? 8 : 2 },
  );

const headersFor = (agent: WebhookCase["agent"]): fc.Arbitrary<HeaderRecipe> =>
  fc
    .record({
      contentType: contentTypeArb,
      sender: senderFor(agent),
      idempotencyKey: sometimes(deliveryArb, 30),
      webhookId: sometimes(deliveryArb, 10),
      // allowCIDRs believes X-Forwarded-For from loopback: mostly addresses it allows for fz-cidr.
      xff: agent === "cidr" ? sometimes(fc.oneof(fc.nat(255).map((n) => `203.0.113.${n}`), fc.constantFrom("2001:db8::7", "::ffff:203.0.113.1"), xffArb), 85) : sometimes(xffArb, 15),
      extra: fc.array(
        fc.tuple(
          fc.oneof(fc.constantFrom("x-real-ip", "forwarded", "authorization", "cookie", "content-encoding", "accept-charset", "expect-x", "x-pai-namespace"), fc.stringMatching(/^x-[a-z0-9-]{1,20}$/)),
          headerText(100),
        ),
        { maxLength: 2 },
      ),
    })
    .map(({ sender, ...rest }) => ({ ...rest, ...(sender ?? {}) }));

export interface WebhookCase {
  kind: "webhook";
  method: Method;
  /** A fixed agent, or an unknown name. */
  agent: FixedKey | { unknown: string; ns: string } | { mutable: string; ns: string };
  token: TokenRecipe;
  path: PathRecipe;
  headers: HeaderRecipe;
  body: BodyRecipe;
}

const agentArb: fc.Arbitrary<WebhookCase["agent"]> = fc.oneof(
  { arbitrary: fc.constantFrom<FixedKey>("echo", "echo", "echo", "linear", "linear", "github", "github", "cidr", "env", "teamb", "nohook"), weight: 10 },
  {
    // Names no fixed agent has in that namespace (any token is wrong for them).
    arbitrary: fc.record({ unknown: fc.oneof(label, nameArb), ns: nsArb }).filter((u) => !FIXED_KEYS.some((k) => FIXED[k].ns === u.ns && FIXED[k].name === u.unknown)),
    weight: 1,
  },
  // The agents the management cases create, change and delete meanwhile, with their token as last seen.
  { arbitrary: fc.record({ mutable: fc.constantFrom(...MUTABLE_AGENTS), ns: fc.constantFrom("default", "team-b") }), weight: 2 },
);
/** Bodies: for a Linear or GitHub agent mostly its sender's events, otherwise anything. */
const bodyFor = (agent: WebhookCase["agent"]): fc.Arbitrary<BodyRecipe> =>
  agent === "linear"
    ? fc.oneof({ arbitrary: linearBody, weight: 4 }, { arbitrary: bodyArb, weight: 1 })
    : agent === "github"
      ? fc.oneof({ arbitrary: githubBody, weight: 4 }, { arbitrary: bodyArb, weight: 1 })
      : bodyArb;

export const webhookCaseArb: fc.Arbitrary<WebhookCase> = agentArb.chain((agent) =>
  fc.record({
    kind: fc.constant("webhook" as const),
    method: fc.oneof({ arbitrary: fc.constant<Method>("POST"), weight: 12 }, { arbitrary: fc.constantFrom<Method>("GET", "PUT", "DELETE", "PATCH"), weight: 2 }),
    agent: fc.constant(agent),
    token: fc.oneof(
      { arbitrary: fc.constant<TokenRecipe>("right"), weight: 12 },
      { arbitrary: fc.constantFrom<TokenRecipe>("wrong", "upper", "short", "long", "empty-ish", "other-agent", "prefix"), weight: 2 },
    ),
    path: fc.oneof(
      { arbitrary: fc.constant<PathRecipe>("plain"), weight: 14 },
      {
        arbitrary: fc.constantFrom<PathRecipe>("slash", "double-slash", "extra-segment", "pct-name", "pct-token", "pct-slash", "upper-ns", "query", "long-name", "long-token", "dot-segment", "double-leading", "upper-prefix"),
        weight: 3,
      },
    ),
    headers: headersFor(agent),
    body: bodyFor(agent),
  }),
);

// ---------------------------------------------------------------------------------------------
// Management requests.

export type Auth = "admin" | "none" | "wrong" | "ns-token" | "malformed" | "basic" | "lower-bearer";
export type Route =
  | { r: "agents"; ns: string; name?: string }
  | { r: "all-agents" }
  | { r: "secrets"; ns: string; name?: string }
  | { r: "all-secrets" }
  | { r: "sessions"; ns: string }
  | { r: "all-sessions" }
  | { r: "session"; session: { recent: number } | { literal: string }; sub: "" | "/events" | "/stream" | "/cancel"; query: [string, string][] }
  | { r: "tokens"; ns: string; id?: string }
  | { r: "misc"; path: string };

export type MgmtBody =
  | { t: "none" }
  | { t: "agent"; manifest: unknown; as: "json" | "yaml" }
  | { t: "secret"; obj: unknown; as: "json" | "yaml" }
  | { t: "start"; obj: unknown }
  | { t: "token"; obj: unknown }
  | { t: "yaml"; text: string }
  | { t: "deep"; style: "array" | "object" | "yaml-flow" | "yaml-block-seq" | "yaml-block-map" | "yaml-flow-map"; depth: number; closed: boolean }
  | { t: "text"; text: string }
  | { t: "bytes"; bytes: Uint8Array }
  | { t: "huge"; size: "under" | "over" };

export interface MgmtCase {
  kind: "mgmt";
  method: Method;
  route: Route;
  auth: Auth;
  /** Overrides the Content-Type the body would have ("none" sends no header). */
  contentType?: string;
  body: MgmtBody;
}

const modelArb = fc.oneof(
  { arbitrary: fc.constant("pai/echo"), weight: 8 },
  { arbitrary: fc.constantFrom("anthropic/claude-x", "openai/gpt-x", "foo/bar", "", "pai/", "PAI/ECHO", "pai/echo/x", "/", "anthropic/" + "m".repeat(500)), weight: 2 },
  { arbitrary: anyText, weight: 1 },
);
const cidrArb = fc.oneof(
  { arbitrary: fc.constantFrom("127.0.0.0/8", "10.0.0.0/8", "::1/128", "0.0.0.0/0", "::/0", "::ffff:10.0.0.0/104", "203.0.113.0/24"), weight: 4 },
  { arbitrary: fc.constantFrom("1.2.3.4/33", "1.2.3.4", "x", "", "1.2.3.4/-1", "fe80::%eth0/64", "1.2.3.4/08"), weight: 1 },
  { arbitrary: fc.tuple(fc.ipV4(), fc.integer({ min: -1, max: 40 })).map(([ip, n]) => `${ip}/${n}`), weight: 2 },
  { arbitrary: fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 130 })).map(([ip, n]) => `${ip}/${n}`), weight: 1 },
);
const secretValueArb = fc.oneof(
  { arbitrary: fc.string({ minLength: 1, maxLength: 40 }), weight: 4 },
  { arbitrary: fc.record({ secretRef: fc.record({ name: fc.oneof(fc.constantFrom(...MUTABLE_SECRETS), label), key: fc.oneof(fc.constantFrom("k", "secret"), anyText) }) }), weight: 3 },
  { arbitrary: jv(2), weight: 1 },
);
const valid = <T, U>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<U>) => fc.oneof({ arbitrary: good, weight: 6 }, { arbitrary: bad, weight: 1 });
const dropUndefined = <T extends Record<string, unknown>>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
const triggerArb = valid(
  fc
    .record({
      allowCIDRs: sometimes(valid(fc.array(cidrArb, { maxLength: 3 }), jv(1)), 20),
      linearSignatureSecret: sometimes(secretValueArb, 15),
      githubSignatureSecret: sometimes(secretValueArb, 15),
      allowedEnv: sometimes(valid(fc.array(envName, { maxLength: 3 }), jv(1)), 20),
      maxPending: sometimes(valid(fc.integer({ min: 1, max: 10 }), fc.constantFrom(0, -2, 1.5, "3", null)), 20),
      unknownOption: sometimes(jv(1), 3),
    })
    .map((w) => ({ webhook: dropUndefined(w) })),
  fc.oneof(jv(2), fc.constant({ webhook: null }), fc.constant({ cron: "* * * * *" })),
);
const specArb = fc
  .record({
    models: fc.oneof({ arbitrary: fc.constant(["pai/echo"]), weight: 6 }, { arbitrary: fc.array(modelArb, { minLength: 1, maxLength: 3 }), weight: 2 }, { arbitrary: jv(1), weight: 1 }),
    system: sometimes(valid(anyText, jv(1)), 40),
    triggers: sometimes(valid(fc.array(triggerArb, { minLength: 1, maxLength: 2 }), jv(1)), 50),
    env: sometimes(valid(fc.array(fc.record({ name: envName, value: envValue }), { maxLength: 3 }), jv(1)), 25),
    timeoutSeconds: sometimes(valid(fc.integer({ min: 1, max: 86_400 }), fc.constantFrom(0, -5, 0.5, "10", null, 2 ** 60, 86_401)), 20),
    maxConcurrentSessions: sometimes(valid(fc.integer({ min: 1, max: 5 }), fc.constantFrom(0, -1, "2", 1.5)), 20),
    unknownField: sometimes(jv(1), 5),
  })
  .map(dropUndefined);
const labelsArb = fc.dictionary(fc.oneof(label, fc.constantFrom("pai.io/agent", "app.kubernetes.io/name", "", "__proto__")), valid(anyText, jv(1)), { maxKeys: 3 });
const wildManifestArb = fc
  .record(
    {
      apiVersion: fc.oneof({ arbitrary: fc.constant("pai.io/v1"), weight: 8 }, { arbitrary: fc.constantFrom("pai.io/v2", "v1", "", null), weight: 1 }),
      kind: fc.oneof({ arbitrary: fc.constant("Agent"), weight: 8 }, { arbitrary: fc.constantFrom("agent", "Secret", "", 7), weight: 1 }),
      metadata: fc.oneof(
        {
          arbitrary: fc
            .record({
              // "$URL": the name or namespace in the request's path (filled in by materialise).
              name: fc.oneof({ arbitrary: fc.constant("$URL"), weight: 6 }, { arbitrary: nameArb, weight: 1 }, { arbitrary: jv(1), weight: 1 }, { arbitrary: hostileObject, weight: 1 }),
              namespace: sometimes(fc.oneof({ arbitrary: fc.constant("$URL"), weight: 4 }, { arbitrary: nsArb, weight: 1 }, { arbitrary: jv(1), weight: 1 }, { arbitrary: hostileObject, weight: 1 }), 40),
              labels: sometimes(labelsArb, 30),
              annotations: sometimes(labelsArb, 20),
              uid: sometimes(anyText, 10),
              generation: sometimes(fc.oneof(fc.integer(), anyText), 10),
              resourceVersion: sometimes(anyText, 10),
            })
            .map((m) => Object.fromEntries(Object.entries(m).filter(([, v]) => v !== undefined))),
          weight: 8,
        },
        { arbitrary: jv(1), weight: 1 },
      ),
      spec: fc.oneof({ arbitrary: specArb, weight: 8 }, { arbitrary: jv(2), weight: 1 }),
      status: jv(2),
    },
    { requiredKeys: ["apiVersion", "kind", "metadata", "spec"] },
  );
/** An agent the server should take: pai/echo, a webhook with a few options, maybe env and limits. */
const plainManifestArb = fc
  .record({
    trigger: fc
      .record({
        allowedEnv: sometimes(fc.array(envName, { maxLength: 3 }), 15),
        maxPending: sometimes(fc.integer({ min: 1, max: 5 }), 15),
        allowCIDRs: sometimes(fc.array(cidrArb, { maxLength: 2 }), 10),
        linearSignatureSecret: sometimes(secretValueArb, 8),
        githubSignatureSecret: sometimes(secretValueArb, 8),
      })
      .map(dropUndefined),
    hooked: fc.oneof({ arbitrary: fc.constant(true), weight: 5 }, { arbitrary: fc.constant(false), weight: 1 }),
    system: sometimes(anyText, 30),
    env: sometimes(fc.array(fc.record({ name: envName, value: envValue }), { maxLength: 2 }), 15),
    maxConcurrentSessions: sometimes(fc.integer({ min: 1, max: 3 }), 15),
  })
  .map(({ trigger, hooked, ...rest }) => ({
    apiVersion: "pai.io/v1",
    kind: "Agent",
    metadata: { name: "$URL" },
    spec: { models: ["pai/echo"], ...(hooked ? { triggers: [{ webhook: trigger }] } : {}), ...dropUndefined(rest) },
  }));
const manifestArb = fc.oneof(plainManifestArb, wildManifestArb);
const secretObjArb = fc
  .record({
    apiVersion: sometimes(valid(fc.constant("v1"), anyText), 50),
    kind: sometimes(valid(fc.constant("Secret"), anyText), 50),
    metadata: sometimes(
      fc
        .record({ name: sometimes(valid(fc.constant("$URL"), nameArb), 60), namespace: sometimes(valid(fc.constant("$URL"), nsArb), 20), labels: sometimes(labelsArb, 30) })
        .map(dropUndefined),
      50,
    ),
    type: sometimes(valid(fc.constant("Opaque"), fc.oneof(anyText, fc.integer())), 30),
    data: sometimes(fc.dictionary(valid(fc.constantFrom("k", "secret", "a.b", "x-y_z"), fc.oneof(label, anyText, fc.constant("__proto__"))), valid(fc.base64String({ maxLength: 40 }), anyText), { maxKeys: 3 }), 40),
    stringData: sometimes(
      fc.dictionary(valid(fc.constantFrom("k", "secret", "token", "a.b"), fc.oneof(label, anyText, fc.constantFrom("__proto__", "constructor"))), valid(anyText, jv(1)), { maxKeys: 3 }),
      60,
    ),
  })
  .map(dropUndefined);
const startObjArb = fc
  .record({
    agentDefinition: fc.oneof({ arbitrary: fc.constantFrom("fz-echo", "fz-echo", ...MUTABLE_AGENTS), weight: 5 }, { arbitrary: fc.oneof(nameArb, jv(1)), weight: 1 }),
    title: valid(anyText.filter((t) => t.length > 0), fc.constantFrom(null, 5, "", undefined)),
    env: sometimes(valid(fc.array(fc.record({ name: envName, value: envValue }), { maxLength: 3 }), envList), 30),
    extra: sometimes(jv(1), 10),
  })
  .map(dropUndefined);

/** Hostile YAML texts: alias bombs, tags, merge keys, duplicate keys, several documents, odd bytes. */
const yamlArb = fc.oneof(
  fc.constantFrom(
    "",
    "---\n---\n",
    "# only a comment\n",
    "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
    `x: &x y\nlist: [${Array.from({ length: 150 }, () => "*x").join(", ")}]\n`,
    "apiVersion: pai.io/v1\nkind: Agent\nmetadata: {name: fz-m1}\nspec: {models: [pai/echo]}\n---\napiVersion: pai.io/v1\nkind: Agent\nmetadata: {name: fz-m2}\nspec: {models: [pai/echo]}\n",
    "apiVersion: pai.io/v1\nkind: Agent\nmetadata: {name: fz-m1}\nspec: {models: [pai/echo]}\n---\n# nothing\n",
    "apiVersion: pai.io/v1\nkind: Agent\nmetadata: {name: fz-m1, name: fz-m2}\nspec: {models: [pai/echo]}\n",
    "base: &base {models: [pai/echo]}\napiVersion: pai.io/v1\nkind: Agent\nmetadata: {name: fz-m1}\nspec:\n  <<: *base\n",
    "apiVersion: pai.io/v1\nkind: Agent\nmetadata: {name: !!binary aGVsbG8=}\nspec: {models: [pai/echo]}\n",
    "apiVersion: pai.io/v1\nkind: Agent\nmetadata: {name: fz-m1}\nspec: {models: !!set {pai/echo}}\n",
    "apiVersion: pai.io/v1\nkind: Agent\nmetadata: {name: fz-m1}\nspec: {models: !!omap [a: b]}\n",
    "apiVersion: !!js/function 'function(){}'\nkind: Agent\n",
    "apiVersion: pai.io/v1\nkind: Agent\nmetadata: {name: fz-m1}\nspec: {models: [pai/echo], timeoutSeconds: 0x10}\n",
    "apiVersion: pai.io/v1\nkind: Agent\nmetadata: {name: fz-m1}\nspec: {models: [pai/echo], timeoutSeconds: 99999999999999999999999}\n",
    "? [complex, key]\n: value\n",
    "!custom-tag {a: 1}\n",
    "%YAML 1.1\n---\nyes: no\non: off\n",
    "%TAG ! tag:example.com,2000:\n---\n!foo bar\n",
    "\uFEFFapiVersion: pai.io/v1\n",
    "a:\tb\n",
    "a: 'unterminated\n",
    "a: \"\\ud800\"\n",
    "- &a a\n- *b\n",
    "a: &a {b: *a}\n",
    "__proto__: {polluted: true}\napiVersion: pai.io/v1\n",
    "apiVersion: pai.io/v1\nkind: Agent\nmetadata: {name: fz-m1, labels: {__proto__: x}}\nspec: {models: [pai/echo]}\n",
  ),
  jv(3).map((v) => yamlStringify(v)),
  fc.array(jv(2).map((v) => yamlStringify(v)), { minLength: 2, maxLength: 4 }).map((docs) => docs.join("---\n")),
  fc.string({ maxLength: 200 }),
  fc.array(fc.constantFrom("a: ", "- ", "[", "]", "{", "}", "&a ", "*a ", "!!str ", "? ", ": ", "\n", "  ", "---\n", "...\n", "#", "'", '"', "|\n", ">\n", "x", ","), { maxLength: 40 }).map((parts) => parts.join("")),
);

const mgmtNameFor = (r: "agents" | "secrets") =>
  r === "agents" ? fc.oneof({ arbitrary: fc.constantFrom(...MUTABLE_AGENTS), weight: 3 }, { arbitrary: nameArb, weight: 1 }) : fc.oneof({ arbitrary: fc.constantFrom(...MUTABLE_SECRETS), weight: 5 }, { arbitrary: fc.constantFrom("fz-gh", "pai-webhook-fz-echo", "pai-webhook-fz-m1"), weight: 1 }, { arbitrary: nameArb, weight: 2 });

const routeArb: fc.Arbitrary<Route> = fc.oneof(
  {
    arbitrary: fc.record(
      { r: fc.constant("agents" as const), ns: fc.oneof({ arbitrary: fc.constantFrom("default", "team-b"), weight: 3 }, { arbitrary: nsArb, weight: 1 }), name: mgmtNameFor("agents") },
      { requiredKeys: ["r", "ns"] },
    ),
    weight: 8,
  },
  { arbitrary: fc.constant<Route>({ r: "all-agents" }), weight: 1 },
  { arbitrary: fc.record({ r: fc.constant("secrets" as const), ns: nsArb, name: mgmtNameFor("secrets") }, { requiredKeys: ["r", "ns"] }), weight: 5 },
  { arbitrary: fc.constant<Route>({ r: "all-secrets" }), weight: 1 },
  { arbitrary: fc.record({ r: fc.constant("sessions" as const), ns: nsArb }), weight: 4 },
  { arbitrary: fc.constant<Route>({ r: "all-sessions" }), weight: 1 },
  {
    arbitrary: fc.record({
      r: fc.constant("session" as const),
      session: fc.oneof({ arbitrary: fc.nat().map((recent) => ({ recent })), weight: 4 }, { arbitrary: fc.oneof(nameArb, fc.constantFrom("fz-echo-wh-00000000", "..", "%2F", "a/b")).map((literal) => ({ literal })), weight: 1 }),
      sub: fc.constantFrom<"" | "/events" | "/stream" | "/cancel">("", "/events", "/events", "/events", "/stream", "/cancel"),
      query: fc.array(
        fc.tuple(
          fc.constantFrom("after", "limit", "event_type", "namespace", "namespace", "after", "limit", "x"),
          fc.oneof(
            fc.constantFrom("0", "1", "2", "1000", "1001", "-1", "", "1e3", "0x10", "99999999999999999999999", "9007199254740993", " 1", "NaN", "default", "team-b", "agent.message", "session.status_closed", "%00"),
            fc.nat().map(String),
            anyText,
          ),
        ),
        { maxLength: 4 },
      ),
    }),
    weight: 6,
  },
  { arbitrary: fc.record({ r: fc.constant("tokens" as const), ns: nsArb, id: fc.oneof(fc.uuid(), anyText) }, { requiredKeys: ["r", "ns"] }), weight: 1 },
  {
    arbitrary: fc
      .constantFrom("/healthz", "/readyz", "/metrics", "/openapi/json", "/apis/pai.io/v1", "/apis", "/api/v1/namespaces/default", "/agents", "/agents/", "/", "/webhooks", "/webhooks/default", "/%", "/apis/pai.io/v1/namespaces/default/agents/fz-m1/status")
      .map((path) => ({ r: "misc" as const, path })),
    weight: 1,
  },
);

const mgmtBodyArb: fc.Arbitrary<MgmtBody> = fc.oneof(
  { arbitrary: fc.constant<MgmtBody>({ t: "none" }), weight: 3 },
  { arbitrary: fc.record({ manifest: manifestArb, as: fc.constantFrom("json", "json", "yaml") }).map((r) => ({ t: "agent" as const, ...r })), weight: 8 },
  { arbitrary: fc.record({ obj: secretObjArb, as: fc.constantFrom("json", "json", "yaml") }).map((r) => ({ t: "secret" as const, ...r })), weight: 4 },
  { arbitrary: startObjArb.map((obj) => ({ t: "start" as const, obj })), weight: 3 },
  { arbitrary: fc.oneof(fc.record({ metadata: fc.record({ name: fc.oneof(anyText, fc.constant("x".repeat(254))) }) }), jv(1)).map((obj) => ({ t: "token" as const, obj })), weight: 1 },
  { arbitrary: yamlArb.map((text) => ({ t: "yaml" as const, text })), weight: 4 },
  {
    arbitrary: fc
      .record({ style: fc.constantFrom("array", "object", "yaml-flow", "yaml-block-seq", "yaml-block-map", "yaml-flow-map"), depth: depthArb, closed: fc.boolean() })
      .map((r) => ({ t: "deep" as const, ...r })),
    weight: 3,
  },
  { arbitrary: fc.string({ maxLength: 100 }).map((text) => ({ t: "text" as const, text })), weight: 1 },
  { arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes) => ({ t: "bytes" as const, bytes })), weight: 1 },
  { arbitrary: fc.constantFrom<MgmtBody>({ t: "huge", size: "under" }, { t: "huge", size: "over" }), weight: 1 },
);

/** The methods a route serves (the README's table); others are tried too, less often. */
function methodsOf(r: Route): Method[] {
  switch (r.r) {
    case "agents":
      return r.name !== undefined ? ["GET", "PUT", "PUT", "DELETE"] : ["GET", "POST"];
    case "secrets":
      return r.name !== undefined ? ["GET", "PUT", "PUT", "DELETE"] : ["GET"];
    case "sessions":
      return ["GET", "POST"];
    case "session":
      return r.sub === "/cancel" ? ["POST"] : ["GET"];
    case "tokens":
      return r.id !== undefined ? ["DELETE"] : ["GET", "POST"];
    default:
      return ["GET"];
  }
}

/** The body a route takes, mostly; any body sometimes. */
function bodyOf(r: Route): fc.Arbitrary<MgmtBody> {
  const fitting =
    r.r === "agents"
      ? fc.record({ manifest: manifestArb, as: fc.constantFrom<"json" | "yaml">("json", "json", "yaml") }).map((b) => ({ t: "agent" as const, ...b }))
      : r.r === "secrets"
        ? fc.record({ obj: secretObjArb, as: fc.constantFrom<"json" | "yaml">("json", "json", "yaml") }).map((b) => ({ t: "secret" as const, ...b }))
        : r.r === "sessions"
          ? startObjArb.map((obj) => ({ t: "start" as const, obj }))
          : r.r === "tokens"
            ? fc.oneof(fc.record({ metadata: fc.record({ name: fc.oneof(anyText, fc.constant("x".repeat(254))) }) }), jv(1)).map((obj) => ({ t: "token" as const, obj }))
            : fc.constant<MgmtBody>({ t: "none" });
  return fc.oneof({ arbitrary: fitting, weight: 3 }, { arbitrary: mgmtBodyArb, weight: 1 });
}

export const mgmtCaseArb: fc.Arbitrary<MgmtCase> = routeArb.chain((route) =>
  fc.record({
    kind: fc.constant("mgmt" as const),
    route: fc.constant(route),
    method: fc.oneof({ arbitrary: fc.constantFrom(...methodsOf(route)), weight: 5 }, { arbitrary: fc.constantFrom<Method>("GET", "POST", "PUT", "DELETE", "PATCH"), weight: 1 }),
    auth: fc.oneof({ arbitrary: fc.constant<Auth>("admin"), weight: 6 }, { arbitrary: fc.constantFrom<Auth>("none", "wrong", "ns-token", "malformed", "basic", "lower-bearer"), weight: 3 }),
    // Usually the Content-Type that fits the body; sometimes another one.
    contentType: sometimes(
      fc.constantFrom("none", "application/json", "application/yaml", "text/yaml", "application/x-yaml", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=zz", "application/merge-patch+json", "APPLICATION/YAML; charset=utf-8", "garbage"),
      15,
    ),
    body: bodyOf(route),
  }),
);

export type Case = WebhookCase | MgmtCase;

/** One batch: requests sent at the same time (a few, so the load stays light). */
export const batchArb = fc.array(fc.oneof({ arbitrary: webhookCaseArb, weight: 3 }, { arbitrary: mgmtCaseArb, weight: 2 }), { minLength: 1, maxLength: 6 });

// ---------------------------------------------------------------------------------------------
// Materialising a recipe into a request.

const enc = new TextEncoder();
/** encodeURIComponent that takes lone surrogates too (as U+FFFD). */
const encodePart = (s: string) => encodeURIComponent(s.toWellFormed());
const utf8 = (s: string) => enc.encode(s);

function encodeText(text: string, encoding: "utf8" | "latin1" | "utf16le" | "bom"): Uint8Array {
  if (encoding === "utf8") return utf8(text);
  if (encoding === "bom") return new Uint8Array([0xef, 0xbb, 0xbf, ...utf8(text)]);
  return new Uint8Array(Buffer.from(text, encoding));
}

function deepJson(style: string, depth: number, closed: boolean): string {
  const open = style === "object" ? '{"a":' : style === "mixed" ? '[{"a":' : "[";
  const close = style === "object" ? "}" : style === "mixed" ? "}]" : "]";
  const n = style === "mixed" ? Math.ceil(depth / 2) : depth;
  return open.repeat(n) + (style === "array" ? "" : "1") + (closed ? close.repeat(n) : "");
}

/** A text of exactly `bytes` UTF-8 bytes: `prefix + pad + suffix`. */
const padTo = (prefix: string, suffix: string, bytes: number, ch = "a") => prefix + ch.repeat(Math.max(0, bytes - utf8(prefix).length - utf8(suffix).length)) + suffix;

function hugeBytes(where: string, size: string): Uint8Array {
  const total = size === "small" ? 4096 : size === "under" ? MAX_BODY - 100 : size === "exact" ? MAX_BODY : size === "over" ? MAX_BODY + 1 : MAX_BODY * 2;
  switch (where) {
    case "title":
      return utf8(padTo('{"title":"', '"}', total));
    case "extra":
      return utf8(padTo('{"title":"big event","blob":"', '"}', total, "z"));
    case "env-value":
      return utf8(padTo('{"title":"env","env":[{"name":"FOO","value":"', '"}]}', total));
    case "whitespace":
      return utf8(padTo('{"title":"ws"', "}", total, " "));
    case "raw-string":
      return utf8(padTo('"', '"', total));
    default:
      return utf8(padTo("title=", "", total, "b"));
  }
}

function deepBody(style: string, depth: number, closed: boolean): { text: string; form: boolean } {
  switch (style) {
    case "in-title":
      return { text: `{"title":${deepJson("array", depth, closed)}}`, form: false };
    case "in-env":
      return { text: `{"title":"t","env":${deepJson("object", depth, closed)}}`, form: false };
    case "in-extra":
      return { text: `{"title":"t","event":${deepJson("mixed", depth, closed)}}`, form: false };
    case "form-payload":
      return { text: `payload=${encodeURIComponent(deepJson("array", depth, closed))}`, form: true };
    case "form-env":
      return { text: `title=t&env=${encodeURIComponent(deepJson("object", depth, closed))}`, form: true };
    case "string-brackets":
      return { text: JSON.stringify({ title: "[".repeat(Math.min(depth, 20_000)) + "{".repeat(100) }), form: false };
    default:
      return { text: deepJson(style, depth, closed), form: false };
  }
}

function signature(recipe: SigRecipe | undefined, bytes: Uint8Array, secret: string, prefix: string): string | undefined {
  if (recipe === undefined) return undefined;
  const hmac = (key: string) => createHmac("sha256", key).update(bytes).digest("hex");
  if (typeof recipe === "object") return recipe.garbage;
  switch (recipe) {
    case "valid":
      return prefix + hmac(secret);
    case "valid-upper":
      return prefix + hmac(secret).toUpperCase();
    case "wrong-secret":
      return prefix + hmac(secret + "x");
    case "random-hex":
      return prefix + "0123456789abcdef".repeat(4);
    case "sha1":
      return "sha1=" + createHmac("sha1", secret).update(bytes).digest("hex");
    case "empty":
      return "";
  }
}

function webhookBody(c: WebhookCase): { bytes: Uint8Array; contentType?: string } {
  const b = c.body;
  const ct = c.headers.contentType;
  switch (b.t) {
    case "empty":
      return { bytes: new Uint8Array(0), contentType: ct };
    case "object": {
      const charset = b.encoding === "latin1" ? "application/json; charset=iso-8859-1" : b.encoding === "utf16le" ? "application/json; charset=utf-16le" : ct;
      return { bytes: encodeText(JSON.stringify(b.value), b.encoding), contentType: charset };
    }
    case "json":
      return { bytes: utf8(JSON.stringify(b.value) ?? "null"), contentType: ct };
    case "text":
      return { bytes: utf8(b.text), contentType: ct };
    case "bytes":
      return { bytes: b.bytes, contentType: ct };
    case "deep": {
      const { text, form } = deepBody(b.style, b.depth, b.closed);
      return { bytes: utf8(text), contentType: form ? "application/x-www-form-urlencoded" : ct };
    }
    case "huge":
      return { bytes: hugeBytes(b.where, b.size), contentType: b.where === "form-title" ? "application/x-www-form-urlencoded" : ct };
    case "form":
      return { bytes: utf8(new URLSearchParams(b.fields).toString()), contentType: ct ?? "application/x-www-form-urlencoded" };
    case "linear": {
      const now = Date.now();
      const ts = { now, old: now - 120_000, future: now + 120_000, missing: undefined, string: String(now), nan: "NaN", float: now + 0.5 }[b.ts];
      const value = { ...b.extra, type: b.type, action: b.action, data: b.data, ...(ts !== undefined ? { webhookTimestamp: ts } : {}) };
      return { bytes: utf8(JSON.stringify(value)), contentType: ct };
    }
    case "github": {
      const json = JSON.stringify(b.payload) ?? "null";
      return b.asForm
        ? { bytes: utf8(`payload=${encodeURIComponent(json)}`), contentType: "application/x-www-form-urlencoded" }
        : { bytes: utf8(json), contentType: ct };
    }
  }
}

/** Replaces every character of `s` at even positions by its %XX escape. */
const pctSome = (s: string) => [...s].map((ch, i) => (i % 2 === 0 && /[a-z0-9-]/.test(ch) ? "%" + ch.charCodeAt(0).toString(16).toUpperCase() : ch)).join("");

/** Where a webhook case is sent; `hooked`: a fixed agent with a webhook (its token is known for sure). */
export function webhookTarget(c: WebhookCase): { ns: string; name: string; hooked: boolean; mutable: boolean } {
  if (typeof c.agent === "object")
    return "mutable" in c.agent ? { ns: c.agent.ns, name: c.agent.mutable, hooked: false, mutable: true } : { ns: c.agent.ns, name: c.agent.unknown, hooked: false, mutable: false };
  const f = FIXED[c.agent];
  return { ns: f.ns, name: f.name, hooked: c.agent !== "nohook", mutable: false };
}

function webhookUrl(c: WebhookCase, ctx: Ctx): string {
  const { ns, name } = webhookTarget(c);
  const right =
    typeof c.agent === "string"
      ? (ctx.tokens[c.agent] ?? "0".repeat(64))
      : "mutable" in c.agent
        ? (ctx.mutableTokens[`${c.agent.ns}/${c.agent.mutable}`] ?? "0".repeat(64))
        : "0".repeat(64);
  const other = ctx.tokens[c.agent === "echo" ? "teamb" : "echo"]!;
  const token = {
    right,
    wrong: right.slice(0, 63) + (right.endsWith("0") ? "1" : "0"),
    upper: right.toUpperCase(),
    short: right.slice(0, 10),
    long: right + "0".repeat(30),
    "empty-ish": "%20",
    "other-agent": other,
    prefix: right + "00",
  }[c.token];
  const e = encodePart;
  let path = `/webhooks/${e(ns)}/${e(name)}/${token}`;
  switch (c.path) {
    case "slash":
      path += "/";
      break;
    case "double-slash":
      path += "//";
      break;
    case "extra-segment":
      path += "/x";
      break;
    case "pct-name":
      path = `/webhooks/${e(ns)}/${pctSome(name)}/${token}`;
      break;
    case "pct-token":
      path = `/webhooks/${e(ns)}/${e(name)}/${pctSome(token)}`;
      break;
    case "pct-slash":
      path = `/webhooks/${e(ns)}%2F${e(name)}/${token}`;
      break;
    case "upper-ns":
      path = `/webhooks/${e(ns.toUpperCase())}/${e(name)}/${token}`;
      break;
    case "query":
      path += "?token=x&namespace=team-b";
      break;
    case "long-name":
      path = `/webhooks/${e(ns)}/${"n".repeat(6000)}/${token}`;
      break;
    case "long-token":
      path = `/webhooks/${e(ns)}/${e(name)}/${token}${"f".repeat(12_000)}`;
      break;
    case "dot-segment":
      path = `/webhooks/${e(ns)}/x/../${e(name)}/${token}`;
      break;
    case "double-leading":
      path = `//webhooks/${e(ns)}/${e(name)}/${token}`;
      break;
    case "upper-prefix":
      path = `/Webhooks/${e(ns)}/${e(name)}/${token}`;
      break;
  }
  return ctx.url + path;
}

export function materialiseWebhook(c: WebhookCase, ctx: Ctx): Materialised {
  const { bytes, contentType } = webhookBody(c);
  const h: Record<string, string> = {};
  for (const [k, v] of c.headers.extra) h[k] = v;
  if (contentType !== undefined) h["content-type"] = contentType;
  const hd = c.headers;
  if (hd.linear) {
    if (hd.linear.delivery !== undefined) h["linear-delivery"] = hd.linear.delivery;
    if (hd.linear.event !== undefined) h["linear-event"] = hd.linear.event;
    const sig = signature(hd.linear.signature, bytes, LINEAR_SECRET, "");
    if (sig !== undefined) h["linear-signature"] = sig;
  }
  if (hd.github) {
    if (hd.github.event !== undefined) h["x-github-event"] = hd.github.event;
    if (hd.github.delivery !== undefined) h["x-github-delivery"] = hd.github.delivery;
    const sig = signature(hd.github.signature, bytes, GITHUB_SECRET, "sha256=");
    if (sig !== undefined) h["x-hub-signature-256"] = sig;
  }
  if (hd.idempotencyKey !== undefined) h["idempotency-key"] = hd.idempotencyKey;
  if (hd.webhookId !== undefined) h["webhook-id"] = hd.webhookId;
  if (hd.xff !== undefined) h["x-forwarded-for"] = hd.xff;
  const withBody = c.method !== "GET";
  return { method: c.method, url: webhookUrl(c, ctx), headers: h, body: withBody ? bytes : undefined, bodyBytes: withBody ? bytes.byteLength : 0 };
}

/** The delivery id the server derives from these headers (the first non-empty of the known ones), as documented. */
export function deliveryIdOf(headers: Record<string, string>): string | undefined {
  for (const name of ["linear-delivery", "x-github-delivery", "idempotency-key", "webhook-id"]) {
    // fetch strips leading and trailing spaces and tabs from header values; the server trims the rest.
    const v = headers[name]?.trim();
    if (v) return v.length > 200 ? undefined : v;
  }
  return undefined;
}

const MUTATING = new Set<Method>(["POST", "PUT", "DELETE", "PATCH"]);

/** Mutations never touch the fixed agents, their secrets or fz-gh: those names become fz-m1 / fz-s1. */
function protect(kind: "agents" | "secrets", name: string, method: Method): string {
  if (!MUTATING.has(method)) return name;
  if (kind === "agents") return /^fz-(?!m\d)/.test(name) ? "fz-m1" : name;
  return /^fz-(?!s\d)/.test(name) || /^pai-webhook-fz-(?!m\d)/.test(name) ? "fz-s1" : name;
}

function mgmtPath(c: MgmtCase, ctx: Ctx): string {
  const e = encodePart;
  const r = c.route;
  switch (r.r) {
    case "agents":
      return `/apis/pai.io/v1/namespaces/${e(r.ns)}/agents${r.name !== undefined ? `/${e(protect("agents", r.name, c.method))}` : ""}`;
    case "all-agents":
      return "/apis/pai.io/v1/agents";
    case "secrets":
      return `/api/v1/namespaces/${e(r.ns)}/secrets${r.name !== undefined ? `/${e(protect("secrets", r.name, c.method))}` : ""}`;
    case "all-secrets":
      return "/api/v1/secrets";
    case "sessions":
      return `/apis/pai.io/v1/namespaces/${e(r.ns)}/sessions`;
    case "all-sessions":
      return "/apis/pai.io/v1/sessions";
    case "session": {
      const known = "recent" in r.session && ctx.acked.length ? ctx.acked[ctx.acked.length - 1 - (r.session.recent % Math.min(ctx.acked.length, 50))] : undefined;
      const name = known ? known.session : "literal" in r.session ? r.session.literal : "fz-echo-wh-ffffffff";
      const query = new URLSearchParams(r.query);
      if (known && !r.query.some(([k]) => k === "namespace")) query.set("namespace", known.ns);
      const qs = query.toString();
      return `/agents/${e(name)}${r.sub}${qs ? `?${qs}` : ""}`;
    }
    case "tokens":
      return `/apis/pai.io/v1/namespaces/${e(r.ns)}/accesstokens${r.id !== undefined ? `/${e(r.id)}` : ""}`;
    case "misc":
      return r.path;
  }
}

function mgmtBodyBytes(c: MgmtCase, path: string): { bytes?: Uint8Array; contentType?: string } {
  const b = c.body;
  const urlName = path.split("?")[0]!.split("/").pop();
  const urlNs = /\/namespaces\/([^/]+)/.exec(path)?.[1];
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  const fill = (v: unknown): unknown => {
    if (!v || typeof v !== "object" || Array.isArray(v)) return v;
    const o = { ...(v as Record<string, unknown>) };
    const meta = o.metadata;
    if (meta && typeof meta === "object" && !Array.isArray(meta)) {
      const m = { ...(meta as Record<string, unknown>) };
      if (m.name === "$URL") m.name = urlName ? decode(urlName) : "fz-m1";
      if (m.namespace === "$URL") m.namespace = urlNs ? decode(urlNs) : "default";
      o.metadata = m;
    }
    return o;
  };
  const as = (value: unknown, kind: "json" | "yaml") =>
    kind === "yaml" ? { bytes: utf8(yamlStringify(value)), contentType: "application/yaml" } : { bytes: utf8(JSON.stringify(value) ?? "null"), contentType: "application/json" };
  switch (b.t) {
    case "none":
      return {};
    case "agent":
      return as(fill(b.manifest), b.as);
    case "secret":
      return as(fill(b.obj), b.as);
    case "start":
    case "token":
      return as(b.obj, "json");
    case "yaml":
      return { bytes: utf8(b.text), contentType: "application/yaml" };
    case "deep": {
      const d = b.depth;
      const text =
        b.style === "array" || b.style === "object"
          ? deepJson(b.style, d, b.closed)
          : b.style === "yaml-flow"
            ? "[".repeat(d) + (b.closed ? "]".repeat(d) : "")
            : b.style === "yaml-flow-map"
              ? "{a: ".repeat(d) + "1" + (b.closed ? "}".repeat(d) : "")
              : b.style === "yaml-block-seq"
                ? "- ".repeat(d) + "x\n"
                : Array.from({ length: Math.min(d, 700) }, (_, i) => " ".repeat(i) + "a:").join("\n") + " 1\n";
      return { bytes: utf8(text), contentType: b.style.startsWith("yaml") ? "application/yaml" : "application/json" };
    }
    case "text":
      return { bytes: utf8(b.text), contentType: "text/plain" };
    case "bytes":
      return { bytes: b.bytes, contentType: "application/octet-stream" };
    case "huge":
      return { bytes: utf8(padTo('{"apiVersion":"pai.io/v1","kind":"Agent","metadata":{"name":"fz-m2"},"spec":{"models":["pai/echo"],"system":"', '"}}', b.size === "under" ? MAX_BODY - 10 : MAX_BODY + 10)), contentType: "application/json" };
  }
}

export function materialiseMgmt(c: MgmtCase, ctx: Ctx): Materialised {
  const path = mgmtPath(c, ctx);
  const { bytes, contentType } = mgmtBodyBytes(c, path);
  const h: Record<string, string> = {};
  const auth = {
    admin: `Bearer ${ctx.adminToken}`,
    none: undefined,
    wrong: `Bearer ${"0".repeat(ctx.adminToken.length)}`,
    "ns-token": `Bearer ${ctx.nsToken}`,
    malformed: `Bearer ${ctx.adminToken} extra`,
    basic: `Basic ${Buffer.from(`admin:${ctx.adminToken}`).toString("base64")}`,
    "lower-bearer": `bearer ${ctx.adminToken}`,
  }[c.auth];
  if (auth) h.authorization = auth;
  const ct = c.contentType === undefined ? contentType : c.contentType === "none" ? undefined : c.contentType;
  if (ct !== undefined && bytes) h["content-type"] = ct;
  const withBody = bytes !== undefined && c.method !== "GET";
  return { method: c.method, url: ctx.url + path, headers: h, body: withBody ? bytes : undefined, bodyBytes: withBody ? bytes!.byteLength : 0 };
}

export function materialise(c: Case, ctx: Ctx): Materialised {
  return c.kind === "webhook" ? materialiseWebhook(c, ctx) : materialiseMgmt(c, ctx);
}

/** At most `n` characters, control characters escaped (reports stay printable). */
export const clip = (s: string, n = 300) =>
  (s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s).replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);

/** A request in a few lines: what a failure report shows. */
export function describeRequest(m: Materialised): string {
  const head = Object.entries(m.headers).map(([k, v]) => `  ${k}: ${clip(JSON.stringify(v), 200)}`);
  const body = m.body ? clip(new TextDecoder("utf-8", { fatal: false }).decode(m.body.subarray(0, 400))) : "";
  return [`${m.method} ${clip(m.url, 400)}`, ...head, m.body ? `  body (${m.bodyBytes} bytes): ${JSON.stringify(body)}` : "  (no body)"].join("\n");
}
