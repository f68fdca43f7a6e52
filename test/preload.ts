/**
 * Runs before every test file: points HOME and the CLI context at a fresh temp folder and removes
 * real API keys and PAI_* settings, so no test can touch the developer's data or a real model.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const home = mkdtempSync(join(tmpdir(), "pai-test-home-"));
process.env.HOME = home;
process.env.XDG_CONFIG_HOME = join(home, ".config");
for (const key of Object.keys(process.env)) {
  if (key.startsWith("PAI_") || key === "ANTHROPIC_API_KEY" || key === "OPENAI_API_KEY" || key === "ANTHROPIC_BASE_URL" || key === "OPENAI_BASE_URL")
    delete process.env[key];
}
