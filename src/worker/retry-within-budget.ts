import { isUnavailableError } from "../errors/dependency-failure.ts";
import { sqlStateOf } from "../storage/database-errors.ts";
import { sleep, systemClock, type Clock } from "../time/clock.ts";

export interface RetryOptions {
  /** Keep retrying for this long (ms): a restart or failover takes seconds to a minute. */
  budgetMs: number;
  baseDelayMs: number;
  /** Backoff cap, so a dependency that returns is noticed soon. */
  maxDelayMs: number;
  /** Errors worth another try; any other is thrown at once. */
  retryable: (error: unknown) => boolean;
  onRetry?: (error: unknown, attempt: number) => void;
  /** Stops retrying (the last error is thrown) once aborted; an abort also ends the wait for the next try. */
  signal?: AbortSignal;
  /** The budget is measured and the backoff waited on it (default: the system clock). */
  clock?: Clock;
}

/**
 * Retries an idempotent call while it fails with a retryable error, for a time
 * budget rather than a count of tries, with capped exponential backoff. The
 * last error is thrown when the next wait would pass the budget.
 */
export async function retryWithinBudget<T>(operation: () => Promise<T>, options: RetryOptions): Promise<T> {
  const clock = options.clock ?? systemClock;
  const deadline = clock.monotonicMs() + options.budgetMs;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await operation();
    } catch (error) {
      const delay = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
      if (!options.retryable(error) || options.signal?.aborted === true || clock.monotonicMs() + delay > deadline) throw error;
      options.onRetry?.(error, attempt);
      await sleep(clock, delay, options.signal).catch(() => undefined);
    }
  }
}

/**
 * Retries a database call while PostgreSQL is unavailable (connection lost,
 * restarting, statement timeout behind a lock). Errors with another SQLSTATE
 * are bugs or constraint violations and are thrown at once. Each try is bounded
 * by the pool's statement timeout, so the whole is bounded by budget + one timeout.
 */
export async function retryDatabase<T>(operation: () => Promise<T>, options: Omit<RetryOptions, "retryable">): Promise<T> {
  return await retryWithinBudget(operation, { ...options, retryable: (error) => isUnavailableError(error) || sqlStateOf(error) === undefined });
}
