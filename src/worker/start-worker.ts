import { WaitingError, Worker } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { generationQueueName, queuePrefix, type GenerationJobData, type GenerationQueue } from "../queue/generation-queue.ts";
import { finalFailureCode, retryOrGiveUp } from "../queue/generation-retries.ts";
import type { MessagesRepository } from "../storage/messages-repository.ts";
import type { StreamLog } from "../streaming/index.ts";
import type { LlmProvider } from "../llm/llm-provider.ts";
import { sleep, type Clock } from "../time/clock.ts";
import { redactDatabaseError } from "../logging/redact-database-error.ts";
import { createCancelWatcher } from "./cancel-watcher.ts";
import type { ContextBudget } from "./context-budget.ts";
import { createGenerationJob, type GenerationMetrics } from "./generation-job.ts";
import { oneRunPerTask } from "./one-run-per-task.ts";
import { createOrphanSweeper, endFailedGeneration } from "./orphan-sweeper.ts";
import { retryDatabase } from "./retry-within-budget.ts";

export interface WorkerSettings {
  keyPrefix: string;
  concurrency: number;
  /**
   * Attempts of one generation when workers die under it (BullMQ stalled-job recovery), and,
   * counted apart, when a dependency stays unavailable past the job's own retry budget.
   */
  attempts: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  orphanSweepIntervalMs: number;
  orphanGraceMs: number;
  shutdownGraceMs: number;
  coalesceWindowMs: number | (() => number);
  coalesceMaxBytes: number;
  providerMaxRetries: number;
  finalSaveRetryMs: number;
  /** Each model's context budget: the history sent fits it (context-budget.ts). */
  context: ContextBudget;
}

export interface RunningWorker {
  readonly sweeper: { sweep(): Promise<{ requeued: number; failed: number }> };
  /** Resolves once the worker takes jobs: BullMQ's connections are up and the cancel channel is subscribed. */
  readonly ready: Promise<void>;
  /** Stops taking jobs, lets running ones finish within the grace period, then hands the rest back. */
  stop(): Promise<void>;
}

/** The generation worker: BullMQ consumer, cancel watcher and orphan sweeper, each owned and closed here. */
export function startWorker(options: {
  settings: WorkerSettings;
  connections: { worker: Redis; subscriber: Redis; commands: Redis };
  queue: GenerationQueue;
  streamLog: StreamLog;
  messages: MessagesRepository;
  provider: LlmProvider;
  logger: Logger;
  clock: Clock;
  metrics?: GenerationMetrics;
}): RunningWorker {
  const { settings, logger } = options;
  const cancels = createCancelWatcher({
    subscriber: options.connections.subscriber,
    redis: options.connections.commands,
    keyPrefix: settings.keyPrefix,
    markerCheckMs: 2_000,
    clock: options.clock,
    onError: (error) => logger.warn({ err: error }, "cancel watcher error"),
  });
  const runJob = createGenerationJob({
    streamLog: options.streamLog,
    messages: options.messages,
    provider: options.provider,
    cancels,
    logger,
    coalesceWindowMs: settings.coalesceWindowMs,
    coalesceMaxBytes: settings.coalesceMaxBytes,
    providerMaxRetries: settings.providerMaxRetries,
    finalSaveRetryMs: settings.finalSaveRetryMs,
    context: settings.context,
    clock: options.clock,
    ...(options.metrics ? { metrics: options.metrics } : {}),
  });
  // Aborted when the shutdown grace period is over: running generations stop unsaved and their
  // jobs go back to the queue at once (moveToWait), so another worker starts a new attempt.
  const shutdown = new AbortController();
  const runTask = oneRunPerTask((data: GenerationJobData) => runJob(data, shutdown.signal));
  const worker = new Worker<GenerationJobData>(generationQueueName, async (job, token) => {
    let outcome;
    try {
      // A retry after a dependency failure waits for PostgreSQL first (within the same budget as
      // the final save), so the new attempt's `reset` does not empty the viewers' text while the
      // attempt cannot run. A task deleted meanwhile has nothing left to run.
      if (job.attemptsMade > 0 && !(await retryDatabase(() => options.messages.findTask(job.data.taskId), { budgetMs: settings.finalSaveRetryMs, baseDelayMs: 200, maxDelayMs: 2_000, clock: options.clock }))) return;
      outcome = await runTask(job.data);
    } catch (error) {
      // The job decides retries (generation-retries.ts): a dependency failure with attempts left is
      // rethrown for BullMQ to retry as a new fenced attempt; anything else fails the job for good.
      // BullMQ keeps the thrown error's message and stack in the job hash: never a statement's text or parameters.
      throw redactDatabaseError(retryOrGiveUp(error, job.attemptsMade, settings.attempts));
    }
    const { result, joined } = outcome;
    if (joined) logger.info({ taskId: job.data.taskId }, "a second job for a task running here waited for it");
    if (result === "handed-back") {
      await job.moveToWait(token);
      throw new WaitingError();
    }
  }, {
    connection: options.connections.worker,
    prefix: queuePrefix(settings.keyPrefix),
    concurrency: settings.concurrency,
    lockDuration: settings.lockDurationMs,
    // Renewed every sixth of the lock (1 s by default; BullMQ's default is half), so a live worker
    // keeps its job through an event-loop stall of ~5/6 of the lock: the short lock that lets a dead
    // worker's job be taken over within 10 s must not take a merely busy worker's job (env-schema.ts).
    lockRenewTime: Math.max(100, Math.floor(settings.lockDurationMs / 6)),
    stalledInterval: settings.stalledIntervalMs,
    // A job whose worker died is re-run (a new fenced attempt) up to attempts - 1 times, then fails.
    maxStalledCount: Math.max(0, settings.attempts - 1),
    autorun: false,
  });
  worker.on("error", (error) => logger.warn({ err: error }, "worker error"));
  worker.on("stalled", (jobId) => {
    logger.warn({ taskId: jobId }, "job stalled: its worker lost the lock; re-queued as a new attempt");
    options.metrics?.jobsStalled?.inc();
  });
  worker.on("failed", (job, error) => {
    if (!job) return;
    const code = finalFailureCode(job, error);
    if (code === undefined) {
      logger.warn({ taskId: job.id, err: error, attemptsMade: job.attemptsMade, delayMs: job.delay }, "generation failed on an unavailable dependency; the job is retried as a new attempt");
      return;
    }
    logger.error({ taskId: job.id, err: error, code }, "generation job failed");
    // RELIABILITY.md fault 4: the stream ends and the row is saved at once, not after ORPHAN_TIMEOUT_MS;
    // if PostgreSQL or Redis refuse it now, the orphan sweeper does it later.
    void endFailedGeneration({ messages: options.messages, streamLog: options.streamLog }, { taskId: job.data.taskId, messageId: job.data.messageId }, code).then(
      (ended) => logger.warn({ taskId: job.id, code, ended }, "ended the failed generation"),
      (endError: unknown) => logger.warn({ taskId: job.id, err: endError }, "could not end the failed generation; the orphan sweeper will"),
    );
  });
  void worker.run().catch((error: unknown) => logger.error({ err: error }, "worker stopped"));
  const ready = Promise.all([worker.waitUntilReady(), cancels.ready]).then(() => undefined);
  const sweeper = createOrphanSweeper({
    queue: options.queue,
    messages: options.messages,
    streamLog: options.streamLog,
    logger,
    intervalMs: settings.orphanSweepIntervalMs,
    graceMs: settings.orphanGraceMs,
    clock: options.clock,
  });
  return {
    sweeper,
    ready,
    stop: async () => {
      sweeper.stop();
      // Graceful: stop taking jobs and let running ones finish within the grace period; past it,
      // abort them so they hand their jobs back (a second close() would not force anything: BullMQ
      // returns the first call's promise).
      const graceOver = new AbortController();
      const graceful = worker.close();
      const timedOut = sleep(options.clock, settings.shutdownGraceMs, graceOver.signal).then(() => "timeout" as const, () => "closed" as const);
      if ((await Promise.race([graceful, timedOut])) === "timeout") {
        logger.warn({ graceMs: settings.shutdownGraceMs }, "shutdown grace period over; handing running jobs back");
        shutdown.abort();
        await graceful;
      }
      graceOver.abort();
      await cancels.close();
    },
  };
}
