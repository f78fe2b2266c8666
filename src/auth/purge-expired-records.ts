import type { IdempotencyRepository } from "../storage/idempotency-repository.ts";
import type { SessionsRepository } from "../storage/sessions-repository.ts";
import { repeatEvery, type Clock } from "../time/clock.ts";

export interface PurgeExpiredRecords {
  /** One bounded pass: at most `batchSize × maxBatches` rows of each table. */
  runOnce(): Promise<{ sessions: number; idempotencyKeys: number }>;
  stop(): void;
}

/**
 * Deletes expired or idle sessions (SESSION_TTL_HOURS, SESSION_IDLE_TIMEOUT_MINUTES) and
 * Idempotency-Key records past IDEMPOTENCY_KEY_TTL_HOURS, every `intervalMs` in every API
 * process. Each pass is bounded, so a backlog drains over several passes instead of one long
 * statement; SKIP LOCKED keeps the processes out of each other's way. Lookups never depend on
 * it: an expired or idle session is refused by its lookup whether or not it was purged.
 */
export function startPurgeExpiredRecords(options: {
  sessions: SessionsRepository;
  idempotencyKeys: IdempotencyRepository;
  sessionIdleTimeoutMinutes: number;
  idempotencyKeyTtlHours: number;
  intervalMs: number;
  batchSize: number;
  maxBatches: number;
  /** Its wall clock dates the cut-offs; the passes run on its timers. */
  clock: Clock;
  onError: (error: unknown) => void;
}): PurgeExpiredRecords {
  const drain = async (purgeBatch: () => Promise<number>): Promise<number> => {
    let total = 0;
    for (let batch = 0; batch < options.maxBatches; batch += 1) {
      const deleted = await purgeBatch();
      total += deleted;
      if (deleted < options.batchSize) break;
    }
    return total;
  };
  const runOnce = async (): Promise<{ sessions: number; idempotencyKeys: number }> => {
    const now = options.clock.wallClockMs();
    const sessions = await drain(() => options.sessions.purgeExpired(new Date(now), new Date(now - options.sessionIdleTimeoutMinutes * 60_000), options.batchSize));
    const idempotencyKeys = await drain(() => options.idempotencyKeys.purgeExpired(new Date(now - options.idempotencyKeyTtlHours * 3600_000), options.batchSize));
    return { sessions, idempotencyKeys };
  };
  let running: Promise<unknown> | undefined;
  const stop = repeatEvery(options.clock, options.intervalMs, () => {
    // A pass still running (a slow database) is not overlapped by the next one.
    running ??= runOnce()
      .catch(options.onError)
      .finally(() => {
        running = undefined;
      });
  });
  return { runOnce, stop };
}
