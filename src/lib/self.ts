/**
 * How to start another process of this same program: the compiled binary runs itself; in
 * development (`bun src/main.ts`) it is Bun plus the entry file.
 */
import { join } from "node:path";

export function isCompiled(): boolean {
  return import.meta.path.startsWith("/$bunfs/") || /^[A-Z]:[\\/]~BUN[\\/]/.test(import.meta.path);
}

/** argv prefix that runs `pai`; append the verb (e.g. `harness`). */
export function selfCommand(): string[] {
  return isCompiled() ? [process.execPath] : [process.execPath, join(import.meta.dir, "..", "main.ts")];
}
