import { SluiceError, type ErrorCode } from "../errors/catalog.ts";

export interface ConcurrencyGate {
  /** Runs `task` when one of the `running` slots is free; waits in a queue of `queued`; beyond that throws `code`. */
  run<T>(task: () => Promise<T>): Promise<T>;
  stats(): { running: number; waiting: number };
}

/**
 * A per-process cap on expensive work (password hashes: 128 MiB and a core each). The queue
 * absorbs a burst; past it the client is told to come back (`Retry-After`) instead of every
 * request slowing down together and the process running out of memory.
 */
export function createConcurrencyGate(options: { running: number; queued: number; code: ErrorCode; retryAfterSeconds: number }): ConcurrencyGate {
  let running = 0;
  const waiting: Array<() => void> = [];
  const release = (): void => {
    const next = waiting.shift();
    if (next) next();
    else running -= 1;
  };
  return {
    run: async (task) => {
      if (running < options.running) {
        running += 1;
      } else if (waiting.length < options.queued) {
        // The slot is handed over by `release` without decrementing `running`.
        await new Promise<void>((resolve) => waiting.push(resolve));
      } else {
        throw new SluiceError(options.code, undefined, { details: { retryAfterSeconds: options.retryAfterSeconds } });
      }
      try {
        return await task();
      } finally {
        release();
      }
    },
    stats: () => ({ running, waiting: waiting.length }),
  };
}
