import type { Redis } from "ioredis";
import { cancelChannel, cancelledTasks } from "../queue/cancel-signals.ts";
import { repeatEvery, type Clock } from "../time/clock.ts";

export interface CancelWatcher {
  /** Registers a running task; its controller is aborted when a cancel arrives. Returns the unregister function. */
  watch(taskId: string, controller: AbortController): () => void;
  isCancelled(taskId: string): Promise<boolean>;
  /** Resolves once the cancel channel is subscribed (rejects if it could not be). */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

/**
 * Listens for cancel notifications on one subscriber connection per worker
 * process. Pub/sub may drop a message (a reconnect, a failover), so the durable
 * markers of running tasks are also checked every `markerCheckMs` and after
 * every reconnect: a cancel is never lost, only delayed by at most that period.
 */
export function createCancelWatcher(options: { subscriber: Redis; redis: Redis; keyPrefix: string; markerCheckMs: number; clock: Clock; onError: (error: unknown) => void }): CancelWatcher {
  const running = new Map<string, AbortController>();
  const channel = cancelChannel(options.keyPrefix);
  const abort = (taskId: string): void => running.get(taskId)?.abort(new Error("cancelled"));
  const checkMarkers = async (): Promise<void> => {
    const cancelled = await cancelledTasks(options.redis, options.keyPrefix, [...running.keys()]);
    for (const taskId of cancelled) abort(taskId);
  };
  const onMessage = (messageChannel: string, taskId: string): void => {
    if (messageChannel === channel) abort(taskId);
  };
  const onReady = (): void => void checkMarkers().catch(options.onError);
  options.subscriber.on("message", onMessage);
  options.subscriber.on("ready", onReady);
  const ready = options.subscriber.subscribe(channel).then(() => undefined);
  ready.catch(options.onError);
  const stopMarkerChecks = repeatEvery(options.clock, options.markerCheckMs, () => {
    if (running.size > 0) void checkMarkers().catch(options.onError);
  });
  return {
    ready,
    watch: (taskId, controller) => {
      running.set(taskId, controller);
      return () => {
        if (running.get(taskId) === controller) running.delete(taskId);
      };
    },
    isCancelled: async (taskId) => (await cancelledTasks(options.redis, options.keyPrefix, [taskId])).has(taskId),
    close: async () => {
      stopMarkerChecks();
      options.subscriber.off("message", onMessage);
      options.subscriber.off("ready", onReady);
      await options.subscriber.unsubscribe(channel).catch(() => undefined);
    },
  };
}
