import { Redis } from "ioredis";

export type RedisRole = "commands" | "subscriber" | "queue" | "worker" | "log-writer";

/**
 * One place that decides how each role's connection behaves:
 * - `commands` (API requests): fail fast, so a paused Redis gives a quick 503, never a hang.
 * - `subscriber`: the one pub/sub connection per process; retries forever and resubscribes.
 * - `queue` / `worker`: BullMQ requires `maxRetriesPerRequest: null` for blocking commands.
 * - `log-writer` (the worker's stream appends): waits out a Redis restart, but never
 *   re-sends a command that was already written to the socket: an append whose
 *   reply was lost might have run, and running it twice would duplicate text.
 */
export function connectRedis(url: string, role: RedisRole, options: { commandTimeoutMs: number; name: string; onError?: (error: Error) => void }): Redis {
  const failFast = role === "commands" || role === "queue";
  const client = new Redis(url, {
    autoResendUnfulfilledCommands: role !== "log-writer",
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
