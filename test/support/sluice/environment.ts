/**
 * Settings many cross-process tests share, so a change to one (a slower lock,
 * a new limit) is made once.
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
