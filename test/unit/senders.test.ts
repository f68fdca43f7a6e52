// Covers src/domain/senders.ts: sender detection, delivery ids, Linear/GitHub signatures, Linear freshness, titles.
import { describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { sign as githubSign } from "@octokit/webhooks-methods";
import { BadRequestError } from "../../src/domain/errors";
import {
  deliveryId,
  detectSender,
  githubTitle,
  isGitHubPing,
  linearTimestampProblem,
  linearTitle,
  type Sender,
  verifyGitHubSignature,
  verifyLinearSignature,
} from "../../src/domain/senders";

const SECRET = "lin_wh_s3cr3t";
const linearSig = (body: string, secret = SECRET) => createHmac("sha256", secret).update(body).digest("hex");
const LINEAR_EXAMPLE = '{"action":"create","type":"Project","data":{"name":"WhatsApp Provider","description":"..."},"webhookTimestamp":1744123456789}';

describe("detectSender", () => {
  const cases: { headers: Record<string, string>; expected: Sender }[] = [
    { headers: { "Linear-Delivery": "d1" }, expected: "linear" },
    { headers: { "linear-signature": "ab" }, expected: "linear" },
    { headers: { "Linear-Event": "Issue" }, expected: "linear" },
    { headers: { "X-GitHub-Event": "push" }, expected: "github" },
    { headers: { "webhook-id": "msg_1", "content-type": "application/json" }, expected: "generic" },
    { headers: {}, expected: "generic" },
  ];
  for (const c of cases) test(`${JSON.stringify(c.headers)} → ${c.expected}`, () => expect(detectSender(new Headers(c.headers))).toBe(c.expected));
});

describe("deliveryId", () => {
  test("precedence: linear-delivery, x-github-delivery, idempotency-key, webhook-id", () => {
    const all = { "linear-delivery": "lin", "x-github-delivery": "gh", "idempotency-key": "idem", "webhook-id": "wh" };
    expect(deliveryId(new Headers(all))).toBe("lin");
    const { "linear-delivery": _l, ...noLinear } = all;
    expect(deliveryId(new Headers(noLinear))).toBe("gh");
    const { "x-github-delivery": _g, ...noGitHub } = noLinear;
    expect(deliveryId(new Headers(noGitHub))).toBe("idem");
    expect(deliveryId(new Headers({ "webhook-id": "wh" }))).toBe("wh");
    expect(deliveryId(new Headers())).toBeUndefined();
  });

  test("trimmed; a blank header counts as absent", () => {
    expect(deliveryId(new Headers({ "idempotency-key": "  k-1  " }))).toBe("k-1");
    expect(deliveryId(new Headers({ "linear-delivery": "   ", "webhook-id": "wh" }))).toBe("wh");
  });

  test("200 characters is fine; 201 is a bad request", () => {
    expect(deliveryId(new Headers({ "webhook-id": "a".repeat(200) }))).toBe("a".repeat(200));
    expect(() => deliveryId(new Headers({ "webhook-id": "a".repeat(201) }))).toThrow(BadRequestError);
    expect(() => deliveryId(new Headers({ "x-github-delivery": "a".repeat(201) }))).toThrow(/x-github-delivery header is too long/);
  });
});

describe("verifyLinearSignature", () => {
  const body = LINEAR_EXAMPLE;
  test("a correct signature holds", () => expect(verifyLinearSignature(body, linearSig(body), SECRET)).toBe(true));
  test("upper-case hex and surrounding spaces are tolerated", () =>
    expect(verifyLinearSignature(body, ` ${linearSig(body).toUpperCase()} `, SECRET)).toBe(true));
  test("raw bytes work like the string", () =>
    expect(verifyLinearSignature(new TextEncoder().encode(body), linearSig(body), SECRET)).toBe(true));
  test("wrong secret", () => expect(verifyLinearSignature(body, linearSig(body, "other"), SECRET)).toBe(false));
  test("tampered body", () => expect(verifyLinearSignature(body.replace("WhatsApp", "Signal"), linearSig(body), SECRET)).toBe(false));
  test("missing header", () => expect(verifyLinearSignature(body, null, SECRET)).toBe(false));
  test("malformed header", () => {
    for (const h of ["", "nothex", linearSig(body).slice(0, 63), `${linearSig(body)}00`, `sha256=${linearSig(body)}`, "z".repeat(64)])
      expect(verifyLinearSignature(body, h, SECRET)).toBe(false);
  });
  test("an empty secret never verifies", () => expect(verifyLinearSignature(body, linearSig(body, ""), "")).toBe(false));
});

describe("verifyGitHubSignature", () => {
  const body = JSON.stringify({ zen: "Keep it logically awesome.", hook_id: 12345678 });
  test("a signature from @octokit/webhooks-methods holds", async () =>
    expect(verifyGitHubSignature(body, await githubSign(SECRET, body), SECRET)).toBe(true));
  test("upper-case hex is tolerated", async () => {
    const sig = await githubSign(SECRET, body);
    expect(verifyGitHubSignature(body, `sha256=${sig.slice(7).toUpperCase()}`, SECRET)).toBe(true);
  });
  test("a form-encoded body is verified as received", async () => {
    const form = `payload=${encodeURIComponent(body)}`;
    expect(verifyGitHubSignature(form, await githubSign(SECRET, form), SECRET)).toBe(true);
    expect(verifyGitHubSignature(body, await githubSign(SECRET, form), SECRET)).toBe(false);
  });
  test("wrong secret", async () => expect(verifyGitHubSignature(body, await githubSign("other", body), SECRET)).toBe(false));
  test("tampered body", async () => expect(verifyGitHubSignature(`${body} `, await githubSign(SECRET, body), SECRET)).toBe(false));
  test("missing header", () => expect(verifyGitHubSignature(body, null, SECRET)).toBe(false));
  test("malformed header", async () => {
    const hex = (await githubSign(SECRET, body)).slice(7);
    for (const h of ["", "sha256=", hex, `sha1=${hex}`, `sha256=${hex.slice(1)}`, `sha256=${hex}=`, "sha256=xyz"])
      expect(verifyGitHubSignature(body, h, SECRET)).toBe(false);
  });
});

describe("linearTimestampProblem", () => {
  const now = 1_744_123_456_789;
  test("fresh", () => {
    expect(linearTimestampProblem({ webhookTimestamp: now }, now)).toBeNull();
    expect(linearTimestampProblem({ webhookTimestamp: now - 60_000 }, now)).toBeNull();
    expect(linearTimestampProblem({ webhookTimestamp: now + 30_000 }, now)).toBeNull();
    expect(linearTimestampProblem(JSON.parse(LINEAR_EXAMPLE), now)).toBeNull();
  });
  test("stale", () =>
    expect(linearTimestampProblem({ webhookTimestamp: now - 75_000 }, now)).toBe(
      "webhookTimestamp is 75 s from now; Linear deliveries older than 60 s are refused",
    ));
  test("future", () => expect(linearTimestampProblem({ webhookTimestamp: now + 75_000 }, now)).toMatch(/^webhookTimestamp is 75 s in the future/));
  test("a custom tolerance", () => {
    expect(linearTimestampProblem({ webhookTimestamp: now - 75_000 }, now, 120_000)).toBeNull();
    expect(linearTimestampProblem({ webhookTimestamp: now - 75_000 }, now, 30_000)).toMatch(/older than 30 s/);
  });
  test("missing or not a number", () => {
    expect(linearTimestampProblem({}, now)).toBe("webhookTimestamp is missing");
    expect(linearTimestampProblem(null, now)).toBe("webhookTimestamp is missing");
    expect(linearTimestampProblem("text", now)).toBe("webhookTimestamp is missing");
    expect(linearTimestampProblem({ webhookTimestamp: String(now) }, now)).toBe("webhookTimestamp is not a number");
  });
});

describe("linearTitle", () => {
  const cases: { name: string; payload: unknown; expected: string }[] = [
    { name: "the product page's example", payload: JSON.parse(LINEAR_EXAMPLE), expected: "Project created: WhatsApp Provider" },
    { name: "project updated", payload: { action: "update", type: "Project", data: { name: "WhatsApp Provider" } }, expected: "Project updated: WhatsApp Provider" },
    { name: "project removed", payload: { action: "remove", type: "Project", data: { name: "WhatsApp Provider" } }, expected: "Project removed: WhatsApp Provider" },
    { name: "unknown action as is", payload: { action: "archived", type: "Project", data: { name: "X" } }, expected: "Project archived: X" },
    {
      name: "issue with identifier",
      payload: { action: "create", type: "Issue", data: { identifier: "ENG-42", title: "Login fails on Safari" } },
      expected: "Issue created: ENG-42 Login fails on Safari",
    },
    { name: "issue without identifier", payload: { action: "update", type: "Issue", data: { title: "Login fails" } }, expected: "Issue updated: Login fails" },
    {
      name: "comment",
      payload: { action: "create", type: "Comment", data: { body: "Looks good to me.\nShip it.", issue: { identifier: "ENG-42", title: "t" } } },
      expected: "Comment created on ENG-42: Looks good to me.",
    },
    { name: "comment without an issue", payload: { action: "create", type: "Comment", data: { body: "Hi" } }, expected: "Comment created on an issue: Hi" },
    {
      name: "long comment is cut at 80 characters",
      payload: { action: "create", type: "Comment", data: { body: "x".repeat(100), issue: { identifier: "ENG-1" } } },
      expected: `Comment created on ENG-1: ${"x".repeat(79)}…`,
    },
    { name: "comment without a body", payload: { action: "remove", type: "Comment", data: { issue: { identifier: "ENG-1" } } }, expected: "Comment removed on ENG-1" },
    { name: "cycle", payload: { action: "update", type: "Cycle", data: { name: "Sprint 12" } }, expected: "Cycle updated: Sprint 12" },
    { name: "CamelCase type in words", payload: { action: "create", type: "IssueLabel", data: { name: "bug" } }, expected: "Issue label created: bug" },
    { name: "acronym kept", payload: { action: "update", type: "IssueSLA", data: { id: "sla-1" } }, expected: "Issue SLA updated: sla-1" },
    { name: "title when no name", payload: { action: "create", type: "Document", data: { title: "Runbook" } }, expected: "Document created: Runbook" },
    { name: "id when no name or title", payload: { action: "create", type: "Reaction", data: { id: "r-1" } }, expected: "Reaction created: r-1" },
    { name: "missing data", payload: { action: "create", type: "Project" }, expected: "Linear Project create" },
    { name: "empty data", payload: { action: "create", type: "Project", data: {} }, expected: "Linear Project create" },
    { name: "missing type", payload: { action: "create", data: { name: "X" } }, expected: "Linear event create" },
    { name: "not an object", payload: null, expected: "Linear event" },
    {
      name: "newlines collapsed",
      payload: { action: "create", type: "Project", data: { name: "  Two\nlines\r\n here " } },
      expected: "Project created: Two lines here",
    },
  ];
  for (const c of cases) test(c.name, () => expect(linearTitle(c.payload)).toBe(c.expected));

  test("at most 300 characters", () => {
    const t = linearTitle({ action: "create", type: "Project", data: { name: "n".repeat(500) } });
    expect(t).toHaveLength(300);
    expect(t.endsWith("…")).toBe(true);
  });
});

describe("githubTitle", () => {
  const repository = { full_name: "acme/widgets" };
  const cases: { name: string; event: string; payload: unknown; expected: string }[] = [
    {
      name: "pull request",
      event: "pull_request",
      payload: { action: "opened", number: 7, pull_request: { title: "Add retries", number: 7 }, repository },
      expected: "Pull request opened: Add retries (#7) in acme/widgets",
    },
    {
      name: "issue",
      event: "issues",
      payload: { action: "closed", issue: { title: "Crash on start", number: 12 }, repository },
      expected: "Issue closed: Crash on start (#12) in acme/widgets",
    },
    {
      name: "issue comment",
      event: "issue_comment",
      payload: { action: "created", issue: { title: "Crash on start", number: 12 }, comment: { body: "+1" }, repository },
      expected: "Comment created on #12 in acme/widgets: Crash on start",
    },
    {
      name: "push to a branch",
      event: "push",
      payload: { ref: "refs/heads/main", commits: [{}, {}, {}], repository },
      expected: "Push to main in acme/widgets: 3 commits",
    },
    {
      name: "push of one commit to a nested branch",
      event: "push",
      payload: { ref: "refs/heads/feature/x", commits: [{}], repository },
      expected: "Push to feature/x in acme/widgets: 1 commit",
    },
    { name: "tag pushed", event: "push", payload: { ref: "refs/tags/v1.2.0", commits: [], repository }, expected: "Tag v1.2.0 pushed in acme/widgets" },
    { name: "branch deleted", event: "push", payload: { ref: "refs/heads/old", deleted: true, commits: [], repository }, expected: "Branch old deleted in acme/widgets" },
    {
      name: "release with a name",
      event: "release",
      payload: { action: "published", release: { name: "Widgets 1.2", tag_name: "v1.2.0" }, repository },
      expected: "Release published: Widgets 1.2 in acme/widgets",
    },
    {
      name: "release without a name",
      event: "release",
      payload: { action: "published", release: { name: "", tag_name: "v1.2.0" }, repository },
      expected: "Release published: v1.2.0 in acme/widgets",
    },
    {
      name: "workflow run completed",
      event: "workflow_run",
      payload: { action: "completed", workflow_run: { name: "CI", status: "completed", conclusion: "failure" }, repository },
      expected: "Workflow CI completed: failure in acme/widgets",
    },
    {
      name: "workflow run in progress",
      event: "workflow_run",
      payload: { action: "in_progress", workflow_run: { name: "CI", status: "in_progress", conclusion: null }, repository },
      expected: "Workflow CI in_progress: in_progress in acme/widgets",
    },
    { name: "other event with action", event: "star", payload: { action: "created", repository }, expected: "GitHub star created in acme/widgets" },
    { name: "other event without action", event: "fork", payload: { repository }, expected: "GitHub fork in acme/widgets" },
    { name: "ping on an organization", event: "ping", payload: { zen: "Design for failure.", hook_id: 1 }, expected: "GitHub ping" },
    { name: "known event with missing fields", event: "pull_request", payload: { action: "opened", repository }, expected: "GitHub pull_request opened in acme/widgets" },
    {
      name: "newlines collapsed",
      event: "issues",
      payload: { action: "opened", issue: { title: "Line one\nline two", number: 3 } },
      expected: "Issue opened: Line one line two (#3)",
    },
  ];
  for (const c of cases) test(c.name, () => expect(githubTitle(c.event, c.payload)).toBe(c.expected));

  test("at most 300 characters", () => {
    const t = githubTitle("issues", { action: "opened", issue: { title: "t".repeat(400), number: 1 }, repository });
    expect(t).toHaveLength(300);
    expect(t.endsWith("…")).toBe(true);
  });
});

describe("isGitHubPing", () => {
  test("ping", () => expect(isGitHubPing(new Headers({ "X-GitHub-Event": "ping" }))).toBe(true));
  test("push", () => expect(isGitHubPing(new Headers({ "X-GitHub-Event": "push" }))).toBe(false));
  test("no header", () => expect(isGitHubPing(new Headers())).toBe(false));
});
