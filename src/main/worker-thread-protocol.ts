import type { MessagePort } from "node:worker_threads";
import type { Registry } from "prom-client";
import type { Config } from "../config/config.ts";

/** What `sluice start` hands its worker thread (structured-cloned). */
export interface WorkerThreadData {
  config: Config;
  /** The single Redis node (managed or REDIS_URL); undefined with a cluster (config.redis.clusterNodes). */
  redisUrl: string | undefined;
  /** The API thread's logger level (tests run silent whatever LOG_LEVEL says). */
  logLevel: string;
  /** With embedded PGlite: this thread's own port to the database's thread (transferred). */
  embeddedDatabasePort: MessagePort | undefined;
}

/** A registry as JSON (prom-client), which AggregatorRegistry merges. */
export type ThreadMetrics = Awaited<ReturnType<Registry["getMetricsAsJSON"]>>;

/** What the API thread can ask of the worker thread (port-rpc.ts). */
export interface WorkerThreadControl {
  sweep(): Promise<{ requeued: number; failed: number }>;
  /** The thread's registry, merged into the API's /metrics. */
  metrics(): Promise<ThreadMetrics>;
  /** Graceful: stops taking jobs, finishes or hands back running ones, closes connections. */
  stop(): Promise<void>;
}
