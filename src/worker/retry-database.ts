import { isUnavailableError } from "../errors/dependency-failure.ts";
import { sqlStateOf } from "../storage/database-errors.ts";

/**
 * Retries an idempotent database call while PostgreSQL is unavailable
 * (connection lost, restarting, statement timeout behind a lock). Errors with
 * another SQLSTATE are bugs or constraint violations and are thrown at once.
 * Each try is bounded by the pool's statement timeout, so the whole is bounded.
 */
export async function retryDatabase<T>(operation: () => Promise<T>, options: { attempts: number; baseDelayMs: number; onRetry?: (error: unknown, attempt: number) => void }): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await operation();
    } catch (error) {
      const retryable = isUnavailableError(error) || sqlStateOf(error) === undefined;
      if (!retryable || attempt >= options.attempts) throw error;
      options.onRetry?.(error, attempt);
      await new Promise((resolve) => setTimeout(resolve, options.baseDelayMs * 2 ** (attempt - 1)));
    }
  }
}
