import type { Redis } from "ioredis";
import { SluiceError, type ErrorCode } from "../errors/catalog.ts";
import { defineScript } from "../redis/run-script.ts";

export interface LimitDecision {
  allowed: boolean;
  remaining: number;
  retryAfterSeconds: number;
}

export interface FixedWindowLimiter {
  /** Counts one hit for `subject`; throws `code` with a Retry-After when over the limit. */
  hit(subject: string): Promise<LimitDecision>;
}

// INCR and PEXPIRE in one round trip; the key has a single hash tag so it works on Redis Cluster.
const hit = defineScript(`
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}`);

/** A per-minute (or any window) counter in Redis, shared by every API process. */
export function createFixedWindowLimiter(options: {
  redis: Redis;
  keyPrefix: string;
  name: string;
  limit: number;
  windowMs: number;
  code: ErrorCode;
}): FixedWindowLimiter {
  return {
    hit: async (subject) => {
      const key = `${options.keyPrefix}{limit:${options.name}:${subject}}`;
      const [count, ttlMs] = (await hit(options.redis, [key], [options.windowMs])) as [number, number];
      const retryAfterSeconds = Math.max(1, Math.ceil((ttlMs > 0 ? ttlMs : options.windowMs) / 1000));
      const decision = { allowed: count <= options.limit, remaining: Math.max(0, options.limit - count), retryAfterSeconds };
      if (!decision.allowed) {
        throw new SluiceError(options.code, undefined, { details: { retryAfterSeconds } });
      }
      return decision;
    },
  };
}
