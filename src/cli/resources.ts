/** Resource names the CLI accepts, kubectl style (singular, plural and short forms). */
import { CliError } from "./client";

export const Resource = { AgentDef: "agent-def", Secret: "secret", Token: "token" } as const;
export type Resource = (typeof Resource)[keyof typeof Resource];

const aliases: Record<string, Resource> = {};
for (const a of ["agent-def", "agent-defs", "agentdef", "agentdefs", "agent-definition", "agent-definitions", "agentdefinition", "agentdefinitions"])
  aliases[a] = Resource.AgentDef;
for (const a of ["secret", "secrets"]) aliases[a] = Resource.Secret;
for (const a of ["token", "tokens", "accesstoken", "accesstokens", "paiaccesstoken", "paiaccesstokens"]) aliases[a] = Resource.Token;

export function resourceOf(word: string | undefined, verb: string): Resource {
  if (!word) throw new CliError(`pai ${verb} needs a resource: agent-def, secret or token`, 2);
  const r = aliases[word.toLowerCase()];
  if (!r) throw new CliError(`unknown resource "${word}" for pai ${verb}: use agent-def, secret or token`, 2);
  return r;
}

export const agentPath = (ns: string, name?: string) => `/apis/pai.io/v1/namespaces/${encodeURIComponent(ns)}/agents${name ? `/${encodeURIComponent(name)}` : ""}`;
export const secretPath = (ns: string, name?: string) => `/api/v1/namespaces/${encodeURIComponent(ns)}/secrets${name ? `/${encodeURIComponent(name)}` : ""}`;
export const tokenPath = (ns: string, id?: string) => `/apis/pai.io/v1/namespaces/${encodeURIComponent(ns)}/accesstokens${id ? `/${encodeURIComponent(id)}` : ""}`;
