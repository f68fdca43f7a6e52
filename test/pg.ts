/**
 * A real Postgres for tests: `initdb` into a temp folder and `pg_ctl start` on a free loopback port,
 * its socket inside that folder, fsync off (a test database need not survive a power cut).
 * `stop()` kills it (`-m immediate`) and removes the folder. Postgres refuses to run as root, so as
 * root it runs as a system user (`pai-pg-test`, made with `useradd -r` when missing).
 *
 * Binaries come from PATH or Debian's /usr/lib/postgresql/<version>/bin (the package `postgresql`
 * does not put initdb on PATH; .ci/run installs it). Without them, tests use
 * `describe.skipIf(!HAVE_POSTGRES)` and call `warnSkippedWithoutPostgres("what is skipped")`.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, chownSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/** The folder holding initdb, pg_ctl and postgres (one install, so their versions match). */
function findBinDir(): string | undefined {
  const onPath = Bun.which("initdb");
  if (onPath) {
    const dir = dirname(realpathSync(onPath));
    if (existsSync(join(dir, "pg_ctl"))) return dir;
  }
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, "bin", "initdb")) && existsSync(join(root, v, "bin", "pg_ctl")))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length ? join(root, versions[0]!, "bin") : undefined;
}

export const PG_BIN = findBinDir();
export const HAVE_POSTGRES = PG_BIN !== undefined;

/** Call once in a file whose tests need Postgres; says loudly what did not run. */
export function warnSkippedWithoutPostgres(what: string) {
  if (HAVE_POSTGRES) return;
  console.warn(
    `\n*** SKIPPED (no Postgres): ${what}. initdb/pg_ctl are neither on PATH nor under /usr/lib/postgresql/*/bin; ` +
      `install the Debian package postgresql (.ci/run does). ***\n`,
  );
}

const PG_USER = "pai-pg-test";
const isRoot = process.getuid?.() === 0;

function run(cmd: string[], what: string) {
  const argv = isRoot ? ["runuser", "-u", PG_USER, "--", ...cmd] : cmd;
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${what} failed (${r.exitCode}): ${r.stderr.toString()}${r.stdout.toString()}`);
}

/** As root: the system user that owns and runs test clusters, made once. */
function ensureUser(): { uid: number; gid: number } {
  const lookup = () => {
    const u = Bun.spawnSync(["id", "-u", PG_USER]);
    const g = Bun.spawnSync(["id", "-g", PG_USER]);
    return u.exitCode === 0 ? { uid: Number(u.stdout.toString()), gid: Number(g.stdout.toString()) } : undefined;
  };
  const found = lookup();
  if (found) return found;
  const r = Bun.spawnSync(["useradd", "-r", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", PG_USER], { stderr: "pipe" });
  // Another test process may have made it meanwhile; only a user still missing is an error.
  const made = lookup();
  if (!made) throw new Error(`useradd ${PG_USER} failed: ${r.stderr.toString()}`);
  return made;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface TestPostgres {
  /** postgres://postgres@127.0.0.1:<port>/postgres, trust auth. */
  url: string;
  port: number;
  stop(): void;
}

export async function startPostgres(): Promise<TestPostgres> {
  if (!PG_BIN) throw new Error("Postgres is not installed (check HAVE_POSTGRES first)");
  const dir = mkdtempSync(join(tmpdir(), "pai-pg-"));
  const data = join(dir, "data");
  const log = join(dir, "postgres.log");
  let started = false;
  const stop = () => {
    if (started) {
      started = false;
      try {
        run([join(PG_BIN, "pg_ctl"), "stop", "-D", data, "-m", "immediate", "-w", "-s"], "pg_ctl stop");
      } catch {
        // Already gone; the folder still goes.
      }
    }
    process.off("exit", stop);
    rmSync(dir, { recursive: true, force: true });
  };
  // A test process that dies without calling stop() must not leave a postgres running.
  process.on("exit", stop);
  try {
    if (isRoot) {
      const { uid, gid } = ensureUser();
      chownSync(dir, uid, gid);
    }
    // No locale: byte-order comparison, as SQLite's BINARY collation orders names.
    run([join(PG_BIN, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync"], "initdb");
    // The port is free when picked but may be taken before postgres binds it: try a few.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const opts = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
      try {
        // -w waits until the server accepts connections.
        run([join(PG_BIN, "pg_ctl"), "start", "-D", data, "-l", log, "-w", "-t", "60", "-s", "-o", opts], "pg_ctl start");
        started = true;
        return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, port, stop };
      } catch (e) {
        if (attempt >= 3) {
          const tail = existsSync(log) ? readFileSync(log, "utf8").slice(-2000) : "";
          throw new Error(`${(e as Error).message}\n${tail}`);
        }
      }
    }
  } catch (e) {
    stop();
    throw e;
  }
}
