/**
 * `pai kubeconfig [-n NS] [--server URL] [--certificate-authority FILE]`: a kubeconfig that kubectl,
 * client-go tools and @kubernetes/client-node use as it is (`KUBECONFIG=file kubectl get agents`).
 *
 * Where the CA comes from: the local server registers its CA (public) beside its address in the
 * context file (config/context.ts), so the CLI on the server's machine knows it with no request and
 * no endpoint that hands a CA to whoever asks over an unverified connection. For a server elsewhere,
 * --certificate-authority FILE gives it (kubectl's own flag name); without any, the kubeconfig
 * trusts the system's CAs, as kubectl does for a publicly trusted certificate.
 *
 * The token: the admin token, or with -n a new PaiAccessToken of that namespace (made through the
 * tokens API, so it shows up in `pai get tokens -n NS` and can be revoked there). Either way the
 * server is asked once over the very connection kubectl will use, so a kubeconfig that would not
 * work (wrong CA, a name the certificate lacks, a bad token) is never printed.
 */
import { readFileSync } from "node:fs";
import { pemCertificates } from "../lib/tls";
import { CliError, createClient, type Client } from "./client";
import { printObject } from "./format";
import { tokenPath } from "./resources";

export interface KubeconfigOptions {
  server?: string;
  token?: string;
  /** The namespace for the context; `namespaceToken`: -n was given, so a namespace token is made. */
  namespace: string;
  namespaceToken: boolean;
  caFile?: string;
  output?: unknown;
}

function readCa(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new CliError(`--certificate-authority ${file}: ${(err as { code?: string }).code === "ENOENT" ? "no such file" : (err as Error).message}`, 2);
  }
  const certs = pemCertificates(text);
  if (!certs.length) throw new CliError(`--certificate-authority ${file}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)`, 2);
  return certs.join("");
}

/** The server's answer, with a hint when TLS verification is what failed. */
async function ask<T>(client: Client, method: string, path: string, body?: unknown): Promise<T> {
  try {
    return await client.request<T>(method, path, body);
  } catch (err) {
    if (err instanceof CliError && /certificate|verify|self[- ]signed|altname|hostname|ERR_TLS|CERT_/i.test(err.message))
      throw new CliError(
        `${err.message} (${client.ca ? "the certificate does not match the CA or the address: pass --server with a name the certificate has" : "pass --certificate-authority FILE with the CA of the server's certificate"})`,
      );
    throw err;
  }
}

export async function kubeconfig(opts: KubeconfigOptions): Promise<void> {
  if (opts.output !== undefined && opts.output !== "yaml" && opts.output !== "json") throw new CliError(`-o must be yaml or json (got "${String(opts.output)}")`, 2);
  const ca = opts.caFile ? readCa(opts.caFile) : undefined;
  const client = createClient({ server: opts.server, token: opts.token, ca });
  if (new URL(client.server).protocol !== "https:")
    throw new CliError(
      `the pai server at ${client.server} serves plain HTTP, and kubectl sends a token only over HTTPS: start it with pai serve --tls (or --tls-cert-file and --tls-private-key-file), or pass --server with its https:// address`,
    );
  if (!client.token) throw new CliError("no admin token: pass --token or PAI_TOKEN (on the server's machine the CLI reads it from the data dir)");

  let token: string;
  let user: string;
  if (opts.namespaceToken) {
    const created = await ask<{ token: string }>(client, "POST", tokenPath(opts.namespace), { metadata: { name: "kubeconfig" } });
    token = created.token;
    user = `pai-${opts.namespace}`;
  } else {
    // Admin-only: proves the admin token and the connection before printing them.
    await ask(client, "GET", tokenPath(opts.namespace));
    token = client.token;
    user = "pai-admin";
  }
  const context = opts.namespaceToken ? `pai-${opts.namespace}` : "pai";
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "pai", cluster: { server: client.server, ...(client.ca ? { "certificate-authority-data": Buffer.from(client.ca).toString("base64") } : {}) } }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: context, context: { cluster: "pai", user, namespace: opts.namespace } }],
    "current-context": context,
  };
  if (!client.ca) process.stderr.write(`note: no CA is known for ${client.server}; the kubeconfig trusts the system's CAs (pass --certificate-authority FILE for a private CA)\n`);
  printObject(config, opts.output === "json" ? "json" : "yaml");
}
