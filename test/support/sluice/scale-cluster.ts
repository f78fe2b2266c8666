import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { inject } from "vitest";
import { startRedisServer, type RedisServer } from "../../../src/embedded/redis-server.ts";
import { createTestDatabase } from "../servers/test-database.ts";
import { uniqueKeyPrefix } from "../servers/redis.ts";
import { startSluiceProcess, type SluiceProcess } from "./sluice-process.ts";
import { clusterStartTimeoutMs, fastRecoveryIntervals, processReadyTimeoutMs, unreachedLimits } from "./environment.ts";

/** Short recovery intervals so a dead or stopping worker's job moves within a test; no coalescing, and attempts to spare for several takeovers. */
export const scaleEnv: Record<string, string> = {
  LLM_PROVIDER: "simulated",
  COALESCE_WINDOW_MS: "0",
  ...fastRecoveryIntervals,
  JOB_ATTEMPTS: "5",
  SHUTDOWN_GRACE_MS: "500",
  ...unreachedLimits,
  LOG_LEVEL: "info",
};

export { clusterStartTimeoutMs };
const readyTimeoutMs = processReadyTimeoutMs;

export interface ScaleCluster {
  /** Current API processes (replaced ones are removed, so a client never picks a stopped one). */
  readonly apis: SluiceProcess[];
  readonly workers: SluiceProcess[];
  /** Shared by every process: one database, one private Redis and key prefix, one AUTH_SECRET. */
  readonly env: Record<string, string>;
  /** A client of the private Redis, for CLIENT LIST. */
  readonly redis: Redis;
  startApi(extra?: Record<string, string>): Promise<SluiceProcess>;
  startWorker(extra?: Record<string, string>): Promise<SluiceProcess>;
  /** SIGTERM, wait for the exit (SIGKILL after `graceMs`), start a replacement of the same role. */
  restart(process: SluiceProcess, graceMs?: number): Promise<{ exit: { code: number | null; signal: NodeJS.Signals | null }; replacement: SluiceProcess }>;
  /** Every process's output, stopped ones included, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * API and worker processes on a private redis-server (so CLIENT LIST shows
 * only this cluster's connections) and a database of their own.
 */
export async function startScaleCluster(options: { label: string; apis: number; workers: number; env?: Record<string, string> }): Promise<ScaleCluster> {
  const dataDirectory = mkdtempSync(join(tmpdir(), `sluice-scale-${options.label}-`));
  const redisServer: RedisServer = await startRedisServer({ executable: inject("redisExecutable"), dataDirectory, appendOnly: false, supervise: false });
  const env: Record<string, string> = {
    DATABASE_URL: await createTestDatabase(options.label),
    REDIS_URL: redisServer.url,
    REDIS_KEY_PREFIX: uniqueKeyPrefix(options.label),
    AUTH_SECRET: randomBytes(24).toString("hex"),
    ...scaleEnv,
    // Node's on-disk compile cache: a process starts in ~3 s instead of ~7-10 s on a loaded 2-core
    // machine, which is most of what this suite spends (12 process starts and 6 restarts).
    NODE_COMPILE_CACHE: join(tmpdir(), "sluice-scale-node-compile-cache"),
    ...options.env,
  };
  const redis = new Redis(redisServer.url, { maxRetriesPerRequest: 1 });
  const apis: SluiceProcess[] = [];
  const workers: SluiceProcess[] = [];
  const retired: SluiceProcess[] = [];
  const start = async (role: "api" | "worker", extra: Record<string, string> = {}): Promise<SluiceProcess> => {
    const started = await startSluiceProcess({ role, env: { ...env, ...extra }, readyTimeoutMs });
    (role === "api" ? apis : workers).push(started);
    return started;
  };
  const cluster: ScaleCluster = {
    apis,
    workers,
    env,
    redis,
    startApi: (extra) => start("api", extra),
    startWorker: (extra) => start("worker", extra),
    restart: async (victim, graceMs = 15_000) => {
      const pool = victim.url === undefined ? workers : apis;
      // A load balancer drains an instance before stopping it; clients then pick another.
      pool.splice(pool.indexOf(victim), 1);
      retired.push(victim);
      await victim.stop(graceMs);
      const exit = await victim.exited;
      const replacement = await start(victim.url === undefined ? "worker" : "api");
      return { exit, replacement };
    },
    output: () => [...apis, ...workers, ...retired].map((process) => `--- pid ${process.pid}\n${process.output()}`).join("\n"),
    stop: async () => {
      const all = [...apis.splice(0), ...workers.splice(0)];
      retired.push(...all);
      await Promise.all(all.map((process) => process.stop(3_000)));
      redis.disconnect();
      await redisServer.stop();
      rmSync(dataDirectory, { recursive: true, force: true });
    },
  };
  try {
    // The first API applies the migrations; the rest start in parallel after it.
    await start("api");
    await Promise.all([
      ...Array.from({ length: options.apis - 1 }, () => start("api")),
      ...Array.from({ length: options.workers }, () => start("worker")),
    ]);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}
