import type { Redis } from "ioredis";
import { SluiceError } from "../errors/catalog.ts";
import { pooledRandomBytes } from "../random/pooled-random-bytes.ts";
import { defineScript } from "../redis/run-script.ts";
import type { Clock } from "../time/clock.ts";

export interface OpenStreamLease {
  /** Extends the lease; called on each heartbeat so a crashed API process's leases lapse by themselves. */
  renew(): Promise<void>;
  release(): Promise<void>;
}

export interface OpenStreamLeases {
  /** Takes one of the user's open-stream slots or throws TOO_MANY_OPEN_STREAMS (429). */
  acquire(userId: string): Promise<OpenStreamLease>;
}

// A sorted set per user: member = connection id, score = lease expiry (ms). Expired members
// are dropped before counting, so the limit holds across API processes and survives crashes.
const acquire = defineScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`);

export function createOpenStreamLeases(options: { redis: Redis; keyPrefix: string; limit: number; leaseMs: number; clock: Pick<Clock, "wallClockMs"> }): OpenStreamLeases {
  return {
    acquire: async (userId) => {
      const key = `${options.keyPrefix}{streams:${userId}}`;
      const member = pooledRandomBytes(9).toString("base64url");
      const now = options.clock.wallClockMs();
      const ok = await acquire(options.redis, [key], [now, now + options.leaseMs, options.limit, member, options.leaseMs * 2]);
      if (ok !== 1) throw new SluiceError("TOO_MANY_OPEN_STREAMS", undefined, { details: { retryAfterSeconds: 5 } });
      return {
        // One round trip per renewal: every open viewer renews, so this runs for all of them.
        renew: async () => {
          await options.redis.multi().zadd(key, "XX", options.clock.wallClockMs() + options.leaseMs, member).pexpire(key, options.leaseMs * 2).exec();
        },
        release: async () => {
          await options.redis.zrem(key, member);
        },
      };
    },
  };
}
