import { isUnavailableError } from "../errors/dependency-failure.ts";
import { sqlStateOf } from "../storage/database-errors.ts";

export interface RetryDatabaseOptions {
  /** Keep retrying for this long (ms): a PostgreSQL restart or failover takes seconds to a minute. */
  budgetMs: number;
  baseDelayMs: number;
  /** Backoff cap, so a database that returns is noticed soon. */
  maxDelayMs: number;
  onRetry?: (error: unknown, attempt: number) => void;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Retries an idempotent database call while PostgreSQL is unavailable
 * (connection lost, restarting, statement timeout behind a lock) for a time
 * budget, not a count of tries. Errors with another SQLSTATE are bugs or
 * constraint violations and are thrown at once. Each try is bounded by the
 * pool's statement timeout, so the whole is bounded by budget + one timeout.
 */
export async function retryDatabase<T>(operation: () => Promise<T>, options: RetryDatabaseOptions): Promise<T> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const deadline = now() + options.budgetMs;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await operation();
    } catch (error) {
      const retryable = isUnavailableError(error) || sqlStateOf(error) === undefined;
      const delay = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
      if (!retryable || now() + delay > deadline) throw error;
      options.onRetry?.(error, attempt);
      await sleep(delay);
    }
  }
}
