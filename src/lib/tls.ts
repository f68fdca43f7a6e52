/**
 * TLS for `pai serve`: certificate files an operator supplies, checked before the server starts,
 * and the zero-config mode that keeps a CA and a serving certificate in the data dir (as k3s does).
 *
 * Reading and checking certificates uses node:crypto only. Making one needs an X.509 encoder
 * (@peculiar/x509 over WebCrypto), loaded by import() only when a certificate has to be made: a
 * server without TLS, or one that reuses its files, never loads it (it costs ~70 ms to import).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { createPrivateKey, randomBytes, X509Certificate, type KeyObject } from "node:crypto";
import { isIP } from "node:net";
import { join } from "node:path";
import { writeFileAtomic } from "./atomic-write";

/** What Bun.serve needs, and what clients should trust (the kubeconfig's certificate-authority-data). */
export interface TlsMaterial {
  /** PEM: the serving certificate, then any intermediates. */
  cert: string;
  /** PEM private key of the serving certificate. */
  key: string;
  /** PEM: the certificate(s) a client trusts to verify `cert`. */
  ca: string;
  /** The serving certificate's DNS names and IP addresses. */
  names: string[];
  notAfter: Date;
}

/** A problem with TLS files; the message names the flag or file to fix. */
export class TlsError extends Error {}

const DAY_MS = 86_400_000;
/** The generated serving certificate is made again when it has fewer days left than this. */
export const RENEW_BEFORE_MS = 30 * DAY_MS;
export const CA_VALIDITY_MS = 3650 * DAY_MS;
export const SERVING_VALIDITY_MS = 365 * DAY_MS;

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The PEM certificates in a text, in order. */
export function pemCertificates(text: string): string[] {
  return (text.match(PEM_CERT) ?? []).map((c) => `${c}\n`);
}

function readText(file: string, label: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new TlsError(`${label} ${file}: ${code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : (err as Error).message}`);
  }
}

function parseCertificates(text: string, file: string, label: string): X509Certificate[] {
  const pems = pemCertificates(text);
  if (!pems.length) throw new TlsError(`${label} ${file}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)`);
  return pems.map((pem, i) => {
    try {
      return new X509Certificate(pem);
    } catch (err) {
      throw new TlsError(`${label} ${file}: certificate ${i + 1} is not valid X.509 (${(err as Error).message})`);
    }
  });
}

function parseKey(text: string, file: string, label: string): KeyObject {
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text))
    throw new TlsError(`${label} ${file}: the key is encrypted with a passphrase; pass an unencrypted key (e.g. openssl pkey -in F -out F2) and keep that file 0600`);
  try {
    return createPrivateKey(text);
  } catch {
    throw new TlsError(`${label} ${file}: not a PEM private key (expected -----BEGIN PRIVATE KEY----- or an RSA/EC key)`);
  }
}

/** A certificate's DNS names and IP addresses, IPs in their short form (::1, not 0:0:…:1). */
export function certificateNames(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  if (!san) return [];
  return san
    .split(/,\s*/)
    .map((entry) => {
      const m = /^(DNS|IP Address):(.*)$/.exec(entry.trim());
      if (!m) return undefined;
      return m[1] === "DNS" ? m[2]!.toLowerCase() : normalizeIp(m[2]!);
    })
    .filter((n): n is string => !!n);
}

function normalizeIp(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  // The URL parser writes an IPv6 address in its canonical short form.
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}

/**
 * The operator's certificate chain and key (--tls-cert-file, --tls-private-key-file) and what
 * clients should trust: --tls-ca-file when given, else the chain's last certificate (the root or
 * self-signed certificate that a chain file ends with; kubectl, being Go, also trusts an
 * intermediate there, Bun's TLS does not, so the pai CLI then needs --tls-ca-file with the root).
 */
export function loadTlsFiles(opts: { certFile: string; keyFile: string; caFile?: string }): TlsMaterial {
  const certText = readText(opts.certFile, "--tls-cert-file");
  const chain = parseCertificates(certText, opts.certFile, "--tls-cert-file");
  const leaf = chain[0]!;
  if (leaf.ca) throw new TlsError(`--tls-cert-file ${opts.certFile}: its first certificate is a CA certificate; put the server's own certificate first, then its intermediates`);
  const key = parseKey(readText(opts.keyFile, "--tls-private-key-file"), opts.keyFile, "--tls-private-key-file");
  if (!leaf.checkPrivateKey(key)) throw new TlsError(`--tls-private-key-file ${opts.keyFile} is not the key of the certificate in --tls-cert-file ${opts.certFile}`);
  let ca: string;
  if (opts.caFile) {
    const caText = readText(opts.caFile, "--tls-ca-file");
    const cas = parseCertificates(caText, opts.caFile, "--tls-ca-file");
    if (!cas.some((c) => chain.some((link) => link.checkIssued(c) && link.verify(c.publicKey))))
      throw new TlsError(`--tls-ca-file ${opts.caFile} did not issue any certificate in --tls-cert-file ${opts.certFile}`);
    ca = cas.map((c) => c.toString()).join("");
  } else {
    ca = chain[chain.length - 1]!.toString();
  }
  return { cert: chain.map((c) => c.toString()).join(""), key: key.export({ type: "pkcs8", format: "pem" }).toString(), ca, names: certificateNames(leaf), notAfter: new Date(leaf.validTo) };
}

const DNS_NAME = /^(\*\.)?[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;

/** Why `name` cannot be a subject alternative name (a DNS name or an IP address), or undefined. */
export function sanProblem(name: string): string | undefined {
  if (isIP(name)) return undefined;
  if (name.length > 253 || !DNS_NAME.test(name)) return `"${name}" is neither an IP address nor a DNS name (letters, digits, '-' and '.', optionally starting with *.)`;
  return undefined;
}

/**
 * The names the generated serving certificate carries: loopback, this machine's host name, the
 * address the server binds when it is a specific one, the host of the public URL, and the extra
 * names asked for. Lower-case, IPs in short form, sorted, without repeats.
 */
export function servingNames(opts: { host?: string; publicUrl?: string; extra?: string[]; hostname?: string }): string[] {
  const names = ["localhost", "127.0.0.1", "::1"];
  const add = (n: string | undefined) => {
    if (!n) return;
    const name = n.replace(/^\[|\]$/g, "").toLowerCase();
    // A machine name such as my_box is no valid DNS name: leave it out rather than refuse to start.
    if (!sanProblem(name)) names.push(isIP(name) ? normalizeIp(name) : name);
  };
  add(opts.hostname);
  if (opts.host && opts.host !== "0.0.0.0" && opts.host !== "::") add(opts.host);
  if (opts.publicUrl) add(new URL(opts.publicUrl).hostname);
  for (const n of opts.extra ?? []) add(n);
  return [...new Set(names)].sort();
}

// ---- Making certificates ----

const EC = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

async function x509lib() {
  // @peculiar/x509 resolves its parts through tsyringe, which wants the Reflect metadata API first.
  await import("reflect-metadata");
  const x509 = await import("@peculiar/x509");
  x509.cryptoProvider.set(globalThis.crypto);
  return x509;
}

const pem = (label: string, der: ArrayBuffer) => `-----BEGIN ${label}-----\n${Buffer.from(der).toString("base64").match(/.{1,64}/g)!.join("\n")}\n-----END ${label}-----\n`;

/** A positive 128-bit serial number in hex, as RFC 5280 asks (unique, at most 20 bytes). */
const serial = () => {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString("hex");
};

export interface KeyPairPem {
  cert: string;
  key: string;
}

/** A new self-signed ECDSA P-256 CA certificate and its PKCS#8 key. */
export async function generateCa(opts: { commonName: string; now?: Date; validityMs?: number }): Promise<KeyPairPem> {
  const x509 = await x509lib();
  const now = opts.now ?? new Date();
  const keys = (await crypto.subtle.generateKey(EC, true, ["sign", "verify"])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${opts.commonName}`,
    // An hour back: a client whose clock is a little behind still accepts it.
    notBefore: new Date(now.getTime() - 3_600_000),
    notAfter: new Date(now.getTime() + (opts.validityMs ?? CA_VALIDITY_MS)),
    keys,
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString("pem") + "\n", key: pem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", keys.privateKey)) };
}

/**
 * A new ECDSA P-256 certificate for TLS servers, for `names` (DNS names and IPs), signed by the CA
 * (or self-signed without one). It ends at the CA's end at the latest.
 */
export async function issueServingCertificate(opts: { names: string[]; ca?: KeyPairPem; commonName?: string; now?: Date; validityMs?: number }): Promise<KeyPairPem> {
  const x509 = await x509lib();
  const now = opts.now ?? new Date();
  const keys = (await crypto.subtle.generateKey(EC, true, ["sign", "verify"])) as CryptoKeyPair;
  let notAfter = new Date(now.getTime() + (opts.validityMs ?? SERVING_VALIDITY_MS));
  const extensions: InstanceType<typeof x509.Extension>[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    new x509.SubjectAlternativeNameExtension(opts.names.map((n) => ({ type: isIP(n) ? ("ip" as const) : ("dns" as const), value: n }))),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
  const subject = `CN=${opts.commonName ?? "pai"}`;
  let cert;
  if (opts.ca) {
    const caCert = new x509.X509Certificate(opts.ca.cert);
    if (caCert.notAfter < notAfter) notAfter = caCert.notAfter;
    const caDer = createPrivateKey(opts.ca.key).export({ type: "pkcs8", format: "der" });
    const signingKey = await crypto.subtle.importKey("pkcs8", caDer, EC, false, ["sign"]);
    extensions.push(await x509.AuthorityKeyIdentifierExtension.create(caCert));
    cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject,
      issuer: caCert.subject,
      notBefore: new Date(now.getTime() - 3_600_000),
      notAfter,
      signingKey,
      publicKey: keys.publicKey,
      signingAlgorithm: EC,
      extensions,
    });
  } else {
    cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: subject,
      notBefore: new Date(now.getTime() - 3_600_000),
      notAfter,
      keys,
      signingAlgorithm: EC,
      extensions,
    });
  }
  return { cert: cert.toString("pem") + "\n", key: pem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", keys.privateKey)) };
}

// ---- The data dir's CA and serving certificate ----

/** Written aside and renamed: a crash never leaves half a file. */
const writeAtomic = writeFileAtomic;

export interface GeneratedTls extends TlsMaterial {
  /** What happened to the serving certificate, and why when it was made again. */
  action: "created" | "renewed" | "reused";
  reason?: string;
  caCreated: boolean;
  dir: string;
}

/** Why the serving certificate in `dir` cannot be reused, or undefined when it can. */
function servingProblem(dir: string, ca: X509Certificate, names: string[], now: Date): string | undefined {
  const certFile = join(dir, "server.crt");
  const keyFile = join(dir, "server.key");
  if (!existsSync(certFile) || !existsSync(keyFile)) return "missing";
  let cert: X509Certificate;
  let key: KeyObject;
  try {
    cert = new X509Certificate(readFileSync(certFile));
    key = createPrivateKey(readFileSync(keyFile));
  } catch (err) {
    return `unreadable (${(err as Error).message})`;
  }
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return "not signed by the CA in ca.crt";
  if (!cert.checkPrivateKey(key)) return "server.key does not belong to server.crt";
  const have = certificateNames(cert).sort();
  const added = names.filter((n) => !have.includes(n));
  const removed = have.filter((n) => !names.includes(n));
  if (added.length || removed.length)
    return `names changed (${[added.length ? `added ${added.join(", ")}` : "", removed.length ? `removed ${removed.join(", ")}` : ""].filter(Boolean).join("; ")})`;
  const notAfter = new Date(cert.validTo);
  if (notAfter.getTime() - now.getTime() < RENEW_BEFORE_MS) return `it expires ${notAfter.toISOString()}`;
  return undefined;
}

/**
 * The zero-config TLS of `pai serve --tls`: `dir` (the data dir's tls/) holds ca.crt, ca.key,
 * server.crt and server.key (keys 0600). A missing CA is made (10 years); the serving certificate
 * is made (1 year) when it is missing, not the CA's, names other names than `names`, or expires
 * within 30 days. A CA half there or broken is an error: making a new one silently would break
 * every kubeconfig made before, so the operator decides.
 */
export async function ensureGeneratedTls(dir: string, names: string[], now = new Date()): Promise<GeneratedTls> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caCertFile = join(dir, "ca.crt");
  const caKeyFile = join(dir, "ca.key");
  const startOver = `remove ${dir} to make a new CA (kubeconfigs made before must then be made again with pai kubeconfig)`;
  let caCreated = false;
  let caPair: KeyPairPem;
  const hasCert = existsSync(caCertFile);
  const hasKey = existsSync(caKeyFile);
  if (!hasCert && !hasKey) {
    caPair = await generateCa({ commonName: `pai-ca@${Math.floor(now.getTime() / 1000)}`, now });
    writeAtomic(caKeyFile, caPair.key, 0o600);
    writeAtomic(caCertFile, caPair.cert, 0o644);
    caCreated = true;
  } else if (!hasCert || !hasKey) {
    throw new TlsError(`${hasCert ? caKeyFile : caCertFile} is missing beside ${hasCert ? caCertFile : caKeyFile}: restore it, or ${startOver}`);
  } else {
    caPair = { cert: readText(caCertFile, "CA certificate"), key: readText(caKeyFile, "CA key") };
  }
  let ca: X509Certificate;
  try {
    ca = new X509Certificate(caPair.cert);
    if (!ca.ca) throw new Error("it is not a CA certificate");
    if (!ca.checkPrivateKey(createPrivateKey(caPair.key))) throw new Error("ca.key does not belong to ca.crt");
  } catch (err) {
    throw new TlsError(`the CA in ${dir} cannot be used (${(err as Error).message}): ${startOver}`);
  }
  if (new Date(ca.validTo) <= now) throw new TlsError(`the CA in ${dir} expired on ${new Date(ca.validTo).toISOString()}: ${startOver}`);
  // Keys stay private even if someone loosened their modes.
  chmodSync(caKeyFile, 0o600);

  const problem = caCreated ? "missing" : servingProblem(dir, ca, names, now);
  const certFile = join(dir, "server.crt");
  const keyFile = join(dir, "server.key");
  if (problem) {
    const made = await issueServingCertificate({ names, ca: caPair, now });
    // Key first: a crash between the two leaves a pair that does not match, which is made again.
    writeAtomic(keyFile, made.key, 0o600);
    writeAtomic(certFile, made.cert, 0o644);
  } else {
    chmodSync(keyFile, 0o600);
  }
  const cert = readFileSync(certFile, "utf8");
  return {
    cert,
    key: readFileSync(keyFile, "utf8"),
    ca: caPair.cert,
    names,
    notAfter: new Date(new X509Certificate(cert).validTo),
    action: problem === undefined ? "reused" : problem === "missing" ? "created" : "renewed",
    reason: problem === "missing" ? undefined : problem,
    caCreated,
    dir,
  };
}
