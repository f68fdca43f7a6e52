/** Session file verbs: pai files SESSION (what the agent left in its folder), pai cp SESSION:PATH LOCAL. */
import { renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { CliError, type Client } from "./client";
import { outputFormat, printObject, table } from "./format";

export interface FilesCtx {
  client: Client;
  namespace: string;
  output: unknown;
}

interface FileView {
  path: string;
  size: number;
  modifiedAt: string;
}

const q = (ns: string) => `namespace=${encodeURIComponent(ns)}`;

/** An agent chose these names: control characters (a terminal's escape sequences among them) are shown escaped, never sent to the terminal. */
const printable = (name: string) => name.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);

export async function listFiles(ctx: FilesCtx, words: string[]) {
  const name = words[0];
  if (!name || words.length > 1) throw new CliError("usage: pai files SESSION [-n NAMESPACE]", 2);
  const format = outputFormat(ctx.output);
  const list = await ctx.client.request<{ files: FileView[]; truncated: boolean }>("GET", `/agents/${encodeURIComponent(name)}/files?${q(ctx.namespace)}`);
  if (format !== "table") return printObject(list, format);
  if (!list.files.length) process.stdout.write("No files found.\n");
  else process.stdout.write(table(["PATH", "SIZE", "MODIFIED"], list.files.map((f) => [printable(f.path), String(f.size), f.modifiedAt])));
  if (list.truncated) process.stderr.write(`(the list was cut at ${list.files.length} files)\n`);
}

/** `SESSION:PATH` → its parts; the path as the URL wants it, each component encoded. */
function parseSource(arg: string): { session: string; path: string } {
  const colon = arg.indexOf(":");
  const session = colon > 0 ? arg.slice(0, colon) : "";
  const path = colon > 0 ? arg.slice(colon + 1).replace(/^\/+/, "") : "";
  if (!session || !path) throw new CliError(`pai cp: the source must be SESSION:PATH, a path in the session's folder (got "${arg}")`, 2);
  return { session, path };
}

const isDir = (p: string) => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
};

export async function copyFile(ctx: FilesCtx, words: string[]) {
  if (words.length !== 2) throw new CliError("usage: pai cp SESSION:PATH LOCAL [-n NAMESPACE] (LOCAL: a file, a folder, or - for stdout)", 2);
  const { session, path } = parseSource(words[0]!);
  const local = words[1]!;
  const url = `${ctx.client.server}/agents/${encodeURIComponent(session)}/files/${path.split("/").map(encodeURIComponent).join("/")}?${q(ctx.namespace)}`;
  let res: Response;
  try {
    res = await ctx.client.fetch(url, { headers: ctx.client.authHeader() });
  } catch (err) {
    throw new CliError(`cannot reach the pai server at ${ctx.client.server}: ${(err as Error).message}`);
  }
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { message?: string };
    throw new CliError(body.message ?? `HTTP ${res.status}`);
  }
  if (local === "-") {
    await Bun.write(Bun.stdout, res);
    return;
  }
  // As cp: into a folder under the file's own name, else to (and over) the file named.
  if (local.endsWith("/") && !isDir(local)) throw new CliError(`pai cp: ${local} is not a folder`);
  const dest = isDir(local) ? join(local, basename(path)) : local;
  if (isDir(dest)) throw new CliError(`pai cp: ${dest} is a folder`);
  // Written beside it and renamed over it: a failed download leaves the old file as it was.
  const tmp = join(dirname(dest), `.${basename(dest)}.pai-cp-${randomBytes(6).toString("hex")}`);
  try {
    await Bun.write(tmp, res);
    renameSync(tmp, dest);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new CliError(`pai cp: failed to write ${dest}: ${(err as Error).message}`);
  }
}
