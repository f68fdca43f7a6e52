/** Compiles src/main.ts into dist/pai: one self-contained executable (Bun runtime, code, SQL, docs assets). */
import { mkdirSync, statSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";

export const ROOT = import.meta.dir;

export interface BuildResult {
  outfile: string;
  bytes: number;
  ms: number;
}

/**
 * Builds one executable from `entry` (both paths relative to the repo root). Flags, all measured
 * in bench/: bytecode (compiled at build time, so start-up skips parsing), ESM with splitting (the
 * lazy `import()`s in main.ts stay lazy: `pai version` never loads the server), minify (smaller
 * bundle, less to load). The executable does not read a bunfig.toml or .env from the folder it
 * runs in: `pai` is configured by flags and PAI_* variables only.
 */
export async function buildBinary(entry = "src/main.ts", outfile = "dist/pai"): Promise<BuildResult> {
  const out = resolve(ROOT, outfile);
  mkdirSync(dirname(out), { recursive: true });
  const started = performance.now();
  const result = await Bun.build({
    entrypoints: [resolve(ROOT, entry)],
    target: "bun",
    format: "esm",
    splitting: true,
    bytecode: true,
    minify: true,
    compile: { outfile: out, autoloadBunfig: false, autoloadDotenv: false },
    throw: false,
  });
  if (!result.success) throw new AggregateError(result.logs, `build of ${entry} failed:\n${result.logs.join("\n")}`);
  return { outfile: out, bytes: statSync(out).size, ms: performance.now() - started };
}

export const formatMB = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

if (import.meta.main) {
  const r = await buildBinary();
  console.log(`built ${relative(process.cwd(), r.outfile) || r.outfile}: ${formatMB(r.bytes)} (${r.bytes} bytes) in ${Math.round(r.ms)} ms`);
}
