import type { Registry } from "prom-client";
import type { Config } from "../config/config.ts";
import type { MessagesRepository } from "../storage/messages-repository.ts";

/** What `sluice start` hands its worker thread (structured-cloned). */
export interface WorkerThreadData {
  config: Config;
  /** The single Redis node (managed or REDIS_URL); undefined with a cluster (config.redis.clusterNodes). */
  redisUrl: string | undefined;
  /** The API thread's logger level (tests run silent whatever LOG_LEVEL says). */
  logLevel: string;
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

/** The repository methods the worker uses; with PGlite they run in the API thread. */
export const messagesMethods = ["beginAttempt", "finish", "forceFinish", "findTask", "listForConversation", "staleActive", "taskIdsOfConversation", "acceptTurn"] as const satisfies ReadonlyArray<keyof MessagesRepository>;

// Every method, so the proxy never lacks one the worker might call: a new method fails this line.
type Unlisted = Exclude<keyof MessagesRepository, (typeof messagesMethods)[number]>;
export const everyMessagesMethodListed: [Unlisted] extends [never] ? true : Unlisted = true;
