import type { Logger } from "pino";
import { enqueueGeneration, type GenerationQueue } from "../queue/generation-queue.ts";
import type { MessagesRepository } from "../storage/messages-repository.ts";
import type { StreamLog } from "../streaming/index.ts";

export interface OrphanSweeper {
  /** One pass; returns what it did (for tests and logs). */
  sweep(): Promise<{ requeued: number; failed: number }>;
  stop(): void;
}

/**
 * A task must never stay `streaming` forever. Every interval, each unfinished
 * generation older than `graceMs` is checked against its queue job:
 * - no job at all (Redis lost its data, or the API died between commit and enqueue): enqueue it again,
 *   once its log has stood still (missing, or at the same seq) for `graceMs` across sweeps. A generation
 *   still running when Redis restarted empty recreates its log and writes on (generation-job.ts), and a
 *   second job with its id would run beside it: BullMQ tracks locks by job id, so the two would keep
 *   stalling each other until the task failed;
 * - job failed (stalled past the retry limit, or the worker gave up): fail the message and end the stream;
 * - job completed while the row is unfinished (should not happen): fail it the same way.
 * Every step is idempotent, so several worker processes may sweep at once.
 */
export function createOrphanSweeper(options: {
  queue: GenerationQueue;
  messages: MessagesRepository;
  streamLog: StreamLog;
  logger: Logger;
  intervalMs: number;
  graceMs: number;
  now: () => number;
}): OrphanSweeper {
  const { queue, messages, streamLog, logger } = options;
  // Per task without a job: what its log looked like and since when (ms), from earlier sweeps.
  let stillSince = new Map<string, { log: string; sinceMs: number }>();
  const sweep = async (): Promise<{ requeued: number; failed: number }> => {
    let requeued = 0;
    let failed = 0;
    const now = options.now();
    const seen = new Map<string, { log: string; sinceMs: number }>();
    const candidates = await messages.staleActive(new Date(now - options.graceMs), 500);
    for (const task of candidates) {
      const state = await queue.getJobState(task.taskId);
      if (state === "unknown") {
        const meta = await streamLog.inspect(task.taskId);
        if (meta?.state === "ended") continue; // the end is written only after the save; the row will settle
        const log = meta ? `${meta.incarnation}:${String(meta.lastSeq)}` : "missing";
        const before = stillSince.get(task.taskId);
        const since = before?.log === log ? before : { log, sinceMs: now };
        seen.set(task.taskId, since);
        if (now - since.sinceMs < options.graceMs) continue;
        seen.delete(task.taskId);
        await enqueueGeneration(queue, { taskId: task.taskId, messageId: task.messageId, conversationId: task.conversationId, userId: task.userId, model: task.model ?? "" });
        requeued += 1;
        logger.warn({ taskId: task.taskId }, "re-enqueued an accepted generation whose queue job had vanished");
      } else if (state === "failed" || state === "completed") {
        const job = await queue.getJob(task.taskId);
        const stalled = (job?.stalledCounter ?? 0) > 0 || (job?.attemptsStarted ?? 0) > 1;
        const error = stalled
          ? { code: "WORKER_LOST" as const, message: "The generation was interrupted too many times and gave up." }
          : { code: "GENERATION_ORPHANED" as const, message: "The generation stopped making progress and was ended." };
        await messages.forceFinish(task.taskId, {
          status: "failed", content: "", lastSeq: null, inputTokens: null, outputTokens: null, errorCode: error.code, errorMessage: error.message,
        });
        await streamLog.forceEnd(task.taskId, { status: "failed", error, messageId: task.messageId });
        failed += 1;
        logger.warn({ taskId: task.taskId, state, code: error.code }, "ended an orphaned generation");
      }
    }
    stillSince = seen;
    return { requeued, failed };
  };
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    sweep()
      .catch((error: unknown) => logger.warn({ err: error }, "orphan sweep failed; will retry"))
      .finally(() => {
        running = false;
      });
  }, options.intervalMs);
  timer.unref();
  return { sweep, stop: () => clearInterval(timer) };
}
