#!/usr/bin/env bun
/**
 * Entry point of the `pai` binary. `pai serve` loads the server stack; every other verb loads only
 * the CLI, so client commands start fast. Heavy modules sit behind dynamic import().
 */
import pkg from "../package.json" with { type: "json" };

export const VERSION = pkg.version;

async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === "version" || verb === "--version") {
    // console.log: in a compiled binary the first process.stdout.write costs several ms more.
    console.log(`pai ${VERSION}`);
    return 0;
  }
  if (verb === "harness") {
    const { runHarness } = await import("./harness/main");
    return runHarness();
  }
  if (verb === "serve") {
    const { runServe } = await import("./cli/serve");
    return runServe(rest, VERSION);
  }
  const { runCli } = await import("./cli/index");
  return runCli(argv, VERSION);
}

const code = await main(process.argv.slice(2));
// Not process.exit(): output written to a pipe may still be on its way, and exit would cut it off.
// With nothing left to do, the process ends by itself with this code.
if (code !== -1) process.exitCode = code;
