/**
 * TLS end to end: `pai serve --tls` makes a CA and a serving certificate in the data dir and keeps
 * them, makes the serving certificate again when its names change; an operator's certificate
 * (--tls-cert-file, --tls-private-key-file, --tls-ca-file) is served, and bad files stop the server
 * with the flag's name; `pai kubeconfig` prints a kubeconfig that the real kubectl uses as it is.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { hostname } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { agentYaml, removeDir, runCli, startServer, tempDir, type TestServer } from "../helpers";
import { HAVE_KUBECTL, KUBECTL, startKubeServer, warnSkippedWithoutKubectl, type KubeServer } from "../kube";
import { certificateNames, ensureGeneratedTls, generateCa, issueServingCertificate, sanProblem, servingNames, TlsError } from "../../src/lib/tls";

warnSkippedWithoutKubectl("test/e2e/tls.test.ts: kubectl with the kubeconfig of `pai kubeconfig` (admin and -n tokens, operator certificates)");

const mode = (file: string) => statSync(file).mode & 0o777;
const cert = (file: string) => new X509Certificate(readFileSync(file));
const DAY = 86_400_000;

/** Runs the real kubectl with only this kubeconfig (and a HOME of its own). */
async function kubectlWith(kubeconfig: string, args: string[]) {
  const home = tempDir("pai-kubectl-home-");
  try {
    const proc = Bun.spawn([KUBECTL!, ...args], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, KUBECONFIG: kubeconfig }, stdout: "pipe", stderr: "pipe" });
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { code, stdout, stderr };
  } finally {
    removeDir(home);
  }
}

/** `pai serve` with these flags that must fail before listening: its exit code and stderr. */
async function serveFails(args: string[], env: Record<string, string> = {}) {
  const dataDir = tempDir("pai-data-");
  try {
    return await runCli(["serve", "--port", "0", "--host", "127.0.0.1", "--data-dir", dataDir, ...args], { env });
  } finally {
    removeDir(dataDir);
  }
}

describe("pai serve --tls: the data dir's CA and serving certificate", () => {
  let server: TestServer;
  let dataDir: string;
  const tls = () => join(dataDir, "tls");

  beforeAll(async () => {
    dataDir = tempDir("pai-tls-data-");
    server = await startServer({ dataDir, args: ["--tls"] });
  });
  afterAll(async () => {
    await server?.stop();
    removeDir(dataDir);
  });

  test("the start log says https://, and webhook URLs default to https", () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(server.logs()).toMatch(/listening on https:\/\/127\.0\.0\.1:\d+ publicUrl=https:\/\/localhost:\d+/);
    expect(server.logs()).toContain("created a CA for TLS");
  });

  test("ca.crt, ca.key (0600), server.crt, server.key (0600) in <data-dir>/tls (0700)", () => {
    expect(mode(tls())).toBe(0o700);
    expect(mode(join(tls(), "ca.key"))).toBe(0o600);
    expect(mode(join(tls(), "server.key"))).toBe(0o600);
    expect(mode(join(tls(), "ca.crt"))).toBe(0o644);
    expect(mode(join(tls(), "server.crt"))).toBe(0o644);
  });

  test("an ECDSA P-256 CA for 10 years and a serving certificate it signed, for 1 year, with the loopback and host names", () => {
    const ca = cert(join(tls(), "ca.crt"));
    const leaf = cert(join(tls(), "server.crt"));
    expect(ca.ca).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(ca.publicKey.asymmetricKeyDetails).toEqual({ namedCurve: "prime256v1" });
    expect(leaf.publicKey.asymmetricKeyDetails).toEqual({ namedCurve: "prime256v1" });
    expect(leaf.checkIssued(ca) && leaf.verify(ca.publicKey)).toBe(true);
    const caDays = (new Date(ca.validTo).getTime() - Date.now()) / DAY;
    const leafDays = (new Date(leaf.validTo).getTime() - Date.now()) / DAY;
    expect(caDays).toBeGreaterThan(3640);
    expect(caDays).toBeLessThan(3651);
    expect(leafDays).toBeGreaterThan(360);
    expect(leafDays).toBeLessThan(366);
    const names = certificateNames(leaf);
    for (const n of ["localhost", "127.0.0.1", "::1"]) expect(names).toContain(n);
    if (!sanProblem(hostname().toLowerCase())) expect(names).toContain(hostname().toLowerCase());
    expect(leaf.checkPrivateKey(createPrivateKey(readFileSync(join(tls(), "server.key"))))).toBe(true);
  });

  test("https works with the CA; without it, and over plain http, the connection fails", async () => {
    const ca = readFileSync(join(tls(), "ca.crt"), "utf8");
    const res = await fetch(`${server.url}/healthz`, { tls: { ca } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
    await expect(fetch(`${server.url.replace("https:", "http:")}/healthz`)).rejects.toThrow();
  });

  test("the CLI on this machine talks to it over verified TLS (the CA from the context file)", async () => {
    const applied = await server.cli(["apply", "-f", "-"], { stdin: agentYaml("tls-agent") });
    expect(applied.stderr).toBe("");
    expect(applied.code).toBe(0);
    const got = await server.cli(["get", "agent-def", "tls-agent"]);
    expect(got.code).toBe(0);
    expect(got.stdout).toMatch(/^Webhook URL https:\/\/localhost:\d+\/webhooks\/default\/tls-agent\/[0-9a-f]{64}$/m);
  });

  test("a restart reuses every file; a new --tls-san makes a new serving certificate from the same CA", async () => {
    const before = Object.fromEntries(["ca.crt", "ca.key", "server.crt", "server.key"].map((f) => [f, readFileSync(join(tls(), f), "utf8")]));
    await server.stop();
    server = await startServer({ dataDir, args: ["--tls"] });
    for (const f of Object.keys(before)) expect(readFileSync(join(tls(), f), "utf8")).toBe(before[f]!);
    expect(server.logs()).toContain("serving TLS with the certificate in the data dir");
    expect(server.logs()).not.toContain("created a CA");

    await server.stop();
    server = await startServer({ dataDir, args: ["--tls", "--tls-san", "pai.example.test,10.1.2.3"], env: { PAI_PUBLIC_URL: "https://hooks.example.test" } });
    expect(readFileSync(join(tls(), "ca.crt"), "utf8")).toBe(before["ca.crt"]!);
    expect(readFileSync(join(tls(), "ca.key"), "utf8")).toBe(before["ca.key"]!);
    expect(readFileSync(join(tls(), "server.crt"), "utf8")).not.toBe(before["server.crt"]!);
    expect(server.logs()).toMatch(/renewed the TLS serving certificate: names changed \(added 10\.1\.2\.3, hooks\.example\.test, pai\.example\.test\)/);
    const leaf = cert(join(tls(), "server.crt"));
    expect(certificateNames(leaf)).toEqual(expect.arrayContaining(["pai.example.test", "10.1.2.3", "hooks.example.test", "localhost"]));
    expect(leaf.verify(cert(join(tls(), "ca.crt")).publicKey)).toBe(true);
    expect(mode(join(tls(), "server.key"))).toBe(0o600);
    // A client that trusted the CA before still trusts the server.
    const res = await fetch(`${server.url}/healthz`, { tls: { ca: before["ca.crt"]! } });
    expect(res.status).toBe(200);
  });

  test("a CA without its key stops the server (exit 1) rather than silently replacing it", async () => {
    await server.stop();
    const key = readFileSync(join(tls(), "ca.key"));
    unlinkSync(join(tls(), "ca.key"));
    try {
      const r = await runCli(["serve", "--port", "0", "--host", "127.0.0.1", "--data-dir", dataDir, "--tls"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`error: ${join(tls(), "ca.key")} is missing beside ${join(tls(), "ca.crt")}`);
      expect(r.stderr).toContain(`remove ${tls()} to make a new CA`);
    } finally {
      writeFileSync(join(tls(), "ca.key"), key, { mode: 0o600 });
    }
    server = await startServer({ dataDir, args: ["--tls"] });
  });
});

describe("ensureGeneratedTls: when the serving certificate is made again", () => {
  test("30 days before it expires, from the same CA; not before", async () => {
    const dir = join(tempDir("pai-tls-unit-"), "tls");
    try {
      const names = ["127.0.0.1", "::1", "localhost"];
      const first = await ensureGeneratedTls(dir, names);
      expect(first.action).toBe("created");
      expect(first.caCreated).toBe(true);
      const later = await ensureGeneratedTls(dir, names, new Date(Date.now() + 300 * DAY));
      expect(later.action).toBe("reused");
      expect(later.cert).toBe(first.cert);
      const late = await ensureGeneratedTls(dir, names, new Date(Date.now() + 340 * DAY));
      expect(late.action).toBe("renewed");
      expect(late.reason).toMatch(/^it expires /);
      expect(late.ca).toBe(first.ca);
      expect(late.cert).not.toBe(first.cert);
      // A name removed is a change too: the certificate names exactly what is configured.
      const fewer = await ensureGeneratedTls(dir, ["127.0.0.1", "localhost"]);
      expect(fewer.action).toBe("renewed");
      expect(fewer.reason).toBe("names changed (removed ::1)");
      // A serving key that does not match its certificate (a crash between the two writes).
      writeFileSync(join(dir, "server.key"), (await issueServingCertificate({ names })).key);
      const mended = await ensureGeneratedTls(dir, ["127.0.0.1", "localhost"]);
      expect(mended.reason).toBe("server.key does not belong to server.crt");
      // A CA key that is not the CA's: refused, with the way out.
      writeFileSync(join(dir, "ca.key"), (await generateCa({ commonName: "other" })).key);
      await expect(ensureGeneratedTls(dir, names)).rejects.toThrow(TlsError);
      await expect(ensureGeneratedTls(dir, names)).rejects.toThrow(/ca\.key does not belong to ca\.crt\): remove .* to make a new CA/);
    } finally {
      removeDir(join(dir, ".."));
    }
  });
});

test("servingNames: loopback, the host name if it is a DNS name, a specific --host, the public URL's host, --tls-san", () => {
  expect(servingNames({ host: "0.0.0.0", hostname: "my_box", publicUrl: "https://[2001:db8:0::1]:8443/x", extra: ["A.Example.test", "10.0.0.7"] })).toEqual(
    ["10.0.0.7", "127.0.0.1", "2001:db8::1", "::1", "a.example.test", "localhost"],
  );
  expect(servingNames({ host: "192.0.2.10", hostname: "pai-box", publicUrl: "http://hooks.example.test" })).toEqual(["127.0.0.1", "192.0.2.10", "::1", "hooks.example.test", "localhost", "pai-box"]);
  expect(servingNames({ host: "::" })).toEqual(["127.0.0.1", "::1", "localhost"]);
});

describe("bad TLS flags and files stop pai serve with exit 2 and the flag's name", () => {
  let dir: string;
  let certFile: string;
  let keyFile: string;
  let otherKey: string;
  beforeAll(async () => {
    dir = tempDir("pai-tls-bad-");
    const made = await issueServingCertificate({ names: ["127.0.0.1"] });
    certFile = join(dir, "server.crt");
    keyFile = join(dir, "server.key");
    otherKey = join(dir, "other.key");
    writeFileSync(certFile, made.cert);
    writeFileSync(keyFile, made.key, { mode: 0o600 });
    writeFileSync(otherKey, (await issueServingCertificate({ names: ["127.0.0.1"] })).key, { mode: 0o600 });
    writeFileSync(join(dir, "garbage.crt"), "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n");
    writeFileSync(join(dir, "empty.crt"), "hello\n");
    writeFileSync(join(dir, "encrypted.key"), "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n", { mode: 0o600 });
  });
  afterAll(() => removeDir(dir));

  const cases: [string, () => string[], RegExp, Record<string, string>?][] = [
    ["a certificate without its key", () => ["--tls-cert-file", certFile], /--tls-cert-file and --tls-private-key-file go together .*: --tls-private-key-file is missing/],
    ["a key without its certificate (env twin)", () => [], /--tls-private-key-file go together .*: --tls-cert-file is missing/, { PAI_TLS_PRIVATE_KEY_FILE: "/nonexistent.key" }],
    ["a certificate file that is not there", () => ["--tls-cert-file", join(dir, "nope.crt"), "--tls-private-key-file", keyFile], /error: --tls-cert-file .*nope\.crt: no such file/],
    ["a certificate file without a certificate", () => ["--tls-cert-file", join(dir, "empty.crt"), "--tls-private-key-file", keyFile], /error: --tls-cert-file .*empty\.crt: no PEM certificate in it/],
    ["a certificate that is not X.509", () => ["--tls-cert-file", join(dir, "garbage.crt"), "--tls-private-key-file", keyFile], /error: --tls-cert-file .*garbage\.crt: certificate 1 is not valid X\.509/],
    ["a key file that is a certificate", () => ["--tls-cert-file", certFile, "--tls-private-key-file", certFile], /error: --tls-private-key-file .*server\.crt: not a PEM private key/],
    ["a key with a passphrase", () => ["--tls-cert-file", certFile, "--tls-private-key-file", join(dir, "encrypted.key")], /error: --tls-private-key-file .*encrypted\.key: the key is encrypted with a passphrase/],
    ["the key of another certificate", () => ["--tls-cert-file", certFile, "--tls-private-key-file", otherKey], /error: --tls-private-key-file .*other\.key is not the key of the certificate in --tls-cert-file/],
    ["a CA file that did not issue the certificate", () => ["--tls-cert-file", certFile, "--tls-private-key-file", keyFile, "--tls-ca-file", certFile], /error: --tls-ca-file .*server\.crt did not issue any certificate in --tls-cert-file/],
    ["--tls-ca-file alone", () => ["--tls", "--tls-ca-file", certFile], /error: --tls-ca-file names the CA of --tls-cert-file/],
    ["--tls-san without --tls", () => ["--tls-san", "a.example"], /error: --tls-san adds names to the certificate of --tls: pass --tls too/],
    ["--tls-san with an operator's certificate", () => ["--tls-cert-file", certFile, "--tls-private-key-file", keyFile, "--tls-san", "a.example"], /error: --tls-san adds names to the certificate pai makes/],
    ["a --tls-san that is no name", () => ["--tls", "--tls-san", "a.example,bad name"], /error: --tls-san: "bad name" is neither an IP address nor a DNS name/],
    ["PAI_TLS that is not a boolean", () => [], /error: PAI_TLS must be true or false \(got "maybe"\)/, { PAI_TLS: "maybe" }],
  ];
  for (const [what, args, message, env] of cases)
    test(what, async () => {
      const r = await serveFails(args(), env);
      expect(r.stderr).toMatch(message);
      expect(r.code).toBe(2);
    });
});

/** A CA and a server certificate it signed, as an operator would have them from their own PKI. */
async function operatorPki(dir: string, names = ["127.0.0.1", "localhost"]) {
  const ca = await generateCa({ commonName: "Example Corp Root CA" });
  const leaf = await issueServingCertificate({ names, ca, commonName: "pai.example.test" });
  const files = { ca: join(dir, "ca.pem"), chain: join(dir, "chain.pem"), leaf: join(dir, "leaf.pem"), key: join(dir, "leaf.key") };
  writeFileSync(files.ca, ca.cert);
  writeFileSync(files.chain, leaf.cert + ca.cert);
  writeFileSync(files.leaf, leaf.cert);
  writeFileSync(files.key, leaf.key, { mode: 0o600 });
  return { ca, leaf, files };
}

const caData = (kubeconfigYaml: string) => Buffer.from(parse(kubeconfigYaml).clusters[0].cluster["certificate-authority-data"], "base64").toString();

describe("an operator's certificate: --tls-cert-file, --tls-private-key-file, --tls-ca-file", () => {
  const dir = tempDir("pai-tls-operator-");
  afterAll(() => removeDir(dir));

  test("a chain file (server certificate, then its CA): served, and the kubeconfig trusts the chain's last certificate", async () => {
    const pki = await operatorPki(dir);
    const server = await startServer({ args: ["--tls-cert-file", pki.files.chain, "--tls-private-key-file", pki.files.key] });
    try {
      expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect(server.logs()).toContain("serving TLS with the certificate from --tls-cert-file");
      expect(existsSync(join(server.dataDir, "tls"))).toBe(false);
      const res = await fetch(`${server.url}/healthz`, { tls: { ca: pki.ca.cert } });
      expect(res.status).toBe(200);
      const kc = await server.cli(["kubeconfig"]);
      expect(kc.stderr).toBe("");
      expect(kc.code).toBe(0);
      expect(new X509Certificate(caData(kc.stdout)).fingerprint256).toBe(new X509Certificate(pki.ca.cert).fingerprint256);
      if (HAVE_KUBECTL) {
        const file = join(dir, "chain.kubeconfig");
        writeFileSync(file, kc.stdout, { mode: 0o600 });
        const r = await kubectlWith(file, ["get", "--raw", "/healthz"]);
        expect(r.stderr).toBe("");
        expect(r.stdout).toContain("ok");
      }
    } finally {
      await server.stop();
      removeDir(server.dataDir);
    }
  });

  test("a certificate file without its CA plus --tls-ca-file (env twins): the kubeconfig trusts that CA", async () => {
    const pki = await operatorPki(dir);
    const server = await startServer({ env: { PAI_TLS_CERT_FILE: pki.files.leaf, PAI_TLS_PRIVATE_KEY_FILE: pki.files.key, PAI_TLS_CA_FILE: pki.files.ca } });
    try {
      const kc = await server.cli(["kubeconfig"]);
      expect(kc.code).toBe(0);
      expect(caData(kc.stdout)).toBe(pki.ca.cert);
      if (HAVE_KUBECTL) {
        const file = join(dir, "ca-file.kubeconfig");
        writeFileSync(file, kc.stdout, { mode: 0o600 });
        const r = await kubectlWith(file, ["get", "--raw", "/healthz"]);
        expect(r.stderr).toBe("");
        expect(r.code).toBe(0);
      }
    } finally {
      await server.stop();
      removeDir(server.dataDir);
    }
  });

  test("a self-signed certificate: the kubeconfig trusts the certificate itself", async () => {
    const self = await issueServingCertificate({ names: ["127.0.0.1", "localhost"] });
    const certFile = join(dir, "self.pem");
    const keyFile = join(dir, "self.key");
    writeFileSync(certFile, self.cert);
    writeFileSync(keyFile, self.key, { mode: 0o600 });
    const server = await startServer({ args: ["--tls-cert-file", certFile, "--tls-private-key-file", keyFile] });
    try {
      const kc = await server.cli(["kubeconfig"]);
      expect(kc.code).toBe(0);
      expect(caData(kc.stdout)).toBe(self.cert);
      if (HAVE_KUBECTL) {
        const file = join(dir, "self.kubeconfig");
        writeFileSync(file, kc.stdout, { mode: 0o600 });
        const r = await kubectlWith(file, ["get", "--raw", "/healthz"]);
        expect(r.stderr).toBe("");
        expect(r.code).toBe(0);
      }
    } finally {
      await server.stop();
      removeDir(server.dataDir);
    }
  });

  test("a certificate that does not name 127.0.0.1: the server says so; pai kubeconfig explains the TLS failure", async () => {
    const pki = await operatorPki(dir, ["pai.example.test"]);
    const server = await startServer({ args: ["--tls-cert-file", pki.files.chain, "--tls-private-key-file", pki.files.key] });
    try {
      expect(server.logs()).toContain("the TLS certificate does not name 127.0.0.1");
      const kc = await server.cli(["kubeconfig"]);
      expect(kc.code).toBe(1);
      expect(kc.stdout).toBe("");
      expect(kc.stderr).toContain("pass --server with a name the certificate has");
    } finally {
      await server.stop();
      removeDir(server.dataDir);
    }
  });
});

describe("pai kubeconfig", () => {
  let k: KubeServer;
  beforeAll(async () => {
    k = await startKubeServer();
  });
  afterAll(async () => {
    await k?.stop();
    removeDir(k?.server.dataDir ?? "");
  });

  test("prints a kubeconfig: cluster pai (the https URL, the CA), the admin token, a context with the namespace", async () => {
    const text = readFileSync(k.kubeconfig, "utf8");
    const config = parse(text);
    expect(config).toEqual({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "pai", cluster: { server: k.url, "certificate-authority-data": Buffer.from(k.ca).toString("base64") } }],
      users: [{ name: "pai-admin", user: { token: k.server.token } }],
      contexts: [{ name: "pai", context: { cluster: "pai", user: "pai-admin", namespace: "default" } }],
      "current-context": "pai",
    });
    const json = await k.cli(["kubeconfig", "-o", "json"]);
    expect(JSON.parse(json.stdout)).toEqual(config);
  });

  test.skipIf(!HAVE_KUBECTL)("kubectl accepts it: config view, and a request over verified TLS with the token", async () => {
    const view = await k.kubectl(["config", "view", "-o", "json"]);
    expect(view.code).toBe(0);
    const v = JSON.parse(view.stdout);
    expect(v["current-context"]).toBe("pai");
    expect(v.clusters[0].cluster.server).toBe(k.url);
    expect(v.contexts[0].context.namespace).toBe("default");
    const healthz = await k.kubectl(["get", "--raw", "/healthz"]);
    expect(healthz.stderr).toBe("");
    expect(healthz.code).toBe(0);
    expect(healthz.stdout).toContain("ok");
    const version = await k.kubectl(["get", "--raw", "/version"]);
    expect(version.stderr).toBe("");
    expect(JSON.parse(version.stdout).gitVersion).toMatch(/^v1\.\d+\.\d+/);
    // The token travels: an admin-only route answers.
    const tokens = await k.kubectl(["get", "--raw", "/apis/pai.io/v1/namespaces/default/accesstokens"]);
    expect(tokens.stderr).toBe("");
    expect(JSON.parse(tokens.stdout).kind).toBe("PaiAccessTokenList");
  });

  test.skipIf(!HAVE_KUBECTL)("-n NS: a new token of NS that reads NS's sessions and gets 403 elsewhere", async () => {
    const file = await k.namespaceKubeconfig("team-a");
    const config = parse(readFileSync(file, "utf8"));
    const token = config.users[0].user.token as string;
    expect(token).toMatch(/^pai_[0-9a-f]{64}$/);
    expect(token).not.toBe(k.server.token);
    expect(config.users[0].name).toBe("pai-team-a");
    expect(config.contexts[0]).toEqual({ name: "pai-team-a", context: { cluster: "pai", user: "pai-team-a", namespace: "team-a" } });
    expect(config["current-context"]).toBe("pai-team-a");
    // Made through the tokens API: listed there, revocable there.
    const listed = await (await k.api("/apis/pai.io/v1/namespaces/team-a/accesstokens")).json();
    expect(listed.items.map((t: { metadata: { name: string } }) => t.metadata.name)).toContain("kubeconfig");

    const own = await k.kubectl(["get", "--raw", "/apis/pai.io/v1/namespaces/team-a/sessions"], { namespaceToken: "team-a" });
    expect(own.stderr).toBe("");
    expect(own.code).toBe(0);
    expect(JSON.parse(own.stdout).items).toEqual([]);
    const other = await k.kubectl(["get", "--raw", "/apis/pai.io/v1/namespaces/default/sessions"], { namespaceToken: "team-a" });
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/forbidden|Forbidden|403/);
    const admin = await k.kubectl(["get", "--raw", "/apis/pai.io/v1/namespaces/default/accesstokens"], { namespaceToken: "team-a" });
    expect(admin.code).toBe(1);
    expect(admin.stderr).toMatch(/forbidden|Forbidden|403/);
  });

  test("--certificate-authority: a server the context does not know is verified with the given CA; a wrong CA is refused with a hint", async () => {
    const dir = tempDir("pai-kc-ca-");
    try {
      const caFile = join(dir, "ca.crt");
      writeFileSync(caFile, k.ca);
      // A HOME without the context file: nothing but the flags tells the CLI about the server.
      const env = { HOME: dir, XDG_CONFIG_HOME: join(dir, ".config") };
      const ok = await runCli(["kubeconfig", "--server", k.url, "--token", k.server.token, "--certificate-authority", caFile], { env });
      expect(ok.stderr).toBe("");
      expect(ok.code).toBe(0);
      expect(caData(ok.stdout)).toBe(k.ca);
      const none = await runCli(["kubeconfig", "--server", k.url, "--token", k.server.token], { env });
      expect(none.code).toBe(1);
      expect(none.stderr).toContain("pass --certificate-authority FILE with the CA of the server's certificate");
      const wrongCa = join(dir, "wrong.crt");
      writeFileSync(wrongCa, (await generateCa({ commonName: "wrong" })).cert);
      const wrong = await runCli(["kubeconfig", "--server", k.url, "--token", k.server.token, "--certificate-authority", wrongCa], { env });
      expect(wrong.code).toBe(1);
      expect(wrong.stdout).toBe("");
      expect(wrong.stderr).toContain("the certificate does not match the CA or the address");
      const missing = await runCli(["kubeconfig", "--server", k.url, "--certificate-authority", join(dir, "nope.crt")], { env });
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain("--certificate-authority");
    } finally {
      removeDir(dir);
    }
  });

  test("a wrong token: nothing is printed", async () => {
    const r = await k.cli(["kubeconfig"], { env: { PAI_TOKEN: "pai_" + "0".repeat(64) } });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("invalid or revoked token");
  });
});

test("pai kubeconfig against a plain-HTTP server says to start it with --tls", async () => {
  const server = await startServer();
  try {
    const r = await server.cli(["kubeconfig"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`the pai server at ${server.url} serves plain HTTP, and kubectl sends a token only over HTTPS: start it with pai serve --tls`);
  } finally {
    await server.stop();
    rmSync(server.dataDir, { recursive: true, force: true });
  }
});
