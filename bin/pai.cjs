#!/usr/bin/env node
// `npx pai …` after `npm install`: runs the CLI with the Bun that npm installed beside it.
const { spawnSync } = require("node:child_process");
const { join, dirname } = require("node:path");

const root = join(__dirname, "..");
const bun = join(dirname(require.resolve("bun/package.json", { paths: [root] })), "bin", "bun.exe");
const r = spawnSync(bun, [join(root, "src", "main.ts"), ...process.argv.slice(2)], { stdio: "inherit" });
if (r.error) {
  console.error(`error: cannot run bun (${r.error.message}); run npm install first`);
  process.exit(1);
}
process.exit(r.status ?? (r.signal ? 128 : 1));
