// Covers what a session's environment may hold (forbiddenEnvNames in src/domain/session.ts) and what the supervisor hands the child (src/supervisor/env.ts).
import { describe, expect, test } from "bun:test";
import { forbiddenEnvNames, mustBeSetAtSpawn } from "../../src/domain/session";
import { childEnv, credentialsFrom } from "../../src/supervisor/env";

/** The name as written, in lower case, in upper case, and with each word capitalised (`Https_Proxy`). */
const spellings = (name: string) => [
  ...new Set([name, name.toLowerCase(), name.toUpperCase(), name.toLowerCase().replace(/(^|_)([a-z])/g, (_, sep: string, c: string) => sep + c.toUpperCase())]),
];
const refused = (name: string) => forbiddenEnvNames([{ name, value: "x" }]).length === 1;

/** One or more names from each group of the deny list, with the reason it is there. */
const FORBIDDEN: Record<string, string[]> = {
  "proxies, whatever the tool": ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "FTP_PROXY", "GRPC_PROXY", "no_grpc_proxy", "WSS_PROXY", "SOCKS_PROXY", "RSYNC_PROXY", "auto_proxy", "GIT_PROXY_COMMAND", "npm_config_https_proxy", "YARN_HTTPS_PROXY", "CARGO_HTTP_PROXY", "PIP_PROXY", "GOPROXY", "GONOPROXY", "SOCKS5_SERVER", "PROXY"],
  "TLS trust and key logging": ["SSL_CERT_FILE", "SSL_CERT_DIR", "SSLKEYLOGFILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "AWS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "NODE_TLS_REJECT_UNAUTHORIZED", "OPENSSL_CONF", "OPENSSL_MODULES", "GNUTLS_SYSTEM_PRIORITY_FILE", "PYTHONHTTPSVERIFY", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "GIT_SSL_NO_VERIFY", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH", "PIP_CERT", "DENO_CERT"],
  "the resolver": ["RES_OPTIONS", "HOSTALIASES", "LOCALDOMAIN", "RESOLV_HOST_CONF"],
  "the loader, libc and allocator": ["LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "DYLD_INSERT_LIBRARIES", "GCONV_PATH", "GLIBC_TUNABLES", "MALLOC_CHECK_", "LOCPATH", "NLSPATH"],
  "git running code, loading config, finding repositories": ["GIT_SSH", "GIT_SSH_COMMAND", "GIT_ASKPASS", "GIT_EXEC_PATH", "GIT_CONFIG", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0", "GIT_CONFIG_PARAMETERS", "GIT_EDITOR", "GIT_SEQUENCE_EDITOR", "GIT_PAGER", "GIT_EXTERNAL_DIFF", "GIT_TEMPLATE_DIR", "GIT_DIR", "GIT_WORK_TREE", "GIT_ALLOW_PROTOCOL", "GIT_TRACE_CURL", "GIT_TRACE_REDACT"],
  "interpreter and runtime hooks": ["JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH", "MAVEN_OPTS", "PERL5OPT", "PERL5LIB", "PERLLIB", "PERL5DB", "PYTHONSTARTUP", "PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "PYTHONWARNINGS", "PYTHONBREAKPOINT", "RUBYOPT", "RUBYLIB", "GEM_PATH", "BUNDLE_GEMFILE", "LUA_INIT", "LUA_INIT_5_4", "LUA_PATH", "PHPRC", "PHP_INI_SCAN_DIR", "R_PROFILE_USER", "ERL_AFLAGS", "DOTNET_STARTUP_HOOKS", "CORECLR_PROFILER_PATH", "COR_PROFILER", "NODE_OPTIONS", "BUN_OPTIONS", "npm_config_registry", "YARN_RC_FILENAME", "COREPACK_NPM_REGISTRY", "GOFLAGS", "GOTOOLCHAIN", "GOSUMDB", "RUSTC_WRAPPER", "RUSTFLAGS", "CARGO_HOME"],
  "the shell and commands other programs run": ["PATH", "HOME", "SHELL", "IFS", "CDPATH", "ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "PS4", "PROMPT_COMMAND", "ZDOTDIR", "XDG_CONFIG_HOME", "EDITOR", "VISUAL", "PAGER", "MANPAGER", "LESSOPEN", "LESSCLOSE", "BROWSER", "SSH_ASKPASS", "SUDO_ASKPASS", "SSH_ASKPASS_REQUIRE", "TAR_OPTIONS", "RSYNC_RSH", "RSYNC_CONNECT_PROG", "CVS_RSH", "VIMINIT", "EXINIT"],
  "other clients' config and endpoints": ["CURL_HOME", "WGETRC", "NETRC", "PIP_INDEX_URL", "PIP_CONFIG_FILE", "UV_INDEX_URL", "KUBECONFIG", "DOCKER_HOST", "DOCKER_CONFIG", "AWS_CONFIG_FILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"],
  "Pai's own settings and the model clients'": ["PAI_PORT", "PAI_DATA_DIR", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_LOG", "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID"],
};

describe("forbiddenEnvNames", () => {
  for (const [why, names] of Object.entries(FORBIDDEN)) {
    test(`refuses ${why}, in any letter case`, () => {
      const allowed = names.flatMap(spellings).filter((n) => !refused(n));
      expect(allowed).toEqual([]);
    });
  }

  test("allows ordinary names, git's commit identity, and names that only contain a forbidden one", () => {
    const ordinary = ["BATCH_DATE", "TARGET_ENV", "GITHUB_TOKEN", "GITLAB_TOKEN", "API_TOKEN", "CI", "LANG", "LC_ALL", "TZ", "DEBUG", "LOG_LEVEL", "NO_COLOR", "FORCE_COLOR", "TERM"];
    const nearMisses = ["GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_COMMITTER_DATE", "HTTP_TIMEOUT", "APPROXIMATE", "PROXYLESS", "MY_HOME", "HOMEPAGE", "PATH_PREFIX", "ENVIRONMENT", "CORS_ORIGIN", "GOPATH", "REQUESTS_TIMEOUT", "MY_SSL"];
    const names = [...ordinary, ...nearMisses].flatMap(spellings);
    expect(names.filter(refused)).toEqual([]);
  });

  test("names every refused variable, in the caller's order, and names that are not variable names", () => {
    const env = [
      { name: "BATCH_DATE", value: "2026-04-12" },
      { name: "Https_Proxy", value: "http://attacker:3128" },
      { name: "TARGET_ENV", value: "production" },
      { name: "http_proxy", value: "http://attacker:3128" },
      { name: "SSL_CERT_FILE", value: "/tmp/ca.pem" },
      { name: "1BAD", value: "x" },
      { name: "A-B", value: "x" },
    ];
    expect(forbiddenEnvNames(env)).toEqual(["Https_Proxy", "http_proxy", "SSL_CERT_FILE", "1BAD", "A-B"]);
    expect(forbiddenEnvNames([])).toEqual([]);
  });
});

describe("credentialsFrom", () => {
  test("takes the model keys and endpoints, and no proxy settings when the server has none", () => {
    const creds = credentialsFrom({ ANTHROPIC_API_KEY: "a", OPENAI_BASE_URL: "http://localhost:11434/v1", OPENAI_API_KEY: "", PATH: "/usr/bin", HTTP_PROXY: "" });
    expect(creds).toEqual({ ANTHROPIC_API_KEY: "a", OPENAI_BASE_URL: "http://localhost:11434/v1" });
  });

  test("hands over the server's proxy settings, the lower-case spelling winning as in Bun's fetch", () => {
    const creds = credentialsFrom({
      HTTP_PROXY: "http://upper:1",
      http_proxy: "http://lower:1",
      HTTPS_PROXY: "http://secure:2",
      all_proxy: "http://all:3",
      NO_PROXY: "localhost,10.0.0.0/8",
      // Bun reads only the two usual spellings; others are not the operator's settings.
      Http_Proxy: "http://mixed:4",
    });
    expect(creds.proxy).toEqual({ HTTP_PROXY: "http://lower:1", HTTPS_PROXY: "http://secure:2", ALL_PROXY: "http://all:3", NO_PROXY: "localhost,10.0.0.0/8" });
  });
});

describe("childEnv", () => {
  test("is the server's env minus PAI_/ANTHROPIC_/OPENAI_, then spec.env, then the session's env", () => {
    const env = childEnv(
      { PATH: "/usr/bin", PAI_PORT: "1", ANTHROPIC_API_KEY: "k", OPENAI_BASE_URL: "u", HTTP_PROXY: "http://operator:1", KEEP: "server" },
      [{ name: "FROM_SPEC", value: "spec" }, { name: "KEEP", value: "spec" }],
      [{ name: "KEEP", value: "session" }],
    );
    expect(env).toEqual({ PATH: "/usr/bin", HTTP_PROXY: "http://operator:1", FROM_SPEC: "spec", KEEP: "session" });
  });
});

describe("mustBeSetAtSpawn: variables a session's process must be spawned with", () => {
  test("everything a caller may not set, and what a runtime reads once as it starts (time zone, locale, temp folder)", () => {
    const startNames = ["TZ", "TZDIR", "LANG", "LANGUAGE", "LC_ALL", "LC_TIME", "TMPDIR", "TMP", "TEMP"];
    const all = [...Object.values(FORBIDDEN).flat(), ...startNames].flatMap(spellings);
    expect(all.filter((n) => !mustBeSetAtSpawn(n))).toEqual([]);
  });
  test("ordinary names may reach a process started before the session", () => {
    for (const n of ["BATCH_DATE", "GIT_AUTHOR_NAME", "REPO", "TZ_NAME", "LANG_CODE", "MY_TMPDIR", "DEBUG"]) expect(mustBeSetAtSpawn(n)).toBe(false);
  });
});
