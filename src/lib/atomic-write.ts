/** Writing a file so that no reader ever sees half of it. */
import { randomBytes } from "node:crypto";
import { renameSync, unlinkSync, writeFileSync } from "node:fs";

/**
 * Writes `data` to a new file beside `file` (created, never reused: `wx`) and renames it over
 * `file`: a crash leaves the old file or the new one, and writers racing each replace it whole.
 */
export function writeFileAtomic(file: string, data: string, mode: number) {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    writeFileSync(tmp, data, { mode, flag: "wx" });
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // Never created.
    }
    throw err;
  }
}
