import { createHash } from "node:crypto";
import type { Cluster, Redis } from "ioredis";

export type RedisClient = Redis | Cluster;

export type ScriptRunner = (redis: RedisClient, keys: readonly string[], args: readonly (string | number)[]) => Promise<unknown>;

/**
 * One EVALSHA per call; EVAL only when the server does not have the script yet
 * (first use, or after a restart or failover). "NOSCRIPT" is the reply prefix
 * Redis defines for that case.
 */
export function defineScript(source: string): ScriptRunner {
  const sha = createHash("sha1").update(source).digest("hex");
  return async (redis, keys, args) => {
    try {
      return await redis.evalsha(sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
      return await redis.eval(source, keys.length, ...keys, ...args);
    }
  };
}
