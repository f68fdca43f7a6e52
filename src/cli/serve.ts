/** `pai serve`: config → server; exits 2 on a bad flag, 1 when the data dir is taken or not private. */
import { loadServeConfig, SERVE_HELP } from "../config/serve";
import { UsageError } from "../lib/args";
import { createLogger } from "../lib/log";
import { DataDirError } from "../store/db";
import { TlsError } from "../lib/tls";


/** Errors of modules loaded only in some modes (by name, so they are not loaded to be recognised): --kubernetes, --database. */
const STARTUP_ERRORS = new Set(["KubeConfigError", "DatabaseError"]);

/** Returns -1 while serving (the process lives on), or an exit code. */
export async function runServe(argv: string[], version: string): Promise<number> {
  let cfg;
  try {
    cfg = loadServeConfig(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`error: ${err.message}\n\n${SERVE_HELP}`);
      return 2;
    }
    throw err;
  }
  if (cfg === "help") {
    process.stdout.write(SERVE_HELP);
    return 0;
  }
  const log = createLogger(cfg.logLevel);
  const { startServer } = await import("../server");
  const starting = startServer(cfg, log, version);
  // Handlers go in before start-up finishes: a SIGTERM that arrives while the server is starting
  // (it logs "listening" before it returns) still gets a clean shutdown, not the default kill.
  const shutdown = (signal: string) => {
    log.info(`received ${signal}, shutting down`);
    starting.then(
      (server) => server.stop().then(() => process.exit(0)),
      () => process.exit(1),
    );
  };
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  try {
    await starting;
  } catch (err) {
    if (err instanceof DataDirError || err instanceof TlsError || STARTUP_ERRORS.has((err as Error)?.name)) {
      process.stderr.write(`error: ${(err as Error).message}\n`);
      return 1;
    }
    if ((err as { code?: string }).code === "EADDRINUSE") {
      process.stderr.write(`error: port ${cfg.port} is already in use (pass --port or set PAI_PORT)\n`);
      return 1;
    }
    throw err;
  }
  return -1;
}
