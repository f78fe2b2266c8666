import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { defineScript, type RedisClient } from "../redis/run-script.ts";
import { withSpan } from "../tracing/with-span.ts";
import { activeTraceparent } from "../tracing/traceparent.ts";
import { generationJobRetries } from "./generation-retries.ts";

export const generationQueueName = "generations";

/** What a generation job carries: ids only, never prompt text or secrets (they are read from PostgreSQL). */
export interface GenerationJobData {
  taskId: string;
  messageId: string;
  conversationId: string;
  userId: string;
  model: string;
  /** W3C trace context of the enqueueing request, when tracing is on; the job span continues that trace. */
  traceparent?: string;
}

/**
 * BullMQ's keys all share this prefix; the braces are a hash tag so that on
 * Redis Cluster every key of the queue lands in one slot, as BullMQ requires.
 */
export function queuePrefix(keyPrefix: string): string {
  return `${keyPrefix}{queue}`;
}

export type GenerationQueue = Queue<GenerationJobData>;

export function createGenerationQueue(connection: Redis, keyPrefix: string): GenerationQueue {
  return new Queue<GenerationJobData>(generationQueueName, { connection, prefix: queuePrefix(keyPrefix) });
}

/**
 * Adds the job whose id is the task id. Adding a job id that exists is a no-op
 * in BullMQ, so the API and the orphan sweeper may both call this safely.
 */
export async function enqueueGeneration(queue: GenerationQueue, data: GenerationJobData): Promise<void> {
  await withSpan("enqueue", { attributes: { "sluice.task_id": data.taskId, "messaging.destination.name": generationQueueName } }, async () => {
    const traceparent = activeTraceparent();
    await queue.add("generate", traceparent === undefined ? data : { ...data, traceparent }, {
      jobId: data.taskId,
      // Stalled-job recovery (a killed worker) is bounded by the worker's maxStalledCount;
      // provider retries happen inside the job, before the first token only. A job that failed on
      // an unavailable dependency is retried as a new attempt; the worker decides how often
      // (JOB_ATTEMPTS, generation-retries.ts).
      ...generationJobRetries,
      removeOnComplete: { age: 3600, count: 10_000 },
      removeOnFail: { age: 24 * 3600, count: 10_000 },
    });
  });
}

// Active jobs with no lock key: BullMQ's own stalled check (every stalledInterval) would move them
// back to waiting or fail them, but until it runs they are owned by a worker that is dead or frozen.
// One script, so the list and the locks are read at one instant; every key shares the {queue} slot.
const countStalled = defineScript(`
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
local stalled = 0
for _, id in ipairs(ids) do
  if redis.call('EXISTS', ARGV[1] .. id .. ':lock') == 0 then stalled = stalled + 1 end
end
return stalled
`);

/**
 * Job counts for the `sluice_queue_jobs` gauge: BullMQ's waiting, active,
 * delayed and failed, plus `stalled` = active jobs whose lock has expired
 * (their worker died or froze for longer than JOB_LOCK_DURATION_MS, and no
 * worker's stalled check has handled them yet).
 */
export async function queueJobCounts(queue: GenerationQueue, redis: RedisClient): Promise<Record<string, number>> {
  const [counts, stalled] = await Promise.all([
    queue.getJobCounts("waiting", "active", "delayed", "failed"),
    countStalled(redis, [queue.toKey("active")], [queue.toKey("")]),
  ]);
  return { ...counts, stalled: Number(stalled) };
}
