import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Config } from "../config/config.ts";
import type { SluiceMetrics } from "../metrics/create-metrics.ts";
import { connectRedis, connectRedisCluster, type RedisRole } from "../redis/connect-redis.ts";

/**
 * Opens one Redis connection per role (connect-redis.ts decides each role's
 * behaviour), counts its errors and registers its close with the caller's
 * cleanups. One per process or thread: `sluice start`'s worker thread has its own.
 */
export function createRedisConnector(options: {
  config: Config;
  /** A single node's URL, or undefined for the cluster in config.redis.clusterNodes. */
  redisUrl: string | undefined;
  /** CLIENT SETNAME prefix: `sluice-<role>`. */
  processName: string;
  metrics: Pick<SluiceMetrics, "redisErrors">;
  logger: Logger;
  cleanups: Array<() => Promise<void>>;
}): (role: RedisRole) => Redis {
  const { config, redisUrl, metrics, logger } = options;
  return (redisRole) => {
    const connectOptions = {
      commandTimeoutMs: config.redis.commandTimeoutMs,
      name: options.processName,
      onError: (error: Error) => {
        metrics.redisErrors.inc();
        logger.warn({ err: error, role: redisRole }, "Redis connection error");
      },
    };
    // A Cluster answers the same commands as a single Redis for everything Sluice sends
    // (each multi-key command stays in one `{…}` hash-tag slot), so the modules that still
    // type their port as `Redis` take it unchanged.
    const client = redisUrl === undefined ? (connectRedisCluster(config.redis.clusterNodes ?? [], redisRole, connectOptions) as unknown as Redis) : connectRedis(redisUrl, redisRole, connectOptions);
    options.cleanups.push(async () => {
      await client.quit().catch(() => client.disconnect());
    });
    return client;
  };
}

/** The stream log's options, the same in every process. */
export function streamLogOptions(config: Config) {
  return {
    publishMode: config.redis.clusterNodes !== undefined ? ("spublish" as const) : ("publish" as const),
    keyPrefix: config.redis.keyPrefix,
    ttlSeconds: config.stream.ttlSeconds,
    limits: { maxEntries: config.stream.maxEntries, maxBytes: config.stream.maxBytes, maxEventBytes: config.stream.maxEventBytes },
  };
}
