import { Queue } from "bullmq";
import type { Redis } from "ioredis";

export const generationQueueName = "generations";

/** What a generation job carries: ids only, never prompt text or secrets (they are read from PostgreSQL). */
export interface GenerationJobData {
  taskId: string;
  messageId: string;
  conversationId: string;
  userId: string;
  model: string;
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
  await queue.add("generate", data, {
    jobId: data.taskId,
    // Stalled-job recovery (a killed worker) is bounded by the worker's maxStalledCount;
    // provider retries happen inside the job, before the first token only.
    attempts: 1,
    removeOnComplete: { age: 3600, count: 10_000 },
    removeOnFail: { age: 24 * 3600, count: 10_000 },
  });
}
