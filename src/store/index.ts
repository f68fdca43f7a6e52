/** The store: opened database plus one repository per aggregate. */
import { openStore } from "./db";
import { createAgentRepo } from "./agents";
import { createSecretRepo } from "./secrets";
import { createTokenRepo } from "./tokens";
import { createSessionRepo } from "./sessions";

export function createStore(dataDir: string) {
  const opened = openStore(dataDir);
  const { db } = opened;
  // Prepared once: group commit opens a transaction per event-loop tick under load.
  const begin = opened.sqlite.prepare("BEGIN IMMEDIATE");
  const commit = opened.sqlite.prepare("COMMIT");
  const rollback = opened.sqlite.prepare("ROLLBACK");
  return {
    db,
    agents: createAgentRepo(db),
    secrets: createSecretRepo(db),
    tokens: createTokenRepo(db),
    sessions: createSessionRepo(db),
    /** The WAL checkpoint thread (null: SQLite checkpoints on the server's connection). */
    checkpointer: opened.checkpointer,
    /** Runs `fn` in one IMMEDIATE transaction (nested calls join the outer one). */
    tx<T>(fn: () => T): T {
      if (opened.sqlite.inTransaction) return fn();
      begin.run();
      try {
        const result = fn();
        commit.run();
        return result;
      } catch (err) {
        if (opened.sqlite.inTransaction) rollback.run();
        throw err;
      }
    },
    close: opened.close,
  };
}

export type Store = ReturnType<typeof createStore>;
