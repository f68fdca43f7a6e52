// Covers src/config/serve.ts loadServeConfig: defaults, flags over env over defaults, and UsageErrors naming the flag.
import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { broadTrustedProxies, DEFAULT_TRUSTED_PROXIES, loadServeConfig, type ServeConfig } from "../../src/config/serve";
import { UsageError } from "../../src/lib/args";
import { cidrContains, parseCidr, parseIp } from "../../src/lib/cidr";

function config(argv: string[], env: Record<string, string | undefined> = {}): ServeConfig {
  const c = loadServeConfig(argv, env);
  if (c === "help") throw new Error("unexpected help");
  return c;
}

const trusts = (c: ServeConfig, ip: string) => c.trustedProxies.some((r) => cidrContains(r, parseIp(ip)!));

describe("loadServeConfig defaults", () => {
  const c = config([]);

  test("scalar defaults", () => {
    expect(c.port).toBe(8080);
    expect(c.host).toBe("0.0.0.0");
    expect(c.dataDir).toBe(resolve(".pai"));
    expect(c.maxBodyBytes).toBe(1048576);
    expect(c.logLevel).toBe("info");
    expect(c.writeStatus).toBe(true);
    expect(c.publicUrl).toBeUndefined();
    expect(c.manifests).toBeUndefined();
    expect(c.warmProcesses).toBe(2);
  });

  test("trusted proxies are the default list", () => {
    expect(c.trustedProxies.map((r) => r.text).join(",")).toBe(DEFAULT_TRUSTED_PROXIES);
  });

  const trusted = ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"];
  test.each(trusted)("trusts loopback %s", (ip) => {
    expect(trusts(c, ip)).toBe(true);
  });

  // A LAN host could forge X-Forwarded-For past allowCIDRs if private ranges were trusted by default.
  const untrusted = ["8.8.8.8", "10.1.2.3", "172.16.0.1", "192.168.1.10", "fd00::1", "::ffff:10.0.0.5", "35.231.147.226", "2001:db8::1"];
  test.each(untrusted)("does not trust %s by default", (ip) => {
    expect(trusts(c, ip)).toBe(false);
  });

  test("-h / --help ask for help", () => {
    expect(loadServeConfig(["-h"], {})).toBe("help");
    expect(loadServeConfig(["--help"], {})).toBe("help");
  });
});

describe("loadServeConfig precedence", () => {
  const env = {
    PAI_PORT: "7000",
    PAI_HOST: "127.0.0.1",
    PAI_DATA_DIR: "/srv/pai-env",
    PAI_MANIFESTS: "/srv/manifests-env",
    PAI_PUBLIC_URL: "https://env.example",
    PAI_TRUSTED_PROXIES: "10.0.0.0/8",
    PAI_MAX_BODY_BYTES: "2048",
    PAI_LOG_LEVEL: "warn",
  };

  test("env beats defaults", () => {
    const c = config([], env);
    expect(c).toMatchObject({
      port: 7000,
      host: "127.0.0.1",
      dataDir: "/srv/pai-env",
      manifests: "/srv/manifests-env",
      publicUrl: "https://env.example",
      maxBodyBytes: 2048,
      logLevel: "warn",
    });
    expect(c.trustedProxies.map((r) => r.text)).toEqual(["10.0.0.0/8"]);
  });

  test("flags beat env", () => {
    const c = config(
      [
        "-p", "9000",
        "--host", "::",
        "--data-dir", "/srv/pai-flag",
        "--manifests", "/srv/manifests-flag",
        "--public-url", "http://flag.example:8080",
        "--trusted-proxies", "192.168.0.0/16, ::1",
        "--max-body-bytes=4096",
        "--log-level", "debug",
        "--no-write-status",
      ],
      env,
    );
    expect(c).toMatchObject({
      port: 9000,
      host: "::",
      dataDir: "/srv/pai-flag",
      manifests: "/srv/manifests-flag",
      publicUrl: "http://flag.example:8080",
      maxBodyBytes: 4096,
      logLevel: "debug",
      writeStatus: false,
    });
    expect(c.trustedProxies.map((r) => r.text)).toEqual(["192.168.0.0/16", "::1"]);
  });

  test("one flag overrides only its own env twin", () => {
    const c = config(["--port", "9001"], env);
    expect(c.port).toBe(9001);
    expect(c.host).toBe("127.0.0.1");
  });

  test("relative paths are resolved", () => {
    const c = config(["--data-dir", "data", "--manifests", "manifests/examples"]);
    expect(c.dataDir).toBe(resolve("data"));
    expect(c.manifests).toBe(resolve("manifests/examples"));
  });

  test("port 0 (pick a free one) and 65535 are allowed", () => {
    expect(config(["--port", "0"]).port).toBe(0);
    expect(config(["--port", "65535"]).port).toBe(65535);
  });

  test("trailing slashes are removed from the public URL", () => {
    expect(config(["--public-url", "https://pai.example.com/base//"]).publicUrl).toBe("https://pai.example.com/base");
  });

  test("an empty trusted-proxies list trusts nobody", () => {
    expect(config(["--trusted-proxies", ""]).trustedProxies).toEqual([]);
  });
});

describe("loadServeConfig usage errors", () => {
  const cases: { name: string; argv: string[]; env?: Record<string, string>; flag: string }[] = [
    { name: "--port=abc", argv: ["--port=abc"], flag: "--port" },
    { name: "--port 70000", argv: ["--port", "70000"], flag: "--port" },
    { name: "--port 65536", argv: ["--port", "65536"], flag: "--port" },
    { name: "--port -1", argv: ["--port", "-1"], flag: "--port" },
    { name: "--port 1.5", argv: ["--port", "1.5"], flag: "--port" },
    { name: "PAI_PORT=abc", argv: [], env: { PAI_PORT: "abc" }, flag: "--port" },
    { name: "--public-url ftp://x", argv: ["--public-url", "ftp://x"], flag: "--public-url" },
    { name: "--public-url not-a-url", argv: ["--public-url", "not-a-url"], flag: "--public-url" },
    { name: "--trusted-proxies with a bad entry", argv: ["--trusted-proxies", "10.0.0.0/8,bogus"], flag: "--trusted-proxies" },
    { name: "--trusted-proxies with a bad prefix", argv: ["--trusted-proxies", "10.0.0.0/33"], flag: "--trusted-proxies" },
    { name: "--trusted-proxies with a bad address", argv: ["--trusted-proxies", "256.0.0.1"], flag: "--trusted-proxies" },
    { name: "--max-body-bytes below 1024", argv: ["--max-body-bytes", "100"], flag: "--max-body-bytes" },
    { name: "--max-body-bytes not a number", argv: ["--max-body-bytes", "1MB"], flag: "--max-body-bytes" },
    { name: "--log-level unknown", argv: ["--log-level", "loud"], flag: "--log-level" },
    { name: "unknown flag", argv: ["--prot", "80"], flag: "--prot" },
    { name: "flag without its value", argv: ["--port"], flag: "--port" },
  ];

  test.each(cases)("$name names $flag", ({ argv, env, flag }) => {
    let err: unknown;
    try {
      loadServeConfig(argv, env ?? {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toContain(flag);
  });

  test("the offending value is quoted in the message", () => {
    expect(() => loadServeConfig(["--trusted-proxies", "10.0.0.0/8, bogus"], {})).toThrow('"bogus"');
    expect(() => loadServeConfig(["--port", "70000"], {})).toThrow('"70000"');
  });

  test("--sandbox-read-only and --allow-unsandboxed-tools: absolute paths only; off by default", () => {
    expect(config([]).sandboxReadOnly).toEqual([]);
    expect(config([]).allowUnsandboxedTools).toBe(false);
    expect(config(["--sandbox-read-only", "/opt/tools, /tmp/data"]).sandboxReadOnly).toEqual(["/opt/tools", "/tmp/data"]);
    expect(config([], { PAI_SANDBOX_READ_ONLY: "/srv" }).sandboxReadOnly).toEqual(["/srv"]);
    expect(config(["--allow-unsandboxed-tools"]).allowUnsandboxedTools).toBe(true);
    expect(config([], { PAI_ALLOW_UNSANDBOXED_TOOLS: "true" }).allowUnsandboxedTools).toBe(true);
    expect(() => loadServeConfig(["--sandbox-read-only", "/ok,relative/dir"], {})).toThrow('--sandbox-read-only takes absolute paths, separated by commas (got "relative/dir")');
  });

  test("positional arguments are refused", () => {
    expect(() => loadServeConfig(["extra"], {})).toThrow(UsageError);
    expect(() => loadServeConfig(["extra"], {})).toThrow('"extra"');
  });
});

describe("broadTrustedProxies", () => {
  test("names ranges wider than a small subnet, never loopback", () => {
    const cidrs = ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "192.168.1.0/24", "192.168.0.0/16", "203.0.113.7", "fc00::/7", "2001:db8:1:2::/64"].map((t) => parseCidr(t)!);
    expect(broadTrustedProxies(cidrs).map((c) => c.text)).toEqual(["10.0.0.0/8", "192.168.0.0/16", "fc00::/7"]);
  });
});

describe("replicas and cluster settings", () => {
  test("--database: a postgres URL is taken (PAI_DATABASE_URL too); anything else is refused without repeating the value (it may hold a password)", () => {
    expect(config(["--database", "postgres://pai:pw@db:5432/pai"]).database).toEqual({ url: "postgres://pai:pw@db:5432/pai", replicaLeaseMs: 15_000 });
    expect(config([], { PAI_DATABASE_URL: "postgresql://db/pai", PAI_REPLICA_LEASE_MS: "900" }).database).toEqual({ url: "postgresql://db/pai", replicaLeaseMs: 900 });
    expect(() => loadServeConfig(["--database", "not a url s3cret"], {})).toThrow(UsageError);
    try {
      loadServeConfig(["--database", "not a url s3cret"], {});
    } catch (err) {
      expect((err as Error).message).not.toContain("s3cret");
    }
    expect(() => loadServeConfig(["--database", "mysql://u:p@db/x"], {})).toThrow("must be a postgres:// URL");
    expect(() => loadServeConfig(["--database", "postgres:///x"], {})).toThrow("has no host");
    expect(() => loadServeConfig(["--database", "postgres://db/x"], { PAI_REPLICA_LEASE_MS: "5" })).toThrow("PAI_REPLICA_LEASE_MS");
    expect(() => loadServeConfig(["--database", "postgres://db/x", "--no-controller"], {})).toThrow("do not go together");
  });

  test("--kubernetes settings: namespaces are DNS labels; a lease shorter than 300 ms is refused; the kube flags need --kubernetes", () => {
    const c = config(["--kubernetes", "--watch-namespaces", "a, b", "--lease-namespace", "pai-system"], { PAI_LEASE_DURATION_MS: "1500" });
    expect(c.kubernetes).toMatchObject({ namespaces: ["a", "b"], leaseNamespace: "pai-system", leaseDurationMs: 1500 });
    expect(() => loadServeConfig(["--kubernetes", "--watch-namespaces", "../etc"], {})).toThrow("--watch-namespaces");
    expect(() => loadServeConfig(["--kubernetes", "--watch-namespaces", ","], {})).toThrow("at least one namespace");
    expect(() => loadServeConfig(["--kubernetes"], { PAI_LEASE_DURATION_MS: "10" })).toThrow("PAI_LEASE_DURATION_MS");
    expect(() => loadServeConfig(["--lease-namespace", "x"], {})).toThrow("pass --kubernetes too");
    expect(() => loadServeConfig([], { PAI_KUBERNETES: "maybe" })).toThrow("PAI_KUBERNETES must be true or false");
  });
});
