import { UnrecoverableError, type Job } from "bullmq";
import { isSluiceError, type ErrorCode } from "../errors/catalog.ts";
import { isRedisOutOfMemory, isUnavailableError } from "../errors/dependency-failure.ts";
import { sqlStateOf } from "../storage/database-errors.ts";

/**
 * How BullMQ may retry a generation job that threw (RELIABILITY.md "What is guaranteed at the
 * edges"). The job decides: the worker rethrows a dependency failure (PostgreSQL or Redis
 * unavailable past the job's own retry budget) while it has attempts left, and turns anything
 * else into an `UnrecoverableError`, so `attempts` here is only a ceiling above the worker's
 * JOB_ATTEMPTS (at most 50, src/config). A worker that dies is a different count: BullMQ's
 * stalled-job recovery, bounded by the worker's maxStalledCount.
 */
export const generationJobRetries = {
  attempts: 50,
  // 1 s, 2 s, 4 s, ...: the retry itself first waits for PostgreSQL (start-worker.ts), so the
  // backoff only spaces out the attempts of a dependency that answers and fails again.
  backoff: { type: "exponential", delay: 1_000 },
} as const;

// Errors of our own code, not of a dependency: retrying runs into them again.
const programmingErrors = new Set(["TypeError", "RangeError", "ReferenceError", "SyntaxError"]);

/**
 * True when a job failed because a dependency was unavailable, so a new attempt later may
 * succeed: PostgreSQL unreachable, restarting or timing out (no SQLSTATE, or classes 08/53/57),
 * Redis down or out of memory (SERVICE_UNAVAILABLE, STORE_FULL). A SQLSTATE of another class, a
 * Redis reply error (a script or command refused), another catalog code or a programming error
 * is permanent.
 */
export function isTransientJobFailure(error: unknown): boolean {
  if (isSluiceError(error)) return error.code === "SERVICE_UNAVAILABLE" || error.code === "STORE_FULL";
  if (isUnavailableError(error) || isRedisOutOfMemory(error)) return true;
  if (sqlStateOf(error) !== undefined) return false;
  if (!(error instanceof Error)) return false;
  return error.name !== "ReplyError" && !programmingErrors.has(error.name);
}

/** A job failure BullMQ will not retry: the task is over and its stream must end now. */
export class GenerationGaveUp extends UnrecoverableError {
  /** The code the failed `end` and the saved message carry (PROTOCOL.md 3.1). */
  readonly endCode: ErrorCode;
  constructor(cause: unknown, endCode: ErrorCode) {
    super(`generation gave up (${endCode})`);
    this.name = "UnrecoverableError";
    this.cause = cause;
    this.endCode = endCode;
  }
}

/**
 * What the processor throws for an error of the generation job: the error itself while a
 * dependency failure has attempts left (BullMQ retries it after the backoff, as a new fenced
 * attempt), otherwise a `GenerationGaveUp` carrying the code to end the stream with.
 *
 * @example throw retryOrGiveUp(error, job.attemptsMade, settings.attempts);
 */
export function retryOrGiveUp(error: unknown, attemptsMade: number, maxAttempts: number): unknown {
  const transient = isTransientJobFailure(error);
  if (transient && attemptsMade + 1 < maxAttempts) return error;
  return new GenerationGaveUp(error, transient ? "SERVICE_UNAVAILABLE" : isSluiceError(error) ? error.code : "INTERNAL");
}

/**
 * Whether a `failed` event is final (no retry follows) and with which code the task ends:
 * WORKER_LOST when BullMQ's stalled check failed it (workers died under it more than
 * maxStalledCount times), the processor's code when it gave up, INTERNAL for a job BullMQ
 * failed with no retries left (enqueued by an older release with `attempts: 1`).
 */
export function finalFailureCode(job: Pick<Job, "deferredFailure" | "attemptsMade" | "opts">, error: unknown): ErrorCode | undefined {
  if (job.deferredFailure) return "WORKER_LOST";
  if (error instanceof GenerationGaveUp) return error.endCode;
  if (error instanceof Error && error.name === "UnrecoverableError") return "INTERNAL";
  if (job.attemptsMade >= (job.opts.attempts ?? 1)) return isTransientJobFailure(error) ? "SERVICE_UNAVAILABLE" : "INTERNAL";
  return undefined;
}
