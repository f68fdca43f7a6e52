import { defineConfig } from "drizzle-kit";

// The Postgres dialect of the same schema (replicas sharing one database); drizzle.config.ts is SQLite's.
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/store/schema.pg.ts",
  out: "./db/migrations-pg",
});
