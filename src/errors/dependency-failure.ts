import { findInCauseChain } from "./cause-chain.ts";
import { SluiceError } from "./catalog.ts";

// Node's socket error codes, and SQLSTATE classes 08 (connection), 53 (resources), 57 (operator
// intervention: shutdown, statement timeout), mean the dependency is down or overloaded, not a bug.
const networkCodes = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENOTCONN"]);
const unavailableSqlStateClasses = new Set(["08", "53", "57"]);

function codeOf(error: unknown): string | undefined {
  return findInCauseChain(error, ({ code }) => (typeof code === "string" ? code : undefined));
}

/** True for errors that mean PostgreSQL or the network is unavailable. */
export function isUnavailableError(error: unknown): boolean {
  const code = codeOf(error);
  if (code === undefined) return false;
  if (networkCodes.has(code)) return true;
  return /^[0-9A-Z]{5}$/.test(code) && unavailableSqlStateClasses.has(code.slice(0, 2));
}

/**
 * True when Redis refused a write because it reached `maxmemory` (policy noeviction).
 * "OOM" is the error code Redis puts first in the reply (as NOSCRIPT in src/redis/run-script.ts);
 * it is the same for plain commands and for a write inside a Lua script (BullMQ's too).
 */
export function isRedisOutOfMemory(error: unknown): boolean {
  return findInCauseChain(error, (link) => (link instanceof Error && link.name === "ReplyError" && link.message.startsWith("OOM ") ? true : undefined)) === true;
}

/**
 * The one mapping of a failed Redis call to what a client is told: Redis out of memory is
 * STORE_FULL (also when wrapped in a SluiceError); another SluiceError stays as it is;
 * anything else means Redis is down, paused or timing out (SERVICE_UNAVAILABLE).
 * Both are 503 and retryable.
 */
export function redisFailure(error: unknown): SluiceError {
  // Before the SluiceError check: a SERVICE_UNAVAILABLE wrapping an OOM reply (the stream writer's) is STORE_FULL.
  if (isRedisOutOfMemory(error)) return new SluiceError("STORE_FULL", undefined, { cause: error, details: { retryAfterSeconds: 5 } });
  if (error instanceof SluiceError) return error;
  return new SluiceError("SERVICE_UNAVAILABLE", "Redis is unavailable; try again shortly.", { cause: error, details: { retryAfterSeconds: 2 } });
}

/** Runs a call to Redis; a failure reaches the client as a fast 503 (see `redisFailure`), never a hang or a 500. */
export async function callRedis<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw redisFailure(error);
  }
}
