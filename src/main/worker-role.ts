import { monitorEventLoopDelay } from "node:perf_hooks";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Config } from "../config/config.ts";
import { createLlmProvider } from "../llm/create-llm-provider.ts";
import type { SluiceMetrics } from "../metrics/create-metrics.ts";
import type { GenerationQueue } from "../queue/generation-queue.ts";
import type { RedisRole } from "../redis/connect-redis.ts";
import type { MessagesRepository } from "../storage/messages-repository.ts";
import { createStreamLog } from "../streaming/index.ts";
import { createLoadAdaptiveWindow } from "../streaming/load-adaptive-window.ts";
import type { Clock } from "../time/clock.ts";
import { startWorker, type RunningWorker } from "../worker/start-worker.ts";
import { streamLogOptions } from "./redis-connector.ts";

/**
 * The worker of `sluice worker` and of `sluice start` (in-process or in its
 * thread): the configured provider, BullMQ consumer, cancel watcher and sweeper.
 * Not awaited ready; the caller decides when to say so (`running.ready`).
 */
export async function startWorkerRole(options: {
  config: Config;
  connect: (role: RedisRole) => Redis;
  commands: Redis;
  queue: GenerationQueue;
  messages: MessagesRepository;
  logger: Logger;
  metrics: SluiceMetrics;
  clock: Clock;
}): Promise<RunningWorker> {
  const { config, connect, logger } = options;
  logger.info({ provider: config.llm.provider, model: config.llm.defaultModel, reason: config.llm.providerReason }, `LLM provider: ${config.llm.provider} (${config.llm.providerReason})`);
  const provider = await createLlmProvider({
    provider: config.llm.provider,
    openai: { apiKey: config.llm.openai.apiKey ?? "no-key", ...(config.llm.openai.baseUrl ? { baseUrl: config.llm.openai.baseUrl } : {}) },
    anthropic: { apiKey: config.llm.anthropic.apiKey ?? "no-key", thinkingBudgetTokens: config.llm.anthropic.thinkingBudgetTokens, defaultMaxOutputTokens: config.context.replyTokens, ...(config.llm.anthropic.baseUrl ? { baseUrl: config.llm.anthropic.baseUrl } : {}) },
    simulated: config.llm.simulated,
    idleTimeoutMs: config.llm.idleTimeoutMs,
    http2: config.llm.http2,
    continueReplies: config.llm.continueReplies,
  });
  // One window for the process: its event loop is what falls behind under load.
  const loopDelay = monitorEventLoopDelay({ resolution: loopDelayResolutionMs });
  loopDelay.enable();
  const coalesceWindow = createLoadAdaptiveWindow({
    baseMs: config.stream.coalesceWindowMs,
    maxMs: config.stream.coalesceMaxWindowMs,
    clock: options.clock,
    loopDelayMs: () => {
      // The histogram holds each tick's lateness plus the sampling interval itself.
      const p99Ms = loopDelay.percentile(99) / 1e6 - loopDelayResolutionMs;
      loopDelay.reset();
      return Math.max(0, p99Ms);
    },
    onChange: (windowMs) => logger.debug({ windowMs }, "coalescing window changed"),
  });
  const running = startWorker({
    settings: {
      keyPrefix: config.redis.keyPrefix,
      concurrency: config.worker.concurrency,
      attempts: config.worker.attempts,
      lockDurationMs: config.worker.lockDurationMs,
      stalledIntervalMs: config.worker.stalledIntervalMs,
      orphanSweepIntervalMs: config.worker.orphanSweepIntervalMs,
      orphanGraceMs: config.worker.orphanTimeoutMs,
      shutdownGraceMs: config.worker.shutdownGraceMs,
      finalSaveRetryMs: config.worker.finalSaveRetryMs,
      coalesceWindowMs: () => coalesceWindow.current(),
      coalesceMaxBytes: config.stream.coalesceMaxBytes,
      providerMaxRetries: config.llm.maxRetries,
      context: config.context,
    },
    connections: { worker: connect("worker"), subscriber: connect("subscriber"), commands: options.commands },
    queue: options.queue,
    // Its own connection: appends wait out a Redis restart, where the API's reads fail fast.
    streamLog: createStreamLog({ redis: connect("log-writer"), ...streamLogOptions(config) }),
    messages: options.messages,
    provider,
    logger,
    clock: options.clock,
    metrics: options.metrics,
  });
  return {
    ...running,
    stop: async () => {
      await running.stop();
      coalesceWindow.stop();
      loopDelay.disable();
    },
  };
}

/** The event-loop delay histogram's sampling interval (ms). */
const loopDelayResolutionMs = 10;
