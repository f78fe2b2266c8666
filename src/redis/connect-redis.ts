import { Cluster, Redis } from "ioredis";

export type RedisRole = "commands" | "subscriber" | "queue" | "worker" | "log-writer";

export interface ConnectRedisOptions {
  commandTimeoutMs: number;
  name: string;
  onError?: (error: Error) => void;
}

export interface ClusterNode {
  readonly host: string;
  readonly port: number;
}

const reconnectDelayMs = (times: number): number => Math.min(50 * 2 ** Math.min(times, 6), 2000);

/**
 * One place that decides how each role's connection behaves:
 * - `commands` (API requests): fail fast, so a paused Redis gives a quick 503, never a hang.
 * - `subscriber`: the one pub/sub connection per process; retries forever and resubscribes.
 * - `queue` / `worker`: BullMQ requires `maxRetriesPerRequest: null` for blocking commands.
 * - `log-writer` (the worker's stream appends): waits out a Redis restart and re-sends
 *   what was in flight; that is safe because every append names the seq it expects
 *   to write, so a re-sent append that already ran is answered DUPLICATE (stream-log-scripts.ts).
 */
export function connectRedis(url: string, role: RedisRole, options: ConnectRedisOptions): Redis {
  const failFast = isFailFast(role);
  // log-writer differs from worker in its name (CLIENT LIST shows who appends) and in
  // auto-pipelining: appends of many concurrent streams share one socket write (bench profile).
  const client = new Redis(ioredisAddress(url), {
    connectionName: `${options.name}:${role}`,
    enableAutoPipelining: role === "commands" || role === "log-writer",
    retryStrategy: reconnectDelayMs,
    maxRetriesPerRequest: failFast ? 1 : null,
    ...(failFast ? { commandTimeout: options.commandTimeoutMs } : {}),
  });
  // ioredis emits 'error' on every failed reconnect; without a listener Node would crash the process.
  client.on("error", (error: Error) => options.onError?.(error));
  if (role === "subscriber") handleResubscribeRejections();
  return client;
}

/**
 * `unix:///path/redis.sock[?password=…]` (REDIS_URL, the managed server) in the form ioredis reads:
 * the path itself, whose query becomes options. Other URLs pass through.
 */
export function ioredisAddress(url: string): string {
  return url.startsWith("unix://") ? url.slice("unix://".length) : url;
}

/**
 * After a reconnect, ioredis re-sends SUBSCRIBE/PSUBSCRIBE/SSUBSCRIBE for the channels it had
 * (autoResubscribe) and drops the returned promise: a connection closed before the reply (a
 * shutdown during a Redis restart) turns it into an unhandled rejection ("Connection is closed.",
 * seen in a CI run of runtime.test.ts). Every call's promise gets a handler; callers that await it
 * still see its rejection, and the hub re-subscribes on `ready` itself. Patched once on the
 * prototype, so it also covers the per-shard subscriber connections that a Cluster with
 * `shardedSubscribers` opens by itself, out of our reach.
 */
let resubscribeRejectionsHandled = false;
function handleResubscribeRejections(): void {
  if (resubscribeRejectionsHandled) return;
  resubscribeRejectionsHandled = true;
  const prototype = Redis.prototype as unknown as Record<string, (this: Redis, ...args: unknown[]) => Promise<unknown>>;
  for (const method of ["subscribe", "psubscribe", "ssubscribe"] as const) {
    const original = prototype[method];
    if (original === undefined) throw new Error(`ioredis has no ${method}`);
    prototype[method] = function (this: Redis, ...args: unknown[]): Promise<unknown> {
      const pending = original.apply(this, args);
      pending.catch(() => undefined);
      return pending;
    };
  }
}

/**
 * The Redis Cluster twin of `connectRedis`, with the same per-role behaviour.
 * Differences a cluster needs:
 * - `subscriber` also opens one sharded subscriber per master (`shardedSubscribers`), so the
 *   hub's SSUBSCRIBE reaches the shard that owns each stream's `{taskId}` channel; classic
 *   SUBSCRIBE (the worker's cancel channel) still works on the same client.
 * - node connections reconnect by themselves (`clusterNodeRetryStrategy`): without it a master
 *   that restarts with the same slots would be found again only after a MOVED reply.
 * - `commands` auto-pipelines as on one node; ioredis batches per owning node, never across nodes.
 * @example const commands = connectRedisCluster([{ host: "127.0.0.1", port: 7000 }], "commands", { commandTimeoutMs: 5000, name: "sluice-api" });
 */
export function connectRedisCluster(nodes: readonly ClusterNode[], role: RedisRole, options: ConnectRedisOptions): Cluster {
  const failFast = isFailFast(role);
  if (role === "subscriber") handleResubscribeRejections();
  const cluster = new Cluster(
    nodes.map((node) => ({ host: node.host, port: node.port })),
    {
      clusterRetryStrategy: reconnectDelayMs,
      clusterNodeRetryStrategy: reconnectDelayMs,
      shardedSubscribers: role === "subscriber",
      enableAutoPipelining: role === "commands" || role === "log-writer",
      // A cluster with a master down answers CLUSTERDOWN for its slots; retry after this long (ms).
      retryDelayOnClusterDown: 200,
      redisOptions: {
        connectionName: `${options.name}:${role}`,
        maxRetriesPerRequest: failFast ? 1 : null,
        ...(failFast ? { commandTimeout: options.commandTimeoutMs } : {}),
      },
    },
  );
  cluster.on("error", (error: Error) => options.onError?.(error));
  // Per-node failures (a master being restarted) arrive here, not as 'error'.
  cluster.on("node error", (error: Error) => options.onError?.(error));
  return cluster;
}

function isFailFast(role: RedisRole): boolean {
  return role === "commands" || role === "queue";
}
