/** The store: opened database plus one repository per aggregate. */
import { openStore } from "./db";
import { createAgentRepo } from "./agents";
import { createSecretRepo } from "./secrets";
import { createTokenRepo } from "./tokens";
import { createSessionRepo } from "./sessions";

export function createStore(dataDir: string) {
  const opened = openStore(dataDir);
  const { db } = opened;
  return {
    db,
    agents: createAgentRepo(db),
    secrets: createSecretRepo(db),
    tokens: createTokenRepo(db),
    sessions: createSessionRepo(db),
    /** Runs `fn` in one IMMEDIATE transaction. */
    tx<T>(fn: () => T): T {
      return opened.sqlite.transaction(fn).immediate();
    },
    close: opened.close,
  };
}

export type Store = ReturnType<typeof createStore>;
