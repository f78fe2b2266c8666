import type { RedisClient } from "../redis/run-script.ts";
import type { GenerationQueue } from "./generation-queue.ts";

/**
 * True while the task's job is queued or running (it exists and has not finished):
 * the worker has yet to begin, or is beginning, the attempt that creates the log.
 * One HMGET on BullMQ's job hash (its `timestamp` is set when added, `finishedOn`
 * when completed or failed), so a stream opened before its generation starts
 * needs no PostgreSQL lookup (issue 13, the start path).
 */
export async function isJobPending(queue: GenerationQueue, redis: RedisClient, taskId: string): Promise<boolean> {
  const [addedAt, finishedOn] = await redis.hmget(queue.toKey(taskId), "timestamp", "finishedOn");
  return addedAt !== null && finishedOn === null;
}
