/**
 * Writes manifests/kubernetes/agents.pai.io.yaml, the Agent CRD, from the TypeBox schemas in
 * src/domain/agent.ts (`npm run gen:crd`). With --check it writes nothing and exits 1 when the
 * file differs from what it would write (test/unit/crd.test.ts checks the same). `--out FILE`
 * names another file.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { agentCrdYaml, CRD_PATH } from "../src/api/openapi/crd";

const args = process.argv.slice(2);
const at = args.indexOf("--out");
const file = at >= 0 && args[at + 1] ? resolve(args[at + 1]!) : join(resolve(import.meta.dir, ".."), CRD_PATH);
const text = agentCrdYaml();

if (args.includes("--check")) {
  let current = "";
  try {
    current = readFileSync(file, "utf8");
  } catch {}
  if (current !== text) {
    console.error(`${file} is out of date: run npm run gen:crd`);
    process.exit(1);
  }
  console.log(`${file} is up to date`);
} else {
  writeFileSync(file, text);
  console.log(`wrote ${file}`);
}
