/**
 * The environment of a session's child: the server's own, minus anything secret or that steers
 * the server (PAI_*, model keys and endpoints, which reach the model client by the IPC start
 * message instead), plus the agent's spec.env, plus the session's overrides.
 */
import type { EnvVar } from "../domain/session";
import type { ModelCredentials, ProxySettings } from "../harness/protocol";

const WITHHELD = /^(PAI_|ANTHROPIC_|OPENAI_)/;
const CREDENTIAL_NAMES = ["ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"] as const;
const PROXY_NAMES = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"] as const;

export function childEnv(base: Record<string, string | undefined>, specEnv: EnvVar[] = [], overrides: EnvVar[] = []): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined && !WITHHELD.test(k)) env[k] = v;
  for (const e of specEnv) env[e.name] = e.value;
  for (const e of overrides) env[e.name] = e.value;
  return env;
}

/**
 * What the model clients need from the server's environment: keys, endpoints, and the operator's
 * proxy settings. The proxies travel here because the child's own environment also holds spec.env
 * and a caller's env, and the model clients must not take a proxy from those.
 */
export function credentialsFrom(base: Record<string, string | undefined>): ModelCredentials {
  const creds: ModelCredentials = {};
  for (const k of CREDENTIAL_NAMES) if (base[k]) creds[k] = base[k];
  const proxy: ProxySettings = {};
  // The lower-case spelling wins when both are set, as in Bun's fetch and curl.
  for (const k of PROXY_NAMES) {
    const v = base[k.toLowerCase()] || base[k];
    if (v) proxy[k] = v;
  }
  if (Object.keys(proxy).length) creds.proxy = proxy;
  return creds;
}
