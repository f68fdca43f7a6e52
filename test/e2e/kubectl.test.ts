/**
 * The real kubectl against `pai serve --tls` (test/kube.ts): discovery, get with server-side
 * columns, output formats, selectors, every write kubectl makes (client-side and server-side
 * apply, patch, label, annotate, edit, delete -f, create secret), the rotation command of the
 * product page, watch, a namespace token, and the errors kubectl prints.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { eventually } from "../helpers";
import { HAVE_KUBECTL, KUBECTL, startKubeServer, warnSkippedWithoutKubectl, type KubeServer } from "../kube";

warnSkippedWithoutKubectl("test/e2e/kubectl.test.ts (discovery, get, apply, patch, edit, secrets, watch and errors with the real kubectl)");

let k: KubeServer;

const agentYaml = (name: string, extra = "", labels = "team: a") => `apiVersion: pai.io/v1
kind: Agent
metadata:
  name: ${name}
  labels: {${labels}}
spec:
  models: [pai/echo]
  triggers:
    - webhook: {}
${extra}`;

/** Writes `text` to a file in kubectl's HOME and returns its path. */
function file(name: string, text: string): string {
  const path = join(k.home, name);
  writeFileSync(path, text);
  return path;
}

/** Runs kubectl and expects it to succeed; returns stdout. */
async function ok(args: string[], stdin?: string): Promise<string> {
  const r = await k.kubectl(args, stdin !== undefined ? { stdin } : {});
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Runs kubectl and expects it to fail; returns stderr. */
async function fails(args: string[]): Promise<string> {
  const r = await k.kubectl(args);
  expect(r.code).not.toBe(0);
  return r.stderr;
}

const webhookUrl = (name: string) => ok(["get", "agent", name, "-o", "jsonpath={.status.webhookUrl}"]);

describe.skipIf(!HAVE_KUBECTL)("kubectl against pai serve", () => {
  beforeAll(async () => {
    k = await startKubeServer();
  });
  afterAll(async () => {
    await k?.stop();
  });

  describe("discovery", () => {
    test("kubectl version shows the server's Kubernetes version", async () => {
      expect(await ok(["version"])).toMatch(/Server Version: v1\.32\.0\+pai\./);
    });

    test("kubectl api-resources lists secrets, agents, sessions and access tokens", async () => {
      const lines = (await ok(["api-resources", "--no-headers"])).trim().split("\n").map((l) => l.trim().split(/\s+/));
      expect(lines).toContainEqual(["secrets", "v1", "true", "Secret"]);
      expect(lines).toContainEqual(["agents", "ag", "pai.io/v1", "true", "Agent"]);
      expect(lines).toContainEqual(["sessions", "sess", "pai.io/v1", "true", "Session"]);
      expect(lines).toContainEqual(["accesstokens", "pai.io/v1", "true", "PaiAccessToken"]);
      expect(await ok(["api-resources", "--categories", "pai", "-o", "name"])).toBe("agents.pai.io\nsessions.pai.io\n");
    });
  });

  describe("client-side apply, get and delete", () => {
    test("apply -f creates, then reports unchanged, then configured", async () => {
      const path = file("my-agent.yaml", agentYaml("my-agent"));
      expect(await ok(["apply", "-f", path])).toBe("agent.pai.io/my-agent created\n");
      expect(await ok(["apply", "-f", path])).toBe("agent.pai.io/my-agent unchanged\n");
      const generation = await ok(["get", "agent", "my-agent", "-o", "jsonpath={.metadata.generation}"]);
      file("my-agent.yaml", agentYaml("my-agent", "  system: be brief\n"));
      expect(await ok(["apply", "-f", path])).toBe("agent.pai.io/my-agent configured\n");
      expect(await ok(["get", "agent", "my-agent", "-o", "jsonpath={.spec.system} {.metadata.generation}"])).toBe(`be brief ${Number(generation) + 1}`);
      expect(await ok(["apply", "-f", path])).toBe("agent.pai.io/my-agent unchanged\n");
    });

    test("get agents prints the server's columns; -o wide and --show-labels add theirs", async () => {
      await eventually(async () => (await webhookUrl("my-agent")).startsWith("https://"), 5000, "the webhook URL");
      const [header, row] = (await ok(["get", "agents"])).trim().split("\n");
      expect(header!.split(/\s{2,}/)).toEqual(["NAME", "MODELS", "WEBHOOK URL", "READY", "AGE"]);
      expect(row!.split(/\s+/).slice(0, 4)).toEqual(["my-agent", "pai/echo", await webhookUrl("my-agent"), "True"]);
      const wide = (await ok(["get", "ag", "-o", "wide", "--show-labels"])).split("\n")[0]!;
      expect(wide.split(/\s{2,}/)).toEqual(["NAME", "MODELS", "WEBHOOK URL", "READY", "AGE", "GENERATION", "LABELS"]);
    });

    test("get agent -o yaml, -o json and -o jsonpath", async () => {
      const yaml = await ok(["get", "agent", "my-agent", "-o", "yaml"]);
      expect(yaml).toContain("apiVersion: pai.io/v1\nkind: Agent\n");
      expect(yaml).toContain("kubectl.kubernetes.io/last-applied-configuration");
      const json = JSON.parse(await ok(["get", "agent", "my-agent", "-o", "json"])) as { spec: { models: string[] }; status: { webhookUrl: string } };
      expect(json.spec.models).toEqual(["pai/echo"]);
      expect(await webhookUrl("my-agent")).toBe(json.status.webhookUrl);
      expect(json.status.webhookUrl).toMatch(/^https:\/\/localhost:\d+\/webhooks\/default\/my-agent\/[0-9a-f]{64}$/);
    });

    test("-A, -l and --field-selector", async () => {
      await ok(["apply", "-f", file("other.yaml", agentYaml("other", "", "team: b"))]);
      await ok(["apply", "-n", "team-x", "-f", file("far.yaml", agentYaml("far", "", "team: b"))]);
      const all = (await ok(["get", "agents", "-A", "--no-headers"])).trim().split("\n").map((l) => l.split(/\s+/).slice(0, 2).join("/"));
      expect(all).toEqual(["default/my-agent", "default/other", "team-x/far"]);
      expect(await ok(["get", "agents", "-l", "team=b", "-o", "name"])).toBe("agent.pai.io/other\n");
      expect(await ok(["get", "agents", "-A", "-l", "team in (b),team!=c", "-o", "name"])).toBe("agent.pai.io/other\nagent.pai.io/far\n");
      expect(await ok(["get", "agents", "-l", "!team", "-o", "name"])).toBe("");
      expect(await ok(["get", "agents", "--field-selector", "metadata.name=other", "-o", "name"])).toBe("agent.pai.io/other\n");
      expect(await ok(["get", "agents", "-A", "--field-selector", "metadata.namespace!=default", "-o", "name"])).toBe("agent.pai.io/far\n");
      // kubectl pages with --chunk-size (limit + continue): every agent still comes back once.
      expect(await ok(["get", "agents", "-A", "--chunk-size=1", "-o", "name"])).toBe("agent.pai.io/my-agent\nagent.pai.io/other\nagent.pai.io/far\n");
    });

    test("delete -f removes what the file defines", async () => {
      expect(await ok(["delete", "-f", join(k.home, "other.yaml")])).toBe('agent.pai.io "other" deleted\n');
      expect(await fails(["get", "agent", "other"])).toBe('Error from server (NotFound): agents.pai.io "other" not found\n');
    });
  });

  describe("server-side apply, patch, label, annotate, edit", () => {
    test("apply --server-side creates, then changes", async () => {
      const path = file("ssa.yaml", agentYaml("ssa"));
      expect(await ok(["apply", "--server-side", "-f", path])).toBe("agent.pai.io/ssa serverside-applied\n");
      file("ssa.yaml", agentYaml("ssa", "  maxTurns: 7\n"));
      expect(await ok(["apply", "--server-side", "-f", path])).toBe("agent.pai.io/ssa serverside-applied\n");
      expect(await ok(["get", "agent", "ssa", "-o", "jsonpath={.spec.maxTurns} {.metadata.generation}"])).toBe("7 2");
    });

    test("patch --type merge and --type json", async () => {
      expect(await ok(["patch", "agent", "ssa", "--type", "merge", "-p", '{"spec":{"system":"merged"}}'])).toBe("agent.pai.io/ssa patched\n");
      expect(await ok(["patch", "agent", "ssa", "--type", "json", "-p", '[{"op":"test","path":"/spec/system","value":"merged"},{"op":"replace","path":"/spec/maxTurns","value":9}]'])).toBe(
        "agent.pai.io/ssa patched\n",
      );
      expect(await ok(["get", "agent", "ssa", "-o", "jsonpath={.spec.system} {.spec.maxTurns}"])).toBe("merged 9");
      expect(await fails(["patch", "agent", "ssa", "--type", "json", "-p", '[{"op":"test","path":"/spec/maxTurns","value":1}]'])).toContain("test failed");
    });

    test("patch --subresource=status changes only the status: spec and generation stay", async () => {
      const before = await ok(["get", "agent", "ssa", "-o", "jsonpath={.spec.maxTurns} {.metadata.generation} {.metadata.resourceVersion}"]);
      const [turns, generation, rv] = before.split(" ");
      const patch = JSON.stringify({
        spec: { maxTurns: 1 },
        status: { observedGeneration: 42, conditions: [{ type: "Checked", status: "True", reason: "Kubectl", message: "patched by kubectl", lastTransitionTime: "2025-01-01T00:00:00Z" }] },
      });
      const out = await ok(["patch", "agent", "ssa", "--subresource=status", "--type", "merge", "-p", patch, "-o", "jsonpath={.status.observedGeneration} {.status.conditions[0].type} {.spec.maxTurns} {.metadata.generation} {.metadata.resourceVersion}"]);
      const [observed, type, turnsAfter, generationAfter, rvAfter] = out.split(" ");
      expect([observed, type, turnsAfter, generationAfter]).toEqual(["42", "Checked", turns, generation]);
      expect(Number(rvAfter)).toBeGreaterThan(Number(rv));
      expect(await ok(["get", "agent", "ssa", "--subresource=status", "-o", "jsonpath={.status.observedGeneration}"])).toBe("42");
      const bad = await fails(["patch", "agent", "ssa", "--subresource=status", "--type", "merge", "-p", '{"status":{"conditions":[{"type":"X","status":"Maybe"}]}}']);
      expect(bad).toContain('The Agent "ssa" is invalid');
      expect(bad).toContain("* status.conditions[0].status:");
    });

    test("label and annotate (and label selection afterwards)", async () => {
      expect(await ok(["label", "agent", "ssa", "tier=gold"])).toBe("agent.pai.io/ssa labeled\n");
      expect(await ok(["annotate", "agent", "ssa", "owner=ops"])).toBe("agent.pai.io/ssa annotated\n");
      expect(await ok(["get", "agents", "-l", "tier=gold", "-o", "name"])).toBe("agent.pai.io/ssa\n");
      expect(await ok(["get", "agent", "ssa", "-o", "jsonpath={.metadata.annotations.owner}"])).toBe("ops");
      expect(await ok(["label", "agent", "ssa", "tier-"])).toBe("agent.pai.io/ssa unlabeled\n");
      expect(await ok(["get", "agents", "-l", "tier", "-o", "name"])).toBe("");
    });

    test("edit with EDITOR set to a script", async () => {
      const editor = file("editor.sh", "#!/bin/sh\nsed -i 's/^  system: merged$/  system: edited by kubectl/' \"$1\"\n");
      chmodSync(editor, 0o755);
      const proc = Bun.spawn([KUBECTL!, "edit", "agent", "ssa"], { env: { ...k.env, EDITOR: editor }, cwd: k.home, stdout: "pipe", stderr: "pipe" });
      const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      expect({ code, stdout, stderr }).toEqual({ code: 0, stdout: "agent.pai.io/ssa edited\n", stderr: "" });
      expect(await ok(["get", "agent", "ssa", "-o", "jsonpath={.spec.system}"])).toBe("edited by kubectl");
    });
  });

  describe("errors, as kubectl prints them", () => {
    test("NotFound", async () => {
      expect(await fails(["get", "agent", "nope"])).toBe('Error from server (NotFound): agents.pai.io "nope" not found\n');
      expect(await fails(["delete", "secret", "nope"])).toBe('Error from server (NotFound): secrets "nope" not found\n');
    });

    test("an invalid spec is Invalid, naming the field; nothing is created", async () => {
      const stderr = await fails(["apply", "-f", file("bad.yaml", agentYaml("bad").replace("pai/echo", "gpt4"))]);
      expect(stderr).toContain('The Agent "bad" is invalid');
      expect(stderr).toContain('spec.models[0]: unknown model "gpt4"');
      expect(await fails(["get", "agent", "bad"])).toContain("NotFound");
    });

    test("an unknown field: refused with --validate=strict (the default), dropped with a warning with --validate=warn", async () => {
      const path = file("unknown.yaml", agentYaml("unknown", "  bogus: 1\n"));
      const strict = await fails(["apply", "-f", path]);
      expect(strict).toContain("spec.bogus");
      expect(strict).toContain("unknown field");
      const warned = await k.kubectl(["apply", "--validate=warn", "-f", path]);
      expect(warned).toMatchObject({ code: 0, stdout: "agent.pai.io/unknown created\n" });
      expect(warned.stderr).toContain('Warning: unknown field "spec.bogus"');
      expect(await ok(["get", "agent", "unknown", "-o", "jsonpath={.spec}"])).not.toContain("bogus");
    });

    test("a stale resourceVersion is a Conflict", async () => {
      const current = JSON.parse(await ok(["get", "agent", "ssa", "-o", "json"])) as { metadata: { resourceVersion: string } };
      await ok(["label", "agent", "ssa", "bump=1"]);
      const r = await k.kubectl(["replace", "-f", "-"], { stdin: JSON.stringify(current) });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("Operation cannot be fulfilled on agents.pai.io \"ssa\": the object has been modified");
    });

    test("a namespace token reads its namespace's agents but may not manage them: Forbidden", async () => {
      const got = await k.kubectl(["get", "agents"], { namespaceToken: "default" });
      expect(got.code).toBe(0);
      const r = await k.kubectl(["delete", "agent", "ssa"], { namespaceToken: "default" });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("Error from server (Forbidden)");
    });
  });

  describe("secrets", () => {
    test("create secret generic (sent as protobuf), get secrets, -o jsonpath", async () => {
      expect(await ok(["create", "secret", "generic", "signing", "--from-literal=key=s3cr3t", "--from-literal=other=x"])).toBe("secret/signing created\n");
      const lines = (await ok(["get", "secrets"])).trim().split("\n");
      expect(lines[0]!.split(/\s{2,}/)).toEqual(["NAME", "TYPE", "DATA", "AGE"]);
      expect(lines.map((l) => l.split(/\s+/).slice(0, 3))).toContainEqual(["signing", "Opaque", "2"]);
      expect(lines.map((l) => l.split(/\s+/).slice(0, 3))).toContainEqual(["pai-webhook-my-agent", "pai.io/webhook-token", "2"]);
      expect(Buffer.from(await ok(["get", "secret", "signing", "-o", "jsonpath={.data.key}"]), "base64").toString()).toBe("s3cr3t");
      expect(await fails(["create", "secret", "generic", "signing", "--from-literal=key=again"])).toContain('secrets "signing" already exists');
    });

    test("label a secret (strategic merge patch), select it, delete it", async () => {
      expect(await ok(["label", "secret", "signing", "purpose=github"])).toBe("secret/signing labeled\n");
      expect(await ok(["get", "secrets", "-l", "purpose=github", "-o", "name"])).toBe("secret/signing\n");
      expect(await ok(["get", "secrets", "--field-selector", "type=pai.io/webhook-token,metadata.name=pai-webhook-my-agent", "-o", "name"])).toBe("secret/pai-webhook-my-agent\n");
      expect(await ok(["get", "secrets", "--field-selector", "type=Opaque", "-o", "name"])).toBe("secret/signing\n");
      expect(await ok(["delete", "secret", "signing", "--dry-run=server"])).toBe('secret "signing" deleted (server dry run)\n');
      expect(await ok(["delete", "secret", "signing"])).toBe('secret "signing" deleted\n');
    });

    test("apply -f a Secret: created, unchanged, configured; annotate", async () => {
      // data, not stringData: stringData is write-only, so kubectl reapplies it every time (as against a cluster).
      const yaml = (value: string) => `apiVersion: v1\nkind: Secret\nmetadata:\n  name: applied\n  labels: {app: "web"}\ndata:\n  password: ${Buffer.from(value).toString("base64")}\n`;
      const path = file("secret.yaml", yaml("one"));
      const created = await k.kubectl(["apply", "-f", path]);
      expect(created).toEqual({ code: 0, stdout: "secret/applied created\n", stderr: "" });
      expect(await k.kubectl(["apply", "-f", path])).toEqual({ code: 0, stdout: "secret/applied unchanged\n", stderr: "" });
      file("secret.yaml", yaml("two"));
      expect(await k.kubectl(["apply", "-f", path])).toEqual({ code: 0, stdout: "secret/applied configured\n", stderr: "" });
      expect(Buffer.from(await ok(["get", "secret", "applied", "-o", "jsonpath={.data.password}"]), "base64").toString()).toBe("two");
      expect(await ok(["annotate", "secret", "applied", "owner=ops"])).toBe("secret/applied annotated\n");
      expect(await ok(["get", "secret", "applied", "-o", "jsonpath={.metadata.annotations.owner}"])).toBe("ops");
    });

    test("the product page's rotation: kubectl delete secret pai-webhook-<agent> makes a new webhook URL", async () => {
      const before = await webhookUrl("my-agent");
      expect(await ok(["delete", "secret", "pai-webhook-my-agent", "-n", "default"])).toBe('secret "pai-webhook-my-agent" deleted\n');
      const after = await eventually(async () => {
        const url = await webhookUrl("my-agent");
        return url && url !== before ? url : undefined;
      }, 5000, "a new webhook URL");
      expect(after).toMatch(/\/webhooks\/default\/my-agent\/[0-9a-f]{64}$/);
      // The old URL no longer starts a session (its token is wrong now); the new one does.
      expect((await fetch(before, { method: "POST", tls: { ca: k.ca }, body: "{}", headers: { "content-type": "application/json" } })).status).toBe(401);
      expect((await fetch(after, { method: "POST", tls: { ca: k.ca }, body: '{"title":"rotated"}', headers: { "content-type": "application/json" } })).status).toBe(200);
    });
  });

  describe("sessions", () => {
    test("get sessions: the session columns, for the admin and for the namespace's own token", async () => {
      const run = await k.cli(["run", "my-agent", "first line\nsecond line", "--wait"]);
      expect(run.code).toBe(0);
      const lines = (await ok(["get", "sessions"])).trim().split("\n");
      expect(lines[0]!.split(/\s{2,}/)).toEqual(["NAME", "AGENT", "PHASE", "AGE", "TITLE"]);
      const row = lines.find((l) => l.includes("first line"))!;
      expect(row.split(/\s{2,}/)).toEqual([expect.stringMatching(/^my-agent-run-[0-9a-f]{8}$/), "my-agent", "Complete", expect.any(String), "first line"]);
      const team = await k.kubectl(["get", "sessions", "-A", "-o", "name"], { namespaceToken: "default" });
      expect(team.code).toBe(0);
      expect(team.stdout).toContain("session.pai.io/my-agent-run-");
      const name = row.split(/\s+/)[0]!;
      expect(await ok(["get", "session", name, "-o", "jsonpath={.phase}"])).toBe("Complete");
      expect(await ok(["get", "sessions", "--field-selector", "phase=Error", "-o", "name"])).toBe("");
      expect(await fails(["delete", "session", name])).toContain("Error from server (MethodNotAllowed)");
    });
  });

  describe("watch", () => {
    /** Reads a `kubectl -w` output as it comes: `read(want)` waits until the text so far satisfies `want`. */
    const follow = (stdout: ReadableStream<Uint8Array>) => {
      const reader = stdout.getReader();
      let seen = "";
      return {
        text: () => seen,
        async read(want: (s: string) => boolean) {
          while (!want(seen)) {
            const { value, done } = await reader.read();
            if (done) throw new Error(`kubectl -w ended; it printed:\n${seen}`);
            seen += new TextDecoder().decode(value);
          }
        },
      };
    };

    test("get agents -w prints a row when an agent changes", async () => {
      const proc = await k.spawnKubectl(["get", "agents", "-w", "--no-headers"]);
      const { read, text } = follow(proc.stdout);
      const rowsOf = (name: string) => text().split("\n").filter((l) => l.startsWith(`${name} `)).length;
      try {
        // First the agents as they are (ADDED), one row each.
        await read(() => ["my-agent", "ssa", "unknown"].every((n) => rowsOf(n) === 1));
        await ok(["label", "agent", "ssa", "watched=yes"]);
        // Then the change (MODIFIED): a second row for that agent.
        await read(() => rowsOf("ssa") === 2);
        expect(text().split("\n").filter((l) => l.startsWith("ssa ")).map((l) => l.split(/\s+/).slice(0, 2))).toEqual([
          ["ssa", "pai/echo"],
          ["ssa", "pai/echo"],
        ]);
      } finally {
        proc.kill();
        await proc.exited;
      }
    });

    test("get agent X -w follows that one agent only (a watch with a field selector)", async () => {
      const proc = await k.spawnKubectl(["get", "agent", "ssa", "-w", "--no-headers"]);
      const { read, text } = follow(proc.stdout);
      const rows = () => text().split("\n").filter(Boolean);
      try {
        await read(() => rows().length === 1);
        // Another agent changes first, then this one: only this one's change is printed.
        await ok(["label", "agent", "my-agent", "followed=no", "--overwrite"]);
        await ok(["label", "agent", "ssa", "followed=yes", "--overwrite"]);
        await read(() => rows().length === 2);
        expect(rows().map((l) => l.split(/\s+/)[0])).toEqual(["ssa", "ssa"]);
      } finally {
        proc.kill();
        await proc.exited;
      }
    });
  });
});
