import type { Redis } from "ioredis";

/**
 * Cancellation crosses processes in two steps: a durable marker first (so a
 * worker that starts later, or missed the notification, still sees it), then a
 * pub/sub notification so a running worker aborts at once.
 */
export function cancelMarkerKey(keyPrefix: string, taskId: string): string {
  return `${keyPrefix}{${taskId}}:cancel`;
}

export function cancelChannel(keyPrefix: string): string {
  return `${keyPrefix}cancel`;
}

const markerTtlSeconds = 24 * 3600;

export async function requestCancel(redis: Redis, keyPrefix: string, taskId: string): Promise<void> {
  await redis.set(cancelMarkerKey(keyPrefix, taskId), "1", "EX", markerTtlSeconds);
  await redis.publish(cancelChannel(keyPrefix), taskId);
}

/** Which of these tasks have a cancel marker; one round trip per task slot group (MGET needs one slot on a cluster, so one GET each, pipelined). */
export async function cancelledTasks(redis: Redis, keyPrefix: string, taskIds: readonly string[]): Promise<Set<string>> {
  if (taskIds.length === 0) return new Set();
  const pipeline = redis.pipeline();
  for (const taskId of taskIds) pipeline.exists(cancelMarkerKey(keyPrefix, taskId));
  const results = (await pipeline.exec()) ?? [];
  return new Set(taskIds.filter((_taskId, index) => results[index]?.[1] === 1));
}
