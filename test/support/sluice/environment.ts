import { randomBytes } from "node:crypto";
import { createTestDatabase } from "../servers/test-database.ts";
import { testRedisUrl, uniqueKeyPrefix } from "../servers/redis.ts";

/**
 * The one place a test's Sluice environment is built, so a change to one
 * setting (a slower lock, a new limit) is made once.
 */

/** Short recovery intervals: a dead or frozen worker's lock lapses after 2 s and is noticed within 1 s more. */
export const fastRecoveryIntervals: Record<string, string> = {
  JOB_LOCK_DURATION_MS: "2000",
  JOB_STALLED_INTERVAL_MS: "1000",
  ORPHAN_SWEEP_INTERVAL_MS: "500",
  ORPHAN_TIMEOUT_MS: "1000",
  STREAM_STALL_TIMEOUT_MS: "500",
  HEARTBEAT_INTERVAL_MS: "1000",
  SSE_RETRY_MS: "100",
};

/** Limits far above what a test sends, for tests that are not about limits. */
export const unreachedLimits: Record<string, string> = {
  LIMIT_MESSAGES_PER_MINUTE: "100000",
  LIMIT_AUTH_PER_MINUTE: "100000",
  LIMIT_GENERATIONS_PER_USER: "1000",
  LIMIT_OPEN_STREAMS_PER_USER: "100000",
  LIMIT_LOGIN_ATTEMPTS_PER_ACCOUNT: "100000",
  LIMIT_PASSWORD_HASH_QUEUE: "100000",
};

/**
 * scrypt at N=2^10 instead of OWASP's N=2^17 (128 MiB, ~0.5 s a hash on these cores), so suites
 * that register many users stay fast; src/auth/auth.test.ts proves the production default.
 */
export const weakPasswordHashing: Record<string, string> = { TEST_ONLY_WEAK_PASSWORD_HASHING: "true" };

/** Other suites share the two cores, so a process may take long to come up. */
export const processReadyTimeoutMs = 100_000;
/** For beforeAll hooks that start several processes. */
export const clusterStartTimeoutMs = 150_000;

/** What cooperating instances must share: one database, one Redis and key prefix, one signing secret. */
export interface SharedEnvironment {
  DATABASE_URL: string;
  REDIS_URL: string;
  REDIS_KEY_PREFIX: string;
  AUTH_SECRET: string;
}

/**
 * A fresh database (unless `databaseUrl` names one), key prefix and signing secret on
 * `redisUrl` (default: the shared test Redis), plus the settings every test Sluice has: loopback, no web UI, the
 * simulated model, weak password hashing and unreached limits. No DATA_DIR: each
 * started instance gets a temporary one of its own (see start-sluice.ts).
 *
 * @example const env = await sluiceEnvironment("search"); // then startSluice({ label, env })
 */
export async function sluiceEnvironment(label: string, options: { redisUrl?: string | undefined; databaseUrl?: string | undefined } = {}): Promise<SharedEnvironment & Record<string, string>> {
  return {
    HOST: "127.0.0.1",
    ENABLE_WEB_UI: "false",
    LLM_PROVIDER: "simulated",
    ...weakPasswordHashing,
    ...unreachedLimits,
    DATABASE_URL: options.databaseUrl ?? (await createTestDatabase(label)),
    REDIS_URL: options.redisUrl ?? testRedisUrl(),
    REDIS_KEY_PREFIX: uniqueKeyPrefix(label),
    AUTH_SECRET: randomBytes(32).toString("base64url"),
  };
}

/** For tests that move jobs between workers many times: attempts to spare for several takeovers, no coalescing, a short shutdown grace. */
export const takeoverSettings: Record<string, string> = { COALESCE_WINDOW_MS: "0", JOB_ATTEMPTS: "5", SHUTDOWN_GRACE_MS: "500" };
