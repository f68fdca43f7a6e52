// The Postgres schema must be the SQLite schema in another dialect: same tables, columns,
// nullability, keys and indexes (partial predicates included), so the two cannot drift.
import { describe, expect, test } from "bun:test";
import { getTableConfig as sqliteConfig, SQLiteTable } from "drizzle-orm/sqlite-core";
import { getTableConfig as pgConfig, PgTable } from "drizzle-orm/pg-core";
import { is, SQL } from "drizzle-orm";
import * as lite from "../../src/store/schema.sql";
import * as pg from "../../src/store/schema.pg";

const colName = (c: unknown) => (c as { name: string }).name;
const sqlText = (s: SQL | undefined) =>
  s ? s.queryChunks.map((c) => ((c as { value?: string[] }).value ?? []).join("")).join("") : null;

type Shape = {
  columns: { name: string; notNull: boolean; primary: boolean }[];
  primaryKeys: string[][];
  indexes: { name: string; unique: boolean; columns: string[]; where: string | null }[];
  foreignKeys: { columns: string[]; foreignTable: string; foreignColumns: string[]; onDelete: string | undefined }[];
};

function shape(cfg: ReturnType<typeof sqliteConfig> | ReturnType<typeof pgConfig>): Shape {
  return {
    columns: cfg.columns.map((c) => ({ name: c.name, notNull: c.notNull, primary: c.primary })).sort((a, b) => a.name.localeCompare(b.name)),
    primaryKeys: cfg.primaryKeys.map((pk) => pk.columns.map(colName)),
    indexes: cfg.indexes
      .map((i) => ({
        name: i.config.name!,
        unique: i.config.unique,
        columns: i.config.columns.map(colName),
        where: sqlText(i.config.where),
      }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    foreignKeys: cfg.foreignKeys.map((fk) => {
      const r = fk.reference();
      return {
        columns: r.columns.map(colName),
        foreignTable: (r.foreignTable as unknown as { [k: symbol]: string })[Symbol.for("drizzle:Name")]!,
        foreignColumns: r.foreignColumns.map(colName),
        onDelete: fk.onDelete,
      };
    }),
  };
}

const liteTables = Object.values(lite).filter((t) => is(t, SQLiteTable)).map((t) => sqliteConfig(t as SQLiteTable));
const pgTables = Object.values(pg).filter((t) => is(t, PgTable)).map((t) => pgConfig(t as PgTable));

describe("schema parity (SQLite vs Postgres)", () => {
  test("the same tables", () => {
    const names = (ts: { name: string }[]) => ts.map((t) => t.name).sort();
    expect(names(liteTables).length).toBe(10);
    expect(names(pgTables)).toEqual(names(liteTables));
  });

  for (const l of liteTables) {
    test(`${l.name}: columns, nullability, keys, indexes and foreign keys`, () => {
      const p = pgTables.find((t) => t.name === l.name)!;
      expect(p).toBeDefined();
      const ls = shape(l);
      const ps = shape(p);
      expect(ls.columns.length).toBeGreaterThan(0);
      expect(ps).toEqual(ls);
    });
  }

  test("the partial indexes are compared by their predicates", () => {
    const partial = liteTables.flatMap((t) => shape(t).indexes.filter((i) => i.where));
    expect(partial.map((i) => [i.name, i.where])).toEqual([
      ["delivery_log_refused_idx", "code >= 400"],
      ["sessions_callback_due_idx", "callback_state = 'pending' AND finished_at IS NOT NULL"],
      ["sessions_finished_idx", "finished_at IS NOT NULL"],
      ["sessions_pending_idx", "phase = 'Pending'"],
      ["sessions_running_idx", "phase = 'Running'"],
    ]);
  });

  test("revisions.rev counts by itself in both (AUTOINCREMENT, identity)", () => {
    const l = liteTables.find((t) => t.name === "revisions")!.columns.find((c) => c.name === "rev")!;
    const p = pgTables.find((t) => t.name === "revisions")!.columns.find((c) => c.name === "rev")!;
    expect((l as unknown as { autoIncrement: boolean }).autoIncrement).toBe(true);
    expect(p.generatedIdentity?.type).toBe("byDefault");
  });
});
