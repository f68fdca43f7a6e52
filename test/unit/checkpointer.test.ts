/**
 * The WAL checkpoint thread, over real SQLite files: it copies the WAL into the database while the
 * writer goes on (so the writer restarts the WAL instead of growing it or checkpointing itself),
 * the writer's own automatic checkpoints become a backstop, and closing stops the thread's
 * connection before the server's, so the server's is the last and removes the WAL.
 */
import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BACKSTOP_PAGES, startCheckpointer, type Checkpointer } from "../../src/store/checkpointer";
import { openStore } from "../../src/store/db";

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "pai-ckpt-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function walDb(dir: string) {
  const file = join(dir, "t.db");
  const db = new Database(file, { create: true, strict: true });
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL");
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)");
  return { db, file };
}

/** One commit per row, each a 2 KiB blob: at least one WAL frame per commit. */
function writeRows(db: Database, from: number, count: number) {
  const insert = db.prepare("INSERT INTO t (id, v) VALUES (?, randomblob(2048))");
  for (let i = from; i < from + count; i++) insert.run(i);
}

let last: (() => unknown) | undefined;
async function until(what: string, ok: () => boolean, ms = 4_000) {
  // (bun test's own limit is 5 s per test)
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what} ${JSON.stringify(last?.())}`);
    await Bun.sleep(10);
  }
}

describe("checkpoint thread", () => {
  test("copies the WAL into the database while the writer goes on, so the writer restarts the WAL", async () => {
    const { db, file } = walDb(tmp());
    const ck = startCheckpointer(db, file, { busyMs: 10, idleMs: 40 }) as Checkpointer;
    last = () => ck.stats();
    expect(ck).not.toBeNull();
    try {
      // The writer's own automatic checkpoints are now only a backstop.
      expect((db.prepare("PRAGMA wal_autocheckpoint").get() as { wal_autocheckpoint: number }).wal_autocheckpoint).toBe(BACKSTOP_PAGES);
      writeRows(db, 0, 1500);
      // 1500 commits left thousands of frames. The writer never checkpoints below BACKSTOP_PAGES
      // frames, so whatever gets copied, the thread copied; once all is copied, the writer's next
      // commit starts the WAL from the beginning. Keep writing a row now and then until it did.
      let next = 1500;
      let most = 0;
      await until("the WAL restarted small after the thread saw it large", () => {
        writeRows(db, next++, 1);
        const s = ck.stats();
        most = Math.max(most, s.walFrames);
        return most >= 1500 && s.walFrames > 0 && s.walFrames < 100;
      });
      expect(ck.stats().walFrames).toBeLessThan(100);
      expect(ck.stats().error).toBeUndefined();
      expect((db.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n).toBe(next);
    } finally {
      ck.close();
      db.close();
    }
  });

  test("close stops the thread's connection first: the server's connection is the last and removes the WAL", async () => {
    const { db, file } = walDb(tmp());
    const ck = startCheckpointer(db, file, { busyMs: 10, idleMs: 1000 }) as Checkpointer;
    writeRows(db, 0, 50);
    await until("the thread opened its connection and ran", () => ck.stats().runs > 0);
    // Idle for a while: the thread is now between ticks, up to a second away from the next one.
    await Bun.sleep(100);
    ck.close();
    ck.close(); // idempotent
    db.close(true);
    expect(existsSync(`${file}-wal`)).toBe(false);
    const again = new Database(file, { readonly: true });
    expect((again.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n).toBe(50);
    again.close();
  });

  test("the store starts its thread once commits make the WAL grow; until then SQLite checkpoints as usual", async () => {
    const dir = tmp();
    const opened = openStore(dir);
    const autocheckpoint = () => (opened.sqlite.prepare("PRAGMA wal_autocheckpoint").get() as { wal_autocheckpoint: number }).wal_autocheckpoint;
    try {
      opened.sqlite.exec("CREATE TABLE scratch (v BLOB)");
      const insert = opened.sqlite.prepare("INSERT INTO scratch (v) VALUES (randomblob(4096))");
      // The store calls committed() after each of its transactions; here each insert is one.
      const commit = () => {
        insert.run();
        opened.checkpointer.committed();
      };
      for (let i = 0; i < 100; i++) commit();
      // A little writing: no thread, SQLite's default threshold.
      expect(opened.checkpointer.running()).toBe(false);
      expect(autocheckpoint()).toBe(1000);
      // A burst: the WAL passes START_AT_BYTES, and at the next look the thread runs.
      for (let i = 0; i < 700; i++) commit();
      expect(opened.checkpointer.running()).toBe(true);
      expect(autocheckpoint()).toBe(BACKSTOP_PAGES);
      await until("the thread checkpointed", () => opened.checkpointer.stats().runs > 0);
    } finally {
      opened.close();
    }
    // A clean stop folds the WAL in, and every row is there on reopen.
    expect(existsSync(join(dir, "pai.db-wal"))).toBe(false);
    expect(statSync(join(dir, "pai.db")).size).toBeGreaterThan(0);
    const again = openStore(dir);
    try {
      expect((again.sqlite.prepare("SELECT count(*) AS n FROM scratch").get() as { n: number }).n).toBe(800);
    } finally {
      again.close();
    }
  });
});
