import type { Logger } from "pino";
import { errorCatalog, type ErrorCode } from "../errors/catalog.ts";
import { enqueueGeneration, type GenerationQueue } from "../queue/generation-queue.ts";
import { isActiveStatus, type MessagesRepository } from "../storage/messages-repository.ts";
import type { StreamLog } from "../streaming/index.ts";
import { repeatEvery, type Clock } from "../time/clock.ts";
import { replyBefore } from "./reply-so-far.ts";

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
  /** Its wall clock, compared with the rows' `updated_at`. */
  clock: Clock;
}): OrphanSweeper {
  const { queue, messages, streamLog, logger } = options;
  // Per task without a job: what its log looked like and since when (ms), from earlier sweeps.
  let stillSince = new Map<string, { log: string; sinceMs: number }>();
  const sweep = async (): Promise<{ requeued: number; failed: number }> => {
    let requeued = 0;
    let failed = 0;
    const now = options.clock.wallClockMs();
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
        // Normally the worker that failed the job has ended the task already (start-worker.ts);
        // this is the fallback when it could not (PostgreSQL down then, the process died).
        const job = await queue.getJob(task.taskId);
        const code = job?.deferredFailure || (job?.stalledCounter ?? 0) > 0 ? "WORKER_LOST" : "GENERATION_ORPHANED";
        await endFailedGeneration({ messages, streamLog }, task, code);
        failed += 1;
        logger.warn({ taskId: task.taskId, state, code }, "ended an orphaned generation");
      }
    }
    stillSince = seen;
    return { requeued, failed };
  };
  let running = false;
  const stop = repeatEvery(options.clock, options.intervalMs, () => {
    if (running) return;
    running = true;
    sweep()
      .catch((error: unknown) => logger.warn({ err: error }, "orphan sweep failed; will retry"))
      .finally(() => {
        running = false;
      });
  });
  return { sweep, stop };
}

/**
 * Ends a generation that will not run again (its job failed for good, or vanished as failed):
 * saves the message `failed` with `code` and the text the log holds after its last `start` or
 * `reset` (what viewers have, PROTOCOL.md 3.2; never an empty reply when text was streamed),
 * then writes the failed `end`. A row that is final already (or gone) is not touched, and
 * the log is only made to agree with it. Idempotent; unfenced, like `forceEnd`.
 */
export async function endFailedGeneration(
  dependencies: { messages: MessagesRepository; streamLog: StreamLog },
  task: { taskId: string; messageId: string },
  code: ErrorCode,
): Promise<"ended" | "already-final"> {
  const { messages, streamLog } = dependencies;
  const { taskId, messageId } = task;
  const meta = await streamLog.inspect(taskId);
  const { text: content, reasoning } = meta && meta.state === "live" ? await replyBefore(streamLog, taskId) : { text: "", reasoning: "" };
  const error = { code, message: errorCatalog[code].message };
  const saved = await messages.forceFinish(taskId, {
    status: "failed", content, reasoning, lastSeq: meta?.lastSeq ?? null, inputTokens: null, outputTokens: null, errorCode: code, errorMessage: error.message,
  });
  if (saved) {
    await streamLog.forceEnd(taskId, { status: "failed", error, messageId });
    return "ended";
  }
  // Saved by its attempt (or deleted with its conversation, whose log then holds its tombstone):
  // a live log gets the row's own outcome, never a second, contradicting one.
  const row = await messages.findTask(taskId);
  if (row && meta?.state === "live" && !isActiveStatus(row.status)) {
    await streamLog.forceEnd(taskId, { status: row.status, messageId });
  }
  return "already-final";
}
