/**
 * Group commit: writes queued in the same tick run in one SQLite transaction, and each caller's
 * promise resolves only after that transaction committed. Many concurrent writers then cost one
 * fsync-equivalent instead of one each, and nothing is acknowledged before it is durable.
 */
export interface GroupCommit {
  /** Queues `write` for the next transaction; resolves with its result after commit. */
  run<T>(write: () => T): Promise<T>;
  /** Queues `write` without waiting; `after` runs once it is committed. */
  queue(write: () => void, after?: () => void): void;
  /** Commits whatever is queued now. */
  flush(): void;
}

export function createGroupCommit(transaction: (fn: () => void) => void, onError: (err: unknown) => void): GroupCommit {
  type Op = { write: () => unknown; done?: (v: unknown) => void; fail?: (e: unknown) => void; after?: () => void };
  let ops: Op[] = [];
  let scheduled = false;

  function flush() {
    scheduled = false;
    if (!ops.length) return;
    const batch = ops;
    ops = [];
    const results: unknown[] = new Array(batch.length);
    const errors: unknown[] = new Array(batch.length);
    try {
      transaction(() => {
        batch.forEach((op, i) => {
          // One bad write must not undo the others: it fails alone, inside a savepoint-free try.
          try {
            results[i] = op.write();
          } catch (err) {
            errors[i] = err ?? new Error("write failed");
          }
        });
      });
    } catch (err) {
      for (const op of batch) op.fail ? op.fail(err) : onError(err);
      return;
    }
    batch.forEach((op, i) => {
      if (errors[i] !== undefined) return op.fail ? op.fail(errors[i]) : onError(errors[i]);
      op.done?.(results[i]);
      op.after?.();
    });
  }

  function schedule() {
    if (scheduled) return;
    scheduled = true;
    setImmediate(flush);
  }

  return {
    run<T>(write: () => T) {
      return new Promise<T>((done, fail) => {
        ops.push({ write, done: done as (v: unknown) => void, fail });
        schedule();
      });
    },
    queue(write, after) {
      ops.push({ write, after });
      schedule();
    },
    flush,
  };
}
