/**
 * `pai health [--url URL]`: exit 0 when the server's /readyz answers 200, 1 otherwise. The
 * container image has no curl, so its HEALTHCHECK runs this. Two seconds at most: a check that
 * hangs is a failed check.
 */
import { CliError } from "./client";

export const HEALTH_TIMEOUT_MS = 2000;

export async function health(url: string | undefined, env: Record<string, string | undefined> = process.env): Promise<number> {
  const target = url ?? `http://127.0.0.1:${env.PAI_PORT || "8080"}/readyz`;
  let parsed: URL;
  try {
    parsed = new URL(target);
  } catch {
    throw new CliError(`--url: not a URL: "${target}"`, 2);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new CliError(`--url: must be http(s) (got "${parsed.protocol}")`, 2);
  try {
    const res = await fetch(parsed, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS), redirect: "manual" });
    await res.body?.cancel();
    if (res.status === 200) {
      process.stdout.write(`ok: ${parsed.href} answered 200\n`);
      return 0;
    }
    process.stderr.write(`error: ${parsed.href} answered ${res.status}\n`);
  } catch (err) {
    const reason = err instanceof Error && err.name === "TimeoutError" ? `no answer in ${HEALTH_TIMEOUT_MS} ms` : String((err as Error)?.message ?? err);
    process.stderr.write(`error: ${parsed.href}: ${reason}\n`);
  }
  return 1;
}
