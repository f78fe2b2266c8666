import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { SluiceError } from "../errors/catalog.ts";
import { defineScript } from "../redis/run-script.ts";

/**
 * Sign-in attempts per account, whatever address they come from, so a guesser gains nothing
 * by rotating addresses (the per-IP LIMIT_AUTH_PER_MINUTE does not see that). Counted in
 * Redis, shared by every API process, before any password is hashed.
 */
export interface LoginAttempts {
  /** Counts one attempt for `email`; throws 429 RATE_LIMITED with Retry-After past the limit. */
  attempt(email: string): Promise<void>;
  /** A successful sign-in clears the account's count, so the owner's own typos do not pile up. */
  succeeded(email: string): Promise<void>;
}

// INCR and PEXPIRE in one round trip (as in fixed-window-limiter.ts); one hash tag per key for Redis Cluster.
const attemptScript = defineScript(`
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}`);

/** @example const attempts = createLoginAttempts({ redis, keyPrefix, limit: 10, windowMs: 15 * 60_000 }); */
export function createLoginAttempts(options: { redis: Redis; keyPrefix: string; limit: number; windowMs: number }): LoginAttempts {
  // Keyed by a hash of the normalised email, so Redis holds no email addresses.
  const keyOf = (email: string): string =>
    `${options.keyPrefix}{limit:login-account:${createHash("sha256").update(email.trim().toLowerCase()).digest("base64url")}}`;
  return {
    attempt: async (email) => {
      const [count, ttlMs] = (await attemptScript(options.redis, [keyOf(email)], [options.windowMs])) as [number, number];
      if (count > options.limit) {
        const retryAfterSeconds = Math.max(1, Math.ceil((ttlMs > 0 ? ttlMs : options.windowMs) / 1000));
        throw new SluiceError("RATE_LIMITED", "Too many sign-in attempts for this account; retry after the time given in Retry-After.", { details: { retryAfterSeconds } });
      }
    },
    succeeded: async (email) => {
      await options.redis.del(keyOf(email));
    },
  };
}
