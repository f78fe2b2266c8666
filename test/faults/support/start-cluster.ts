import { randomBytes } from "node:crypto";
import { startSluiceProcess, type SluiceProcess } from "../../helpers/sluice-process.ts";
import { createTestDatabase } from "../../helpers/postgres.ts";
import { uniqueKeyPrefix } from "../../helpers/redis.ts";

/** Short intervals so recovery paths run within a test (system-overview: "Use short intervals in test env"). */
export const fastRecoveryEnv: Record<string, string> = {
  LLM_PROVIDER: "simulated",
  JOB_LOCK_DURATION_MS: "2000",
  JOB_STALLED_INTERVAL_MS: "1000",
  ORPHAN_SWEEP_INTERVAL_MS: "500",
  ORPHAN_TIMEOUT_MS: "1000",
  STREAM_STALL_TIMEOUT_MS: "500",
  HEARTBEAT_INTERVAL_MS: "1000",
  SSE_RETRY_MS: "100",
  REDIS_COMMAND_TIMEOUT_MS: "1000",
  SHUTDOWN_GRACE_MS: "1000",
  LIMIT_MESSAGES_PER_MINUTE: "100000",
  LIMIT_AUTH_PER_MINUTE: "100000",
  LIMIT_GENERATIONS_PER_USER: "1000",
  LIMIT_OPEN_STREAMS_PER_USER: "100000",
  LOG_LEVEL: "info",
};

/** Other helpers' suites share these two cores; a process may take long to come up. */
const readyTimeoutMs = 100_000;
/** For beforeAll hooks that start clusters. */
export const clusterStartTimeoutMs = 150_000;

export interface Cluster {
  /** The first API's URL. */
  readonly url: string;
  readonly apis: SluiceProcess[];
  readonly workers: SluiceProcess[];
  /** Environment shared by every process (for starting more). */
  readonly env: Record<string, string>;
  startWorker(extra?: Record<string, string>): Promise<SluiceProcess>;
  /** Every process's output, for failure messages and secret scans. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts cooperating Sluice processes on a database and key prefix of their own.
 * `role: "start"` runs API and worker in one process (cheapest); otherwise `apis`
 * API processes and `workers` worker processes.
 */
export async function startCluster(options: { env?: Record<string, string>; combined?: boolean; apis?: number; workers?: number; label?: string }): Promise<Cluster> {
  const env: Record<string, string> = {
    DATABASE_URL: await createTestDatabase(options.label ?? "fault"),
    REDIS_KEY_PREFIX: uniqueKeyPrefix(options.label ?? "fault"),
    AUTH_SECRET: randomBytes(24).toString("hex"),
    ...fastRecoveryEnv,
    ...options.env,
  };
  const apis: SluiceProcess[] = [];
  const workers: SluiceProcess[] = [];
  const stopped: SluiceProcess[] = [];
  const cluster: Cluster = {
    get url() {
      const url = apis[0]?.url;
      if (!url) throw new Error("no API process");
      return url;
    },
    apis,
    workers,
    env,
    startWorker: async (extra = {}) => {
      const worker = await startSluiceProcess({ role: "worker", env: { ...env, ...extra }, readyTimeoutMs });
      workers.push(worker);
      return worker;
    },
    output: () => [...apis, ...workers, ...stopped].map((process) => process.output()).join("\n"),
    stop: async () => {
      const all = [...workers.splice(0), ...apis.splice(0)];
      stopped.push(...all);
      for (const process of all) process.kill("SIGCONT");
      await Promise.all(all.map((process) => process.stop(3_000)));
    },
  };
  try {
    if (options.combined ?? true) {
      apis.push(await startSluiceProcess({ role: "start", env, readyTimeoutMs }));
    } else {
      // The first API applies migrations; the rest start in parallel after it.
      apis.push(await startSluiceProcess({ role: "api", env, readyTimeoutMs }));
      const more = await Promise.all([
        ...Array.from({ length: (options.apis ?? 1) - 1 }, () => startSluiceProcess({ role: "api", env, readyTimeoutMs })),
        ...Array.from({ length: options.workers ?? 1 }, () => startSluiceProcess({ role: "worker", env, readyTimeoutMs })),
      ]);
      for (const process of more) (process.url ? apis : workers).push(process);
    }
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}
