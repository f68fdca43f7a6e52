/** `npm run bench`: builds dist/pai and a bare Bun server the same way, then runs each benchmark and prints its table. */
import { cpus } from "node:os";
import { join } from "node:path";
import { buildBinary } from "../build";
import { childEnv, formatReport, mb, tempRoot, type BenchContext, type Benchmark } from "./lib";
import { coldStart, idleMemory } from "./startup";

/** Add new benchmarks here; each gets the same context and prints one table. */
const BENCHMARKS: Benchmark[] = [coldStart, idleMemory];

function runsFlag(argv: string[]): number {
  const i = argv.indexOf("--runs");
  const n = i >= 0 ? Number(argv[i + 1]) : 15;
  if (!Number.isInteger(n) || n < 1) throw new Error("--runs takes a positive whole number");
  return n;
}

const tmp = tempRoot();
process.on("exit", tmp.cleanup); // also on Ctrl-C and on errors; bench/lib.ts kills the children first
const runs = runsFlag(process.argv.slice(2));
const pai = await buildBinary();
const bare = await buildBinary("bench/bare-server.ts", join(tmp.root, "bare"));
const home = tmp.dir("home");
const ctx: BenchContext = { pai: pai.outfile, bare: bare.outfile, runs, tmp, cwd: tmp.dir("cwd"), env: childEnv(home) };
console.log(`Pai benchmarks, ${new Date().toISOString()}`);
console.log(`bun ${Bun.version}, ${process.platform}-${process.arch}, ${cpus().length} CPUs (${cpus()[0]?.model.trim() ?? "?"})`);
console.log(`dist/pai ${mb(pai.bytes)}; bare baseline (bench/bare-server.ts, same build flags) ${mb(bare.bytes)}`);
for (const bench of BENCHMARKS) console.log(`\n${formatReport(await bench(ctx))}`);
