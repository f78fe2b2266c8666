import { Redis } from "ioredis";

export type RedisRole = "commands" | "subscriber" | "queue" | "worker" | "log-writer";

/**
 * One place that decides how each role's connection behaves:
 * - `commands` (API requests): fail fast, so a paused Redis gives a quick 503, never a hang.
 * - `subscriber`: the one pub/sub connection per process; retries forever and resubscribes.
 * - `queue` / `worker`: BullMQ requires `maxRetriesPerRequest: null` for blocking commands.
 * - `log-writer` (the worker's stream appends): waits out a Redis restart and re-sends
 *   what was in flight; that is safe because every append names the seq it expects
 *   to write, so a re-sent append that already ran is answered DUPLICATE (stream-log-scripts.ts).
 */
export function connectRedis(url: string, role: RedisRole, options: { commandTimeoutMs: number; name: string; onError?: (error: Error) => void }): Redis {
  const failFast = role === "commands" || role === "queue";
  // log-writer differs from worker only in its name (CLIENT LIST shows who appends).
  const client = new Redis(url, {
    connectionName: `${options.name}:${role}`,
    enableAutoPipelining: role === "commands",
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    maxRetriesPerRequest: failFast ? 1 : null,
    ...(failFast ? { commandTimeout: options.commandTimeoutMs } : {}),
  });
  // ioredis emits 'error' on every failed reconnect; without a listener Node would crash the process.
  client.on("error", (error: Error) => options.onError?.(error));
  return client;
}
