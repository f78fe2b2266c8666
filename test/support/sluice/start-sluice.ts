import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";
import { loadConfig } from "../../../src/config/config.ts";
import { createLogger } from "../../../src/logging/create-logger.ts";
import { startRuntime, type Runtime } from "../../../src/main/runtime.ts";
import { startPrivateRedis, type PrivateRedis } from "../servers/private-redis.ts";
import { startRedisCluster, type RedisClusterRig } from "../servers/redis-cluster.ts";
import { fastRecoveryIntervals, sluiceEnvironment } from "./environment.ts";
import { startSluiceProcess, type SluiceProcess } from "./sluice-process.ts";

export interface StartSluiceOptions {
  /** Names the database, key prefix and temporary directories. */
  label: string;
  /**
   * "in-process" (default): `startRuntime` in the test's own process on port 0, much faster.
   * "processes": real `sluice` child processes, for tests that kill, freeze, restart or count them.
   */
  mode?: "in-process" | "processes";
  /** "combined" (default): one `sluice start` (API and worker together); otherwise this many of each. */
  topology?: "combined" | { apis: number; workers: number };
  /**
   * "shared" (default): the run's redis-server, with a key prefix of this Sluice's own.
   * "private": a redis-server of its own (CLIENT LIST shows only this Sluice's connections).
   * "cluster": a 3-master Redis Cluster of its own (REDIS_CLUSTER_NODES).
   */
  redis?: "shared" | "private" | "cluster";
  /**
   * "fast" (the default for processes): `fastRecoveryIntervals` and a 1 s Redis command timeout, for
   * tests that kill, freeze or cut off a process. "shipped" (the default in-process): the product's
   * own lock, stall, sweep and Redis timeouts, for tests that kill nothing and load the machine: there a
   * 1 s lock renewal or a 1 s Redis reply delayed by the load would take a healthy job over or fail a
   * healthy read (seen in slow-consumers-and-leaks).
   */
  recovery?: "fast" | "shipped";
  /** Overrides, applied last: model settings, limits, or another Sluice's `env` to join its database and Redis. */
  env?: Record<string, string>;
}

/** One API, worker or combined instance started in the test's own process. */
export interface InProcessInstance {
  /** The API's base URL; undefined for a worker. */
  readonly url: string | undefined;
  readonly runtime: Runtime;
  stop(): Promise<void>;
}

export interface Sluice<Instance> {
  /** The first API's base URL. */
  readonly url: string;
  /** Shared by every instance: database, Redis and key prefix, AUTH_SECRET, settings. */
  readonly env: Record<string, string>;
  /** Running APIs (a combined instance counts as an API); restarted ones are replaced here. */
  readonly apis: Instance[];
  readonly workers: Instance[];
  /** With `redis: "private"`. */
  readonly privateRedis: PrivateRedis | undefined;
  /** With `redis: "cluster"`. */
  readonly redisCluster: RedisClusterRig | undefined;
  /** Another API on the same database and Redis; `extra` overrides settings for it alone. */
  readonly startApi: (extra?: Record<string, string>) => Promise<Instance>;
  readonly startWorker: (extra?: Record<string, string>) => Promise<Instance>;
  /** Stops every instance, then this Sluice's own Redis, and removes its temporary directories. */
  readonly stop: () => Promise<void>;
}

export interface InProcessSluice extends Sluice<InProcessInstance> {
  /** The first instance's runtime. */
  readonly runtime: Runtime;
}

export interface ProcessSluice extends Sluice<SluiceProcess> {
  /** SIGTERM, wait for the exit (SIGKILL after `graceMs`), start a replacement of the same role. */
  restart(process: SluiceProcess, graceMs?: number): Promise<{ exit: { code: number | null; signal: NodeJS.Signals | null }; replacement: SluiceProcess }>;
  /** Every process's output, stopped ones included, for failure messages and secret scans. */
  output(): string;
}

/** Settings of in-process instances: replies are short and quick, logs go nowhere (SLUICE_TEST_LOG_LEVEL shows them). */
const inProcessSettings: Record<string, string> = {
  PORT: "0",
  LOG_LEVEL: "silent",
  SIMULATED_TOKENS_PER_SECOND: "2000",
  SIMULATED_TOKEN_COUNT: "30",
  STREAM_STALL_TIMEOUT_MS: "500",
};

/** Settings of child processes: info logs, which tests read (a worker is ready when it logs "worker started"). */
const processSettings: Record<string, string> = {
  LOG_LEVEL: "info",
  SHUTDOWN_GRACE_MS: "1000",
  // Node's on-disk compile cache: a process starts in ~3 s instead of ~7-10 s on a loaded 2-core machine.
  NODE_COMPILE_CACHE: join(tmpdir(), "sluice-test-node-compile-cache"),
};

const fastRecovery: Record<string, string> = { ...fastRecoveryIntervals, REDIS_COMMAND_TIMEOUT_MS: "1000" };

/**
 * The one way tests start Sluice: in-process or as processes, any number of APIs
 * and workers, on the shared, a private or a cluster Redis, each start on a database
 * and key prefix of its own (unless `env` joins another's) and a temporary DATA_DIR.
 *
 * @example const sluice = await startSluice({ label: "resume", env: { SIMULATED_TOKEN_COUNT: "60" } }); afterAll(() => sluice.stop());
 */
export function startSluice(options: StartSluiceOptions & { mode: "processes" }): Promise<ProcessSluice>;
export function startSluice(options: StartSluiceOptions & { mode?: "in-process" }): Promise<InProcessSluice>;
export async function startSluice(options: StartSluiceOptions): Promise<InProcessSluice | ProcessSluice> {
  const inProcess = (options.mode ?? "in-process") === "in-process";
  const redisMode = options.redis ?? "shared";
  const privateRedis = redisMode === "private" ? await startPrivateRedis({ appendOnly: false }) : undefined;
  let redisCluster: RedisClusterRig | undefined;
  const stopRedis = async (): Promise<void> => {
    await privateRedis?.stop();
    await redisCluster?.stop();
  };
  try {
    redisCluster = redisMode === "cluster" ? await startRedisCluster({ executable: inject("redisExecutable") }) : undefined;
    const env: Record<string, string> = {
      ...(await sluiceEnvironment(options.label, { redisUrl: options.env?.REDIS_URL ?? privateRedis?.url, databaseUrl: options.env?.DATABASE_URL })),
      ...(redisCluster ? { REDIS_CLUSTER_NODES: redisCluster.seedList } : {}),
      ...(inProcess ? inProcessSettings : processSettings),
      ...((options.recovery ?? (inProcess ? "shipped" : "fast")) === "fast" ? fastRecovery : {}),
      ...options.env,
    };
    const common = { env, privateRedis, redisCluster };
    return inProcess
      ? await startInstances(common, options, startInProcess(options.label), stopRedis, withRuntime)
      : await startInstances(common, options, (role, instanceEnv) => startSluiceProcess({ role, env: instanceEnv }), stopRedis, withProcessControls);
  } catch (error) {
    await stopRedis();
    throw error;
  }
}

type Launch<Instance> = (role: "start" | "api" | "worker", env: Record<string, string>) => Promise<Instance>;

/** Starts the topology; the first API applies the migrations, the rest start in parallel after it. */
async function startInstances<Instance extends { readonly url: string | undefined; stop(graceMs?: number): Promise<void> }, Result>(
  common: { env: Record<string, string>; privateRedis: PrivateRedis | undefined; redisCluster: RedisClusterRig | undefined },
  options: StartSluiceOptions,
  launch: Launch<Instance>,
  stopRedis: () => Promise<void>,
  finish: (sluice: Sluice<Instance> & { retired: Instance[] }) => Result,
): Promise<Result> {
  const apis: Instance[] = [];
  const workers: Instance[] = [];
  const retired: Instance[] = [];
  const start = async (role: "start" | "api" | "worker", extra: Record<string, string> = {}): Promise<Instance> => {
    const instance = await launch(role, { ...common.env, ...extra });
    (role === "worker" ? workers : apis).push(instance);
    return instance;
  };
  const sluice = {
    ...common,
    get url() {
      const url = apis[0]?.url;
      if (!url) throw new Error("no API running");
      return url;
    },
    apis,
    workers,
    retired,
    startApi: (extra?: Record<string, string>) => start("api", extra),
    startWorker: (extra?: Record<string, string>) => start("worker", extra),
    stop: async () => {
      const all = [...workers.splice(0), ...apis.splice(0)];
      retired.push(...all);
      await Promise.all(all.map((instance) => instance.stop(3_000)));
      await stopRedis();
    },
  };
  try {
    const topology = options.topology ?? "combined";
    if (topology === "combined") {
      await start("start");
    } else {
      if (topology.apis > 0) await start("api");
      await Promise.all([
        ...Array.from({ length: Math.max(topology.apis - 1, 0) }, () => start("api")),
        ...Array.from({ length: topology.workers }, () => start("worker")),
      ]);
    }
  } catch (error) {
    await sluice.stop();
    throw error;
  }
  return finish(sluice);
}

function startInProcess(label: string): Launch<InProcessInstance> {
  return async (role, env) => {
    const dataDirectory = mkdtempSync(join(tmpdir(), `sluice-${label}-${role}-`));
    try {
      const config = loadConfig({ ...env, DATA_DIR: dataDirectory }, dataDirectory);
      const runtime = await startRuntime(role, config, createLogger({ level: process.env.SLUICE_TEST_LOG_LEVEL ?? "silent" }), process.env.PATH);
      return {
        url: runtime.address,
        runtime,
        stop: async () => {
          await runtime.stop();
          rmSync(dataDirectory, { recursive: true, force: true });
        },
      };
    } catch (error) {
      rmSync(dataDirectory, { recursive: true, force: true });
      throw error;
    }
  };
}

/** `base` with `extra`'s properties (getters stay getters). */
function extend<Base extends object, Extra extends object>(base: Base, extra: Extra): Base & Extra {
  return Object.defineProperties(base, Object.getOwnPropertyDescriptors(extra)) as Base & Extra;
}

function withRuntime(sluice: Sluice<InProcessInstance>): InProcessSluice {
  return extend(sluice, {
    get runtime() {
      const first = sluice.apis[0] ?? sluice.workers[0];
      if (!first) throw new Error("no instance running");
      return first.runtime;
    },
  });
}

function withProcessControls(sluice: Sluice<SluiceProcess> & { retired: SluiceProcess[] }): ProcessSluice {
  const { retired } = sluice;
  const stopInstances = sluice.stop;
  return extend(sluice, {
    restart: async (victim: SluiceProcess, graceMs = 15_000) => {
      const worker = victim.url === undefined;
      const pool = worker ? sluice.workers : sluice.apis;
      // A load balancer drains an instance before stopping it; clients then pick another.
      pool.splice(pool.indexOf(victim), 1);
      retired.push(victim);
      await victim.stop(graceMs);
      const exit = await victim.exited;
      const replacement = await (worker ? sluice.startWorker() : sluice.startApi());
      return { exit, replacement };
    },
    output: () => [...sluice.apis, ...sluice.workers, ...retired].map((process) => process.output()).join("\n"),
    stop: async () => {
      // A frozen (SIGSTOPped) process would never see the SIGTERM.
      for (const process of [...sluice.apis, ...sluice.workers]) process.kill("SIGCONT");
      await stopInstances();
    },
  });
}
