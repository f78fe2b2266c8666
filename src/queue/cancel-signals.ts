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

/**
 * Which of these tasks have a cancel marker. One EXISTS per task, sent together:
 * ioredis pipelines them on one node; on a cluster the markers live on different
 * shards, which a single pipeline may not span.
 */
export async function cancelledTasks(redis: Redis, keyPrefix: string, taskIds: readonly string[]): Promise<Set<string>> {
  const found = await Promise.all(taskIds.map(async (taskId) => (await redis.exists(cancelMarkerKey(keyPrefix, taskId))) === 1));
  return new Set(taskIds.filter((_taskId, index) => found[index]));
}
