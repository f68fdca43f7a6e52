/**
 * `pai console`: the web console's address on the server the CLI talks to, opened in the browser
 * when there is one to open (a desktop session), printed either way. The console asks for an
 * access token when it opens; the token is never put in the URL (it would end up in the browser's
 * history and the server's logs), so this says where the admin token is instead.
 */
import { CliError, createClient } from "./client";

/** The program that opens a URL in the desktop's browser, if this is a desktop. */
function opener(env: Record<string, string | undefined>): string[] | undefined {
  if (process.platform === "darwin") return ["open"];
  if (!env.DISPLAY && !env.WAYLAND_DISPLAY) return undefined;
  const xdg = Bun.which("xdg-open");
  return xdg ? [xdg] : undefined;
}

export async function openConsole(opts: { server?: string; token?: string; words: string[]; env?: Record<string, string | undefined> }): Promise<void> {
  if (opts.words.length) throw new CliError(`pai console takes no arguments (got "${opts.words[0]}")`, 2);
  const client = createClient({ server: opts.server, token: opts.token });
  const url = `${client.server}/console`;
  // The server must be there (and serve the console): a link to nothing helps nobody.
  let res: Response;
  try {
    res = await client.fetch(url);
  } catch (err) {
    throw new CliError(`no pai server answers at ${client.server} (${(err as Error).message}): start one with pai serve, or pass --server`);
  }
  if (!res.ok) throw new CliError(`${url} answered ${res.status}: this server has no console (an older pai?)`);
  await res.arrayBuffer();
  process.stdout.write(`${url}\n`);
  process.stderr.write("Sign in with an access token: the admin token is in <data-dir>/admin-token on the server's machine (pai create token -n NS makes a namespace's).\n");
  const cmd = opener(opts.env ?? process.env);
  if (cmd && process.stdout.isTTY) Bun.spawn([...cmd, url], { stdin: "ignore", stdout: "ignore", stderr: "ignore" }).unref();
}
