/**
 * `pai get deliveries AGENT`: the agent's delivery log (GET …/agents/{name}/deliveries), newest
 * first, every page of it (an agent keeps at most 1000 entries), so a user can see whether a
 * sender's delivery arrived, what it was answered and why a refused one was refused.
 */
import { CliError, type Client } from "./client";
import { outputFormat, printObject, table } from "./format";
import { agentPath } from "./resources";
import type { DeliveryListObject, DeliveryObject } from "../api/openapi/schemas";


const PAGE = 500;
const out = (s: string) => process.stdout.write(s);
/** ISO time to the second: the column stays narrow, the order is the log's. */
const second = (iso: string) => iso.replace(/\.\d+Z$/, "Z");
/** One line, whatever a sender put in its headers. */
const cell = (s: string | undefined, none = "<none>") => (s === undefined || s === "" ? none : s.replace(/\s+/g, " "));

export async function getDeliveries(ctx: { client: Client; namespace: string; output: unknown }, agent: string | undefined) {
  if (!agent) throw new CliError("pai get deliveries needs an agent: pai get deliveries AGENT [-n NS]", 2);
  const format = outputFormat(ctx.output);
  const path = `${agentPath(ctx.namespace, agent)}/deliveries`;
  let list: DeliveryListObject | undefined;
  for (let next: string | undefined; ; ) {
    const page = await ctx.client.request<DeliveryListObject>("GET", `${path}?limit=${PAGE}${next ? `&continue=${encodeURIComponent(next)}` : ""}`);
    if (list) list.items.push(...page.items);
    else list = page;
    next = page.metadata.continue;
    if (!next || !page.items.length) break;
  }
  list!.metadata = {};
  if (format !== "table") return printObject(list, format);
  if (!list!.items.length) return out(`No deliveries found for agent ${agent} in namespace ${ctx.namespace}.\n`);
  return out(
    table(
      ["TIME", "SENDER", "DELIVERY", "CODE", "SESSION", "REASON"],
      list!.items.map((d) => [second(d.time), d.sender, cell(d.delivery), String(d.code), cell(d.session), cell(d.reason, "")]),
    ),
  );
}
