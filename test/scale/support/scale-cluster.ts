import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { inject } from "vitest";
import { startRedisServer, type RedisServer } from "../../../src/embedded/redis-server.ts";
import { createTestDatabase } from "../../helpers/postgres.ts";
import { uniqueKeyPrefix } from "../../helpers/redis.ts";
import { startSluiceProcess, type SluiceProcess } from "../../helpers/sluice-process.ts";

/**
 * Short recovery intervals so a dead or stopping worker's job moves within a
 * test: a lock lapses after 2 s and is noticed within 1 s more.
 */
export const scaleEnv: Record<string, string> = {
  LLM_PROVIDER: "simulated",
  COALESCE_WINDOW_MS: "0",
  JOB_LOCK_DURATION_MS: "2000",
  JOB_STALLED_INTERVAL_MS: "1000",
  JOB_ATTEMPTS: "5",
  ORPHAN_SWEEP_INTERVAL_MS: "500",
  ORPHAN_TIMEOUT_MS: "1000",
  STREAM_STALL_TIMEOUT_MS: "500",
  HEARTBEAT_INTERVAL_MS: "1000",
  SSE_RETRY_MS: "100",
  SHUTDOWN_GRACE_MS: "500",
  LIMIT_MESSAGES_PER_MINUTE: "100000",
  LIMIT_AUTH_PER_MINUTE: "100000",
  LIMIT_GENERATIONS_PER_USER: "1000",
  LIMIT_OPEN_STREAMS_PER_USER: "100000",
  LOG_LEVEL: "info",
};

/** Other suites share the two cores; a process may be slow to come up. */
const readyTimeoutMs = 100_000;
export const clusterStartTimeoutMs = 150_000;

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
