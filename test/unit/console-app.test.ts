/**
 * The console's pure parts: its addresses (parsed and made, names encoded), the timeline built
 * from a session's events (tool calls joined with their results, untrusted contents read
 * defensively), and the webhook URL as shown before "Reveal" (no part of the token in it, in the
 * field or the YAML).
 */
import { describe, expect, test } from "bun:test";
import { agentHref, parseRoute, sessionHref, sessionsHref } from "../../src/console/app/routes";
import { timeline } from "../../src/console/app/timeline";
import { maskUrl, shownAgent } from "../../src/console/app/pages/agent";
import { toYaml } from "../../src/console/app/yaml";
import type { Agent } from "../../src/console/app/api";

describe("addresses", () => {
  test("each page has one, and names round-trip through them", () => {
    expect(parseRoute("/console")).toEqual({ page: "overview" });
    expect(parseRoute("/console/")).toEqual({ page: "overview" });
    expect(parseRoute("/console/agents")).toEqual({ page: "agents" });
    expect(parseRoute(agentHref("team-a", "my-agent"))).toEqual({ page: "agent", namespace: "team-a", name: "my-agent" });
    expect(parseRoute(sessionHref("default", "echo-wh-00000001"))).toEqual({ page: "session", namespace: "default", name: "echo-wh-00000001" });
    const odd = "a/b?c#d%e";
    expect(parseRoute(new URL(sessionHref("ns", odd), "http://x").pathname)).toEqual({ page: "session", namespace: "ns", name: odd });
    expect(parseRoute("/console/nope/x")).toEqual({ page: "missing", path: "/console/nope/x" });
  });

  test("the sessions list keeps its filters in the query, empty ones left out", () => {
    const href = sessionsHref({ namespace: "default", agent: "echo", phase: "", since: undefined });
    expect(href).toBe("/console/sessions?namespace=default&agent=echo");
    const r = parseRoute("/console/sessions", href.split("?")[1]);
    expect(r.page === "sessions" && Object.fromEntries(r.query)).toEqual({ namespace: "default", agent: "echo" });
  });
});

describe("timeline", () => {
  const ev = (id: number, type: string, content: unknown) => ({ id, type, content, timestamp: `2026-01-01T00:00:0${id}Z` });

  test("a tool call is shown with its result; messages, thinking, errors and phases in order", () => {
    const items = timeline([
      ev(1, "session.status_running", { phase: "Running" }),
      ev(2, "agent.thinking", { text: "hmm", model: "m" }),
      ev(3, "agent.tool_use", { id: "t1", name: "bash", input: { command: "ls" } }),
      ev(4, "agent.tool_use", { id: "t2", name: "read_file", input: { path: "x" } }),
      ev(5, "agent.tool_result", { id: "t2", name: "read_file", output: "no such file", isError: true }),
      ev(6, "agent.tool_result", { id: "t1", name: "bash", output: "a\nb", isError: false, truncated: true }),
      ev(7, "session.usage", { model: "anthropic/x", inputTokens: 10, outputTokens: 5 }),
      ev(8, "agent.message", { text: "**done**", model: "anthropic/x" }),
      ev(9, "session.error", { message: "boom" }),
      ev(10, "session.status_closed", { phase: "Error", reason: "boom" }),
      ev(11, "session.callback", { url: "https://x", attempt: 1, status: 200 }),
    ]);
    expect(items.map((i) => i.kind)).toEqual(["phase", "thinking", "tool", "tool", "note", "message", "error", "phase", "note"]);
    expect(items[2]).toMatchObject({ kind: "tool", name: "bash", input: { command: "ls" }, result: { output: "a\nb", isError: false, truncated: true } });
    expect(items[3]).toMatchObject({ kind: "tool", name: "read_file", result: { output: "no such file", isError: true } });
    expect(items[4]).toMatchObject({ text: "anthropic/x: 10 input, 5 output tokens" });
    expect(items[7]).toMatchObject({ kind: "phase", phase: "Error", reason: "boom" });
    expect(items[8]).toMatchObject({ text: "callback, attempt 1: answered 200" });
  });

  test("contents of the wrong shape become text, never a crash", () => {
    const items = timeline([
      ev(1, "agent.message", null),
      ev(2, "agent.message", { text: { nested: "<b>" } }),
      ev(3, "agent.tool_result", { id: "nobody", output: 42 }),
      ev(4, "session.status_closed", "Complete"),
      ev(5, "made.up", { x: 1 }),
    ]);
    expect(items).toMatchObject([
      { kind: "message", text: "" },
      { kind: "message", text: '{"nested":"<b>"}' },
      { kind: "tool", callId: "nobody", result: { output: "42", isError: false } },
      { kind: "phase", phase: "Closed" },
      { kind: "note", text: 'made.up: {"x":1}' },
    ]);
  });
});

describe("the webhook URL before Reveal", () => {
  const token = "a".repeat(20) + "0123456789abcdef".repeat(2) + "f".repeat(12);
  const agent: Agent = {
    apiVersion: "pai.io/v1",
    kind: "Agent",
    metadata: { name: "echo", namespace: "default", uid: "u", generation: 1, resourceVersion: "1", creationTimestamp: "2026-01-01T00:00:00Z" },
    spec: { models: ["pai/echo"], triggers: [{ webhook: { githubSignatureSecret: "inline-gh-secret", linearSignatureSecret: { secretRef: { name: "lin", key: "k" } } } }] },
    status: { webhookUrl: `http://localhost:8080/webhooks/default/echo/${token}` },
  };

  test("the masked URL keeps the path to the agent and none of the token", () => {
    const masked = maskUrl(agent.status!.webhookUrl!);
    expect(masked.startsWith("http://localhost:8080/webhooks/default/echo/")).toBe(true);
    for (let i = 0; i + 4 <= token.length; i++) expect(masked.includes(token.slice(i, i + 4))).toBe(false);
  });

  test("the YAML shows the token and inline signature secrets masked, Secret references as they are", () => {
    const y = toYaml(shownAgent(agent));
    expect(y).not.toContain(token);
    expect(y).not.toContain("inline-gh-secret");
    expect(y).toContain("name: lin");
    // The agent itself is not changed (the page keeps the real URL for Reveal and Copy).
    expect(agent.status!.webhookUrl).toContain(token);
  });
});
