import { randomBytes } from "node:crypto";
import { startSluiceProcess, type SluiceProcess } from "./sluice-process.ts";
import { createTestDatabase } from "../servers/test-database.ts";
import { uniqueKeyPrefix } from "../servers/redis.ts";
import { clusterStartTimeoutMs, fastRecoveryIntervals, processReadyTimeoutMs, unreachedLimits } from "./environment.ts";

/** Short intervals so recovery paths run within a test; a paused Redis is noticed within 1 s. */
export const fastRecoveryEnv: Record<string, string> = {
  ...fastRecoveryIntervals,
  REDIS_COMMAND_TIMEOUT_MS: "1000",
};

const baseEnv: Record<string, string> = {
  LLM_PROVIDER: "simulated",
  SHUTDOWN_GRACE_MS: "1000",
  ...unreachedLimits,
  LOG_LEVEL: "info",
};

export { clusterStartTimeoutMs };
const readyTimeoutMs = processReadyTimeoutMs;

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
export async function startCluster(options: {
  env?: Record<string, string>;
  combined?: boolean;
  apis?: number;
  workers?: number;
  label?: string;
  /**
   * "fast" (default): `fastRecoveryEnv`, for tests that kill, freeze or cut off a process.
   * "shipped": the product's own lock, stall, sweep and Redis timeouts, for tests that kill
   * nothing and load the machine: there a 1 s lock renewal or a 1 s Redis reply delayed by the
   * load would take a healthy job over or fail a healthy read (seen in slow-consumers-and-leaks).
   */
  recovery?: "fast" | "shipped";
}): Promise<Cluster> {
  const env: Record<string, string> = {
    DATABASE_URL: await createTestDatabase(options.label ?? "fault"),
    REDIS_KEY_PREFIX: uniqueKeyPrefix(options.label ?? "fault"),
    AUTH_SECRET: randomBytes(24).toString("hex"),
    ...baseEnv,
    ...((options.recovery ?? "fast") === "fast" ? fastRecoveryEnv : {}),
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
