import { SluiceError } from "./catalog.ts";

// Node's socket error codes, and SQLSTATE classes 08 (connection), 53 (resources), 57 (operator
// intervention: shutdown, statement timeout), mean the dependency is down or overloaded, not a bug.
const networkCodes = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENOTCONN"]);
const unavailableSqlStateClasses = new Set(["08", "53", "57"]);

function codeOf(error: unknown): string | undefined {
  for (let current: unknown = error, depth = 0; current && depth < 4; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** True for errors that mean PostgreSQL or the network is unavailable. */
export function isUnavailableError(error: unknown): boolean {
  const code = codeOf(error);
  if (code === undefined) return false;
  if (networkCodes.has(code)) return true;
  return /^[0-9A-Z]{5}$/.test(code) && unavailableSqlStateClasses.has(code.slice(0, 2));
}

/**
 * Runs a call to Redis. Any failure that is not already a SluiceError means Redis
 * is down, paused or timing out: the client gets a fast 503 SERVICE_UNAVAILABLE.
 */
export async function callRedis<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (error instanceof SluiceError) throw error;
    throw new SluiceError("SERVICE_UNAVAILABLE", "Redis is unavailable; try again shortly.", { cause: error, details: { retryAfterSeconds: 2 } });
  }
}
