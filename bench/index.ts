/** `npm run bench`: builds dist/pai and a bare Bun server the same way, then runs each benchmark and prints its table. */
import { cpus } from "node:os";
import { join } from "node:path";
import { buildBinary } from "../build";
import { childEnv, formatReport, mb, tempRoot, type BenchContext, type Benchmark } from "./lib";
import { coldStart, idleMemory } from "./startup";
import { harnessMemory, serverMemoryWithSessions, sessionThroughput, spawnPath } from "./sessions";
import { webhookAccepts, webhookWait } from "./webhooks";
import { backlogRestart, sessionPriority } from "./backlog";
import { hostileTraffic } from "./hostile";
import { mcpMemory, toolTurns } from "./tools";
import { kubernetes } from "./kubernetes";
import { replicas } from "./replicas";
import { n8n } from "./n8n";

/** Add new benchmarks here; each gets the same context and prints one table. */
const BENCHMARKS: Benchmark[] = [coldStart, idleMemory, spawnPath, sessionThroughput, harnessMemory, serverMemoryWithSessions, webhookAccepts, webhookWait, backlogRestart, sessionPriority, hostileTraffic, toolTurns, mcpMemory, kubernetes, replicas, n8n];

/** `--runs N` (default 15): start-ups per case; `--samples N` (default 200): spawns per case in the sessions benchmarks. */
function countFlag(argv: string[], flag: string, fallback: number): number {
  const i = argv.indexOf(flag);
  const n = i >= 0 ? Number(argv[i + 1]) : fallback;
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} takes a positive whole number`);
  return n;
}

/** `--only a,b`: run only the benchmarks with these names (case-insensitive), e.g. `--only webhookAccepts,webhookWait`. */
function selected(argv: string[]): Benchmark[] {
  const i = argv.indexOf("--only");
  if (i < 0) return BENCHMARKS;
  const names = (argv[i + 1] ?? "").split(",").map((n) => n.trim().toLowerCase()).filter(Boolean);
  const known = new Map(BENCHMARKS.map((b) => [b.name.toLowerCase(), b]));
  const unknown = names.filter((n) => !known.has(n));
  if (!names.length || unknown.length) throw new Error(`--only takes a comma-separated list of: ${BENCHMARKS.map((b) => b.name).join(", ")}`);
  return names.map((n) => known.get(n)!);
}

const chosen = selected(process.argv.slice(2));
const tmp = tempRoot();
process.on("exit", tmp.cleanup); // also on Ctrl-C and on errors; bench/lib.ts kills the children first
const runs = countFlag(process.argv.slice(2), "--runs", 15);
const samples = countFlag(process.argv.slice(2), "--samples", 200);
const pai = await buildBinary();
const bare = await buildBinary("bench/bare-server.ts", join(tmp.root, "bare"));
const bareExit = await buildBinary("bench/bare-exit.ts", join(tmp.root, "bare-exit"));
const home = tmp.dir("home");
const ctx: BenchContext = { pai: pai.outfile, bare: bare.outfile, bareExit: bareExit.outfile, runs, samples, tmp, cwd: tmp.dir("cwd"), env: childEnv(home) };
console.log(`Pai benchmarks, ${new Date().toISOString()}`);
console.log(`bun ${Bun.version}, ${process.platform}-${process.arch}, ${cpus().length} CPUs (${cpus()[0]?.model.trim() ?? "?"})`);
console.log(`dist/pai ${mb(pai.bytes)}; bare baseline (bench/bare-server.ts, same build flags) ${mb(bare.bytes)}`);
for (const bench of chosen) console.log(`\n${formatReport(await bench(ctx))}`);
