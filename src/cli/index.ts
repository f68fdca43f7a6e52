/** `pai <verb>`: argv → command. Usage errors exit 2, failures 1, with one line on stderr. */
import { parseArgs, UsageError, type FlagSpec } from "../lib/args";
import { DEFAULT_NAMESPACE, dnsLabelProblem } from "../domain/names";
import { CliError, createClient } from "./client";
import { apply, create, get, remove, type Ctx } from "./commands";
import { cancel, getSessions, logs, run, type SessionCtx } from "./sessions";
import { copyFile, listFiles } from "./files";
import { getDeliveries } from "./deliveries";

const FLAGS: FlagSpec = {
  server: {},
  token: {},
  namespace: { short: "n" },
  "all-namespaces": { short: "A", boolean: true },
  output: { short: "o" },
  filename: { short: "f", multiple: true },
  name: {},
  "from-literal": { multiple: true },
  overwrite: { boolean: true },
  env: { multiple: true },
  wait: { short: "w", boolean: true },
  follow: { boolean: true },
  "certificate-authority": {},
  url: {},
  help: { short: "h", boolean: true },
};

export const HELP = `pai — run AI agents on your own machine and start them from webhooks.

Usage:
  pai serve [flags]                      serve the API, controller and manifests watcher (pai serve -h)
  pai apply -f FILE|DIR|-                create or update the Agents in YAML files
  pai get agent-defs [-A]                list agents
  pai get agent-def NAME [-o yaml|json]  show one agent, with its Webhook URL
  pai delete agent-def NAME              delete an agent and its webhook secret
  pai delete -f FILE                     delete the agents a file defines
  pai get secrets | secret NAME          list or show secrets
  pai delete secret NAME                 delete a secret (pai-webhook-NAME: rotates the token)
  pai create secret NAME --from-literal KEY=VALUE [--overwrite]
                                         store a secret; --overwrite replaces one that exists
  pai create token [--name NAME]         make a PaiAccessToken for the namespace (printed once)
  pai get tokens | delete token ID       list or revoke access tokens
  pai run AGENT "prompt" [--wait] [--env NAME=VALUE]
                                         start a session; --wait follows it and exits 0 if it completes
  pai get sessions [-A] | session NAME   list sessions, or show one (-o yaml|json)
  pai get deliveries AGENT               the agent's webhook deliveries, newest first: accepted and
                                         refused, with the answer's code, session and reason
  pai logs SESSION [-f]                  print a session's events; -f follows until it closes
  pai cancel SESSION                     cancel a Pending or Running session
  pai files SESSION                      list the files in a session's working folder
  pai cp SESSION:PATH LOCAL              download a session's file (LOCAL: a file, a folder, or -)
  pai kubeconfig [-n NS] [--certificate-authority FILE]
                                         print a kubeconfig for kubectl (needs pai serve --tls); with
                                         -n, a new token of namespace NS instead of the admin token
  pai console                            print (and, on a desktop, open) the web console's address
  pai health [--url URL]                 exit 0 if the server's /readyz answers 200 within 2 s, else 1
                                         (default URL http://127.0.0.1:$PAI_PORT/readyz, port 8080)
  pai version

Flags:
  -n, --namespace NS     namespace (default "default")
  -A, --all-namespaces   list across namespaces
  -o, --output FORMAT    yaml or json
      --server URL       server address (PAI_SERVER; default: the local server, else http://127.0.0.1:8080)
      --token TOKEN      admin token (PAI_TOKEN; default: read from the local server's data dir)
`;

export async function runCli(argv: string[], version: string): Promise<number> {
  try {
    // `-f` means --filename (apply, delete) except in `pai logs -f`, where it means --follow, as in kubectl.
    const isLogs = argv.find((a) => !a.startsWith("-")) === "logs";
    const { flags, positionals } = parseArgs(argv, isLogs ? { ...FLAGS, filename: {}, follow: { short: "f", boolean: true } } : FLAGS);
    const [verb, ...words] = positionals;
    if (flags.help || !verb || verb === "help") {
      process.stdout.write(HELP);
      return verb || flags.help ? 0 : 2;
    }
    if (verb === "version" || verb === "--version") {
      process.stdout.write(`pai ${version}\n`);
      return 0;
    }
    if (verb === "health") {
      if (words.length) throw new CliError(`pai health takes no arguments (got "${words[0]}")`, 2);
      const { health } = await import("./health");
      return await health(flags.url as string | undefined);
    }
    const namespace = (flags.namespace as string | undefined) ?? DEFAULT_NAMESPACE;
    const nsProblem = dnsLabelProblem(namespace);
    if (nsProblem) throw new CliError(`-n: ${nsProblem}`, 2);
    const ctx: Ctx = {
      client: createClient({ server: flags.server as string | undefined, token: flags.token as string | undefined }),
      namespace,
      allNamespaces: !!flags["all-namespaces"],
      output: flags.output,
      files: (flags.filename as string[] | undefined) ?? [],
      name: flags.name as string | undefined,
      literals: (flags["from-literal"] as string[] | undefined) ?? [],
      overwrite: !!flags.overwrite,
    };
    const sctx: SessionCtx = { ...ctx, env: (flags.env as string[] | undefined) ?? [], wait: !!flags.wait, follow: !!flags.follow };
    switch (verb) {
      case "kubeconfig": {
        if (words.length) throw new CliError(`pai kubeconfig takes no arguments (got "${words[0]}")`, 2);
        const { kubeconfig } = await import("./kubeconfig");
        await kubeconfig({ server: flags.server as string | undefined, token: flags.token as string | undefined, namespace, namespaceToken: flags.namespace !== undefined, caFile: flags["certificate-authority"] as string | undefined, output: flags.output });
        return 0;
      }
      case "console": {
        const { openConsole } = await import("./console");
        await openConsole({ server: flags.server as string | undefined, token: flags.token as string | undefined, words });
        return 0;
      }
      case "run":
        return await run(sctx, words);
      case "logs":
        return await logs(sctx, words);
      case "cancel":
        await cancel(sctx, words);
        return 0;
      case "files":
        await listFiles(ctx, words);
        return 0;
      case "cp":
        await copyFile(ctx, words);
        return 0;
      case "apply":
        await apply(ctx);
        return 0;
      case "get":
        if (/^sessions?$/.test(words[0] ?? "")) await getSessions(sctx, words[1]);
        else if (/^deliver(y|ies)$/.test(words[0] ?? "")) await getDeliveries(ctx, words[1]);
        else await get(ctx, words);
        return 0;
      case "delete":
        await remove(ctx, words);
        return 0;
      case "create":
        await create(ctx, words);
        return 0;
      default:
        throw new CliError(`unknown command "${verb}" (see pai help)`, 2);
    }
  } catch (err) {
    if (err instanceof CliError || err instanceof UsageError) {
      process.stderr.write(`error: ${err.message}\n`);
      return err instanceof CliError ? err.exitCode : 2;
    }
    throw err;
  }
}
