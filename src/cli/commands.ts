/** The client verbs: apply, get, delete, create. Each talks to the server's API over HTTP. */
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Agent } from "../domain/agent";
import { loadManifests } from "../domain/manifest";
import { CliError, type Client } from "./client";
import { age, describe, outputFormat, printObject, table } from "./format";
import { agentPath, Resource, resourceOf, secretPath, tokenPath } from "./resources";

export interface Ctx {
  client: Client;
  namespace: string;
  allNamespaces: boolean;
  output: unknown;
  files: string[];
  name?: string;
  literals: string[];
  /** `pai create secret --overwrite`: replace a secret that exists instead of refusing. */
  overwrite?: boolean;
}

const out = (s: string) => process.stdout.write(s);

function readSources(paths: string[]): { name: string; text: string }[] {
  if (!paths.length) throw new CliError("pai apply needs -f FILE (a file, a folder of .yaml files, or - for stdin)", 2);
  const sources: { name: string; text: string }[] = [];
  for (const p of paths) {
    if (p === "-") {
      sources.push({ name: "<stdin>", text: readFileSync(0, "utf8") });
      continue;
    }
    let st;
    try {
      st = statSync(p);
    } catch {
      throw new CliError(`${p}: no such file or folder`);
    }
    if (st.isDirectory()) {
      for (const f of readdirSync(p).filter((f) => /\.ya?ml$/i.test(f)).sort()) sources.push({ name: join(p, f), text: readFileSync(join(p, f), "utf8") });
    } else sources.push({ name: p, text: readFileSync(p, "utf8") });
  }
  return sources;
}

/** Reads and validates every document first: nothing is applied if any document is bad. */
function loadAll(ctx: Ctx) {
  const inputs = [];
  const errors: string[] = [];
  for (const s of readSources(ctx.files)) {
    const loaded = loadManifests(s.text, s.name, ctx.namespace);
    errors.push(...loaded.errors.map((e) => e.text));
    inputs.push(...loaded.agents.map((a) => a.input));
  }
  if (errors.length) throw new CliError(errors.join("\n"));
  if (!inputs.length) throw new CliError("no Agent documents found");
  return inputs;
}

export async function apply(ctx: Ctx) {
  for (const input of loadAll(ctx)) {
    const before = await ctx.client.request<Agent>("GET", agentPath(input.namespace, input.name)).catch(() => undefined);
    const body = {
      apiVersion: "pai.io/v1",
      kind: "Agent",
      metadata: { name: input.name, namespace: input.namespace, ...(input.labels ? { labels: input.labels } : {}), ...(input.annotations ? { annotations: input.annotations } : {}) },
      spec: input.spec,
    };
    const after = await ctx.client.request<Agent>("PUT", agentPath(input.namespace, input.name), body);
    const verb = !before ? "created" : before.metadata.resourceVersion === after.metadata.resourceVersion ? "unchanged" : "configured";
    out(`agent-def/${input.name} ${verb}\n`);
  }
}

export async function deleteFromFiles(ctx: Ctx) {
  for (const input of loadAll(ctx)) {
    await ctx.client.request("DELETE", agentPath(input.namespace, input.name));
    out(`agent-def "${input.name}" deleted\n`);
  }
}

const ready = (a: Agent) => a.status.conditions?.find((c) => c.type === "Ready")?.status ?? "Unknown";

export async function get(ctx: Ctx, words: string[]) {
  const resource = resourceOf(words[0], "get");
  const name = words[1];
  const format = outputFormat(ctx.output);
  if (resource === Resource.AgentDef) {
    if (name) {
      const a = await ctx.client.request<Agent>("GET", agentPath(ctx.namespace, name));
      if (format !== "table") return printObject(a, format);
      return out(
        describe([
          ["Name", a.metadata.name],
          ["Namespace", a.metadata.namespace],
          ["Models", a.spec.models.join(", ")],
          ["Generation", String(a.metadata.generation)],
          ["Webhook URL", a.status.webhookUrl ?? "<none>"],
          ["Ready", ready(a)],
          ["Problem", a.status.conditions?.find((c) => c.type === "Accepted" && c.status === "False")?.message],
          ["Created", `${a.metadata.creationTimestamp} (${age(a.metadata.creationTimestamp)} ago)`],
        ]),
      );
    }
    const list = await ctx.client.request<{ items: Agent[] }>("GET", ctx.allNamespaces ? "/apis/pai.io/v1/agents" : agentPath(ctx.namespace));
    if (format !== "table") return printObject(list, format);
    if (!list.items.length) return out(ctx.allNamespaces ? "No agents found.\n" : `No agents found in namespace ${ctx.namespace}.\n`);
    const rows = list.items.map((a) => [
      ...(ctx.allNamespaces ? [a.metadata.namespace] : []),
      a.metadata.name,
      a.spec.models.join(","),
      a.status.webhookUrl ? "yes" : "no",
      ready(a),
      age(a.metadata.creationTimestamp),
    ]);
    return out(table([...(ctx.allNamespaces ? ["NAMESPACE"] : []), "NAME", "MODELS", "WEBHOOK", "READY", "AGE"], rows));
  }
  if (resource === Resource.Secret) {
    type Secret = { metadata: { name: string; namespace: string; creationTimestamp: string }; type: string; data: Record<string, string> };
    if (name) {
      const s = await ctx.client.request<Secret>("GET", secretPath(ctx.namespace, name));
      if (format !== "table") return printObject(s, format);
      return out(table(["NAME", "TYPE", "DATA", "AGE"], [[s.metadata.name, s.type, String(Object.keys(s.data).length), age(s.metadata.creationTimestamp)]]));
    }
    const list = await ctx.client.request<{ items: Secret[] }>("GET", ctx.allNamespaces ? "/api/v1/secrets" : secretPath(ctx.namespace));
    if (format !== "table") return printObject(list, format);
    if (!list.items.length) return out(`No secrets found.\n`);
    return out(
      table(
        [...(ctx.allNamespaces ? ["NAMESPACE"] : []), "NAME", "TYPE", "DATA", "AGE"],
        list.items.map((s) => [...(ctx.allNamespaces ? [s.metadata.namespace] : []), s.metadata.name, s.type, String(Object.keys(s.data).length), age(s.metadata.creationTimestamp)]),
      ),
    );
  }
  type Token = { metadata: { name: string; uid: string; creationTimestamp: string } };
  const list = await ctx.client.request<{ items: Token[] }>("GET", tokenPath(ctx.namespace));
  if (format !== "table") return printObject(list, format);
  if (!list.items.length) return out(`No tokens found in namespace ${ctx.namespace}.\n`);
  return out(table(["ID", "NAME", "AGE"], list.items.map((t) => [t.metadata.uid, t.metadata.name, age(t.metadata.creationTimestamp)])));
}

export async function remove(ctx: Ctx, words: string[]) {
  if (!words.length && ctx.files.length) return deleteFromFiles(ctx);
  const resource = resourceOf(words[0], "delete");
  const name = words[1];
  if (!name) throw new CliError(`pai delete ${words[0]} needs a name`, 2);
  const path = resource === Resource.AgentDef ? agentPath(ctx.namespace, name) : resource === Resource.Secret ? secretPath(ctx.namespace, name) : tokenPath(ctx.namespace, name);
  await ctx.client.request("DELETE", path);
  out(`${resource} "${name}" deleted\n`);
}

export async function create(ctx: Ctx, words: string[]) {
  const resource = resourceOf(words[0], "create");
  const format = ctx.output === undefined ? undefined : outputFormat(ctx.output);
  if (resource === Resource.Token) {
    const created = await ctx.client.request<{ token: string }>("POST", tokenPath(ctx.namespace), { metadata: { name: ctx.name ?? words[1] ?? "token" } });
    if (format && format !== "table") return printObject(created, format);
    return out(`${created.token}\n`);
  }
  if (resource === Resource.Secret) {
    const name = words[1];
    if (!name) throw new CliError("pai create secret needs a name: pai create secret NAME --from-literal KEY=VALUE", 2);
    if (!ctx.literals.length) throw new CliError("pai create secret needs at least one --from-literal KEY=VALUE", 2);
    const stringData: Record<string, string> = {};
    for (const l of ctx.literals) {
      const eq = l.indexOf("=");
      if (eq <= 0) throw new CliError(`--from-literal must be KEY=VALUE (got "${l}")`, 2);
      stringData[l.slice(0, eq)] = l.slice(eq + 1);
    }
    const body = { metadata: { name }, stringData };
    // As kubectl: create refuses a name that is taken (the server says 409); --overwrite replaces it.
    if (!ctx.overwrite) {
      await ctx.client.request("POST", secretPath(ctx.namespace), body);
      return out(`secret/${name} created\n`);
    }
    const { status } = await ctx.client.send("PUT", secretPath(ctx.namespace, name), body);
    return out(`secret/${name} ${status === 201 ? "created" : "configured"}\n`);
  }
  throw new CliError("pai create makes a token or a secret; agents are made with pai apply -f FILE", 2);
}
