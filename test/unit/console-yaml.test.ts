/**
 * The console's YAML view: what it writes is read back by a real YAML parser (the `yaml` package,
 * YAML 1.2 core schema) as exactly the value it was given, for agents and for strings made to
 * look like something else.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { parse } from "yaml";
import { toYaml } from "../../src/console/app/yaml";

const back = (v: unknown) => parse(toYaml(v));

describe("toYaml", () => {
  test("an agent reads back the same, in kubectl's shape", () => {
    const agent = {
      apiVersion: "pai.io/v1",
      kind: "Agent",
      metadata: { name: "my-agent", namespace: "default", generation: 2, resourceVersion: "17", labels: { "app.kubernetes.io/name": "x" } },
      spec: {
        models: ["anthropic/claude-sonnet-4-6", "pai/echo"],
        system: "You are a helpful agent.\nAnswer in one short paragraph.\n",
        triggers: [{ webhook: { allowCIDRs: ["127.0.0.0/8", "::1/128"], githubSignatureSecret: { secretRef: { name: "gh", key: "secret" } } } }, { webhook: {} }],
        env: [],
        sandbox: { network: false },
      },
      status: { webhookUrl: "http://localhost:8080/webhooks/default/my-agent/••••", conditions: [{ type: "Ready", status: "True" }] },
    };
    const y = toYaml(agent);
    expect(back(agent)).toEqual(agent);
    expect(y).toContain("  models:\n    - anthropic/claude-sonnet-4-6\n");
    expect(y).toContain("  system: |\n    You are a helpful agent.\n");
    expect(y).toContain('status: "True"');
  });

  test("strings that look like other things stay strings", () => {
    const tricky = ["true", "No", "null", "~", "1", "-2.5e3", "0x1f", ".inf", "", " lead", "trail ", "a: b", "a #b", "- x", "? x", "[x]", "{x}", "*ref", "&anchor", "!tag", "%x", "@x", "`x", "'q'", '"q"', "#c", "x:", "multi\nline", " multi\nline", "tabs\tin", "end\n\n", "\n\nstart", "crlf\r\nline", "\n a", "emoji 🎉", "\u2028", "a\u0000b", "｢full｣"];
    for (const s of tricky) expect({ s, back: back({ k: s, list: [s] }) }).toEqual({ s, back: { k: s, list: [s] } });
  });

  test("any JSON value reads back the same (property test)", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => {
        // -0 is written as 0 (YAML and JSON have one zero); the console never shows a -0.
        const value = JSON.parse(JSON.stringify(v));
        expect(back(value)).toEqual(value);
      }),
      { numRuns: 300 },
    );
  });
});
