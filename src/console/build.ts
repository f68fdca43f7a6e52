/**
 * Builds the console's bundle: src/console/app/main.ts (Preact and the pages) with the stylesheet
 * it imports, minified for the browser, into src/console/dist/console.js and console.css. The
 * bundle is committed and embedded into the binary as it is (src/api/console.ts), so running
 * from source and the compiled `dist/pai` serve the same bytes and nothing is built at run time;
 * test/unit/console-bundle.test.ts fails when the sources changed and this was not run again:
 *
 *   bun src/console/build.ts
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const CONSOLE_DIR = import.meta.dir;
export const DIST = join(CONSOLE_DIR, "dist");
/** What the build writes, by file name in dist/. */
export const OUTPUTS = ["console.js", "console.css"] as const;

export async function buildConsole(): Promise<Record<(typeof OUTPUTS)[number], string>> {
  const result = await Bun.build({
    entrypoints: [join(CONSOLE_DIR, "app", "main.ts")],
    target: "browser",
    format: "esm",
    minify: true,
    sourcemap: "none",
    naming: { entry: "console.[ext]", asset: "[name].[ext]", chunk: "[name].[ext]" },
    // Production Preact (no debug hooks) and no Node globals in the page.
    define: { "process.env.NODE_ENV": '"production"' },
    throw: false,
  });
  if (!result.success) throw new AggregateError(result.logs, `console build failed:\n${result.logs.join("\n")}`);
  const out: Partial<Record<string, string>> = {};
  for (const o of result.outputs) out[o.path.split("/").pop()!] = await o.text();
  const names = Object.keys(out).sort();
  if (names.join() !== [...OUTPUTS].sort().join()) throw new Error(`console build: expected ${OUTPUTS.join(", ")}, got ${names.join(", ")}`);
  return out as Record<(typeof OUTPUTS)[number], string>;
}

/** The files now in dist/ (empty strings for missing ones). */
export function committedConsole(): Record<(typeof OUTPUTS)[number], string> {
  const read = (name: string) => {
    try {
      return readFileSync(join(DIST, name), "utf8");
    } catch {
      return "";
    }
  };
  return Object.fromEntries(OUTPUTS.map((n) => [n, read(n)])) as Record<(typeof OUTPUTS)[number], string>;
}

if (import.meta.main) {
  const built = await buildConsole();
  mkdirSync(DIST, { recursive: true });
  for (const name of OUTPUTS) {
    writeFileSync(join(DIST, name), built[name]);
    console.log(`src/console/dist/${name}: ${(built[name].length / 1024).toFixed(1)} KB`);
  }
}
