/** The store: opened database plus one repository per aggregate. */
import { openStore } from "./db";
import { createAgentRepo } from "./agents";
import { createSecretRepo } from "./secrets";
import { createTokenRepo } from "./tokens";
import { createSessionRepo } from "./sessions";
import { createRevisionRepo } from "./revisions";
import { createNamespaceRepo } from "./namespaces";

export function createStore(dataDir: string) {
  const opened = openStore(dataDir);
  const { db } = opened;
  // Prepared once: group commit opens a transaction per event-loop tick under load.
  const begin = opened.sqlite.prepare("BEGIN IMMEDIATE");
  const commit = opened.sqlite.prepare("COMMIT");
  const rollback = opened.sqlite.prepare("ROLLBACK");
  /** Runs `fn` in one IMMEDIATE transaction (nested calls join the outer one). */
  function tx<T>(fn: () => T): T {
    if (opened.sqlite.inTransaction) return fn();
    begin.run();
    let result: T;
    try {
      result = fn();
      commit.run();
    } catch (err) {
      if (opened.sqlite.inTransaction) rollback.run();
      revisions.rolledBack();
      throw err;
    }
    revisions.committed();
    opened.checkpointer.committed();
    return result;
  }
  const revisions = createRevisionRepo(opened.sqlite, tx);
  return {
    db,
    agents: createAgentRepo(db, revisions),
    secrets: createSecretRepo(db, revisions),
    /** The store-wide revision log of agents and secrets (their resourceVersion; what watches replay). */
    revisions,
    tokens: createTokenRepo(db),
    sessions: createSessionRepo(db),
    /** The namespaces things live in (read-only: namespaces are not stored). */
    namespaces: createNamespaceRepo(opened.sqlite),
    /** The WAL checkpoint thread (started once writes make the WAL grow). */
    checkpointer: opened.checkpointer,
    tx,
    close: opened.close,
  };
}

export type Store = ReturnType<typeof createStore>;
