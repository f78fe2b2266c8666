import type { Cluster } from "ioredis";
import type { Logger } from "pino";
import { AggregatorRegistry } from "prom-client";
import type { Config } from "../config/config.ts";
import { createMetrics } from "../metrics/create-metrics.ts";
import { serveMetrics } from "../metrics/serve-metrics.ts";
import { createGenerationQueue, queueJobCounts } from "../queue/generation-queue.ts";
import { pingCluster } from "../redis/ping-cluster.ts";
import { createMessagesRepository } from "../storage/messages-repository.ts";
import { createStreamHub, createStreamLog } from "../streaming/index.ts";
import { systemClock } from "../time/clock.ts";
import type { RunningWorker } from "../worker/start-worker.ts";
import { startTracing } from "../tracing/start-tracing.ts";
import { openConfiguredDatabase } from "./open-configured-database.ts";
import { createRedisConnector, streamLogOptions } from "./redis-connector.ts";
import type { ThreadMetrics } from "./worker-thread-protocol.ts";
import { resolveRedis } from "./resolve-redis.ts";

export type Role = "start" | "api" | "worker" | "migrate";

export interface Runtime {
  /** The API's bound address, when this process serves HTTP. */
  readonly address: string | undefined;
  readonly worker: RunningWorker | undefined;
  /** Stops accepting, drains, closes pools and the managed Redis. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Wires config into running parts for one CLI command. Every resource opened
 * here is closed by `stop`, in reverse order of opening.
 */
export async function startRuntime(role: Role, config: Config, logger: Logger, searchPath: string | undefined): Promise<Runtime> {
  const cleanups: Array<() => Promise<void>> = [];
  const stopAll = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (error) {
        logger.error({ err: error }, "error during shutdown");
      }
    }
  };
  // The one place the real clock is chosen; everything below gets it injected.
  const clock = systemClock;
  const startSingleRedis = async (): Promise<string> => {
    const redis = await resolveRedis(config, logger, searchPath);
    cleanups.push(() => redis.stop());
    return redis.url;
  };
  const metrics = createMetrics();
  try {
    if (role !== "migrate") {
      const tracing = await startTracing({
        tracesEndpoint: config.tracing.tracesEndpoint,
        serviceName: config.tracing.serviceName ?? (role === "start" ? "sluice" : `sluice-${role}`),
        sampleRatio: config.tracing.sampleRatio,
      });
      // Pushed first, so it runs last: spans ended while the API and worker drain are still exported.
      cleanups.push(() => tracing.shutdown());
      if (tracing.enabled) logger.info({ endpoint: config.tracing.tracesEndpoint }, "OpenTelemetry tracing on");
    }
    const database = await openConfiguredDatabase(config, metrics, logger);
    cleanups.push(() => database.close());
    logger.info({ kind: database.kind }, database.kind === "pglite" ? "using embedded PostgreSQL (PGlite): DATABASE_URL is unset" : "using PostgreSQL");
    if (role !== "worker") {
      await database.migrate();
      logger.info("migrations applied");
    }
    if (role === "migrate") return { address: undefined, worker: undefined, stop: stopAll };

    const clusterNodes = config.redis.clusterNodes;
    const redisUrl = clusterNodes === undefined ? await startSingleRedis() : undefined;
    if (clusterNodes !== undefined) logger.info({ nodes: clusterNodes }, "using Redis Cluster (REDIS_CLUSTER_NODES): sharded pub/sub for streams");
    const connect = createRedisConnector({ config, redisUrl, processName: `sluice-${role}`, metrics, logger, cleanups });
    const sharded = clusterNodes !== undefined;
    const commands = connect("commands");
    const queue = createGenerationQueue(connect("queue"), config.redis.keyPrefix);
    cleanups.push(() => queue.close());
    // Readers (API) fail fast; the worker's writer waits out a Redis restart (see connect-redis.ts).
    const streamLog = createStreamLog({ redis: commands, ...streamLogOptions(config) });

    let worker: RunningWorker | undefined;
    let workerThreadMetrics: (() => Promise<ThreadMetrics>) | undefined;
    if (role === "start" && config.worker.startInThread) {
      const { startWorkerThread } = await import("./start-worker-thread.ts");
      const thread = await startWorkerThread({ config, redisUrl, embeddedDatabasePort: database.portForThread, logger, clock });
      cleanups.push(() => thread.worker.stop());
      worker = thread.worker;
      workerThreadMetrics = () => thread.metrics();
      logger.info({ concurrency: config.worker.concurrency, startupMs: Math.round(performance.now()), thread: true }, "worker started");
    } else if (role === "start" || role === "worker") {
      // Loaded per role: a worker never loads Fastify and the routes, an API never loads the SDKs (start-up time).
      const { startWorkerRole } = await import("./worker-role.ts");
      const running = await startWorkerRole({ config, connect, commands, queue, messages: createMessagesRepository(database.db), logger, metrics, clock });
      cleanups.push(() => running.stop());
      worker = running;
      let workerReady = false;
      if (role === "worker" && config.worker.metricsPort !== undefined) {
        metrics.addScrapeSources({ queueCounts: () => queueJobCounts(queue, commands), redis: commands });
        // /readyz answers 503 until the worker takes jobs.
        const endpoint = await serveMetrics(metrics.registry, config.http.host, config.worker.metricsPort, () => workerReady);
        cleanups.push(() => endpoint.close());
        logger.info({ url: endpoint.url }, "worker metrics endpoint");
      }
      // "Ready" means taking jobs (issue 13): `start` listens only after it, so its /readyz never runs ahead of the worker.
      await running.ready;
      workerReady = true;
      // performance.now() counts from the process's start: the whole boot, module loading included.
      // Tests and the benchmark wait for this line: it now means "taking jobs", not "constructed".
      logger.info({ concurrency: config.worker.concurrency, startupMs: Math.round(performance.now()) }, "worker started");
    }

    let address: string | undefined;
    if (role === "start" || role === "api") {
      // With the worker in its thread, one scrape shows both threads' metrics (summed; process metrics once).
      const threadMetrics = workerThreadMetrics;
      const scraped =
        threadMetrics === undefined
          ? metrics.registry
          : { contentType: metrics.registry.contentType, metrics: async () => AggregatorRegistry.aggregate([await metrics.registry.getMetricsAsJSON(), await threadMetrics()]).metrics() };
      const [{ buildApp }, { registerMetricsRoute }, { composeApiFeatures }] = await Promise.all([
        import("../api/build-app.ts"),
        import("../api/metrics/metrics-route.ts"),
        import("./compose-api.ts"),
      ]);
      const subscriber = connect("subscriber");
      const hub = createStreamHub({
        log: streamLog,
        subscriber,
        subscribeMode: sharded ? "ssubscribe" : "subscribe",
        clock,
        stallTimeoutMs: config.stream.stallTimeoutMs,
        retryMs: config.stream.retryMs,
        retryJitterMs: config.stream.retryJitterMs,
        metrics: metrics.stream,
        onError: (error) => logger.warn({ err: error }, "stream hub error"),
      });
      metrics.addScrapeSources({
        hubStats: () => hub.stats(),
        queueCounts: () => queueJobCounts(queue, commands),
        redis: commands,
      });
      const app = await buildApp(config, {
        logger,
        readinessProbes: [
          { name: "postgres", check: () => database.ping() },
          {
            name: "migrations",
            check: async () => {
              if (!(await database.migrationsApplied())) throw new Error("pending migrations");
            },
          },
          { name: "redis", check: sharded ? () => pingCluster(commands as unknown as Cluster) : async () => void (await commands.ping()) },
        ],
        features: [
          // API_METRICS_PORT moves /metrics off the public port (served below).
          (app) => {
            if (config.apiMetricsPort === undefined) registerMetricsRoute(app, scraped);
          },
          ...composeApiFeatures({ config, db: database.db, redis: commands, queue, streamLog, hub, subscriber, logger, clock }),
        ],
      });
      // On shutdown the hub tells every SSE client to reconnect elsewhere (retry: with jitter) before the server closes.
      cleanups.push(() => app.close());
      cleanups.push(() => hub.close({ retryMs: config.stream.retryMs }));
      address = await app.listen({ port: config.http.port, host: config.http.host, backlog: config.http.listenBacklog });
      if (config.apiMetricsPort !== undefined) {
        const endpoint = await serveMetrics(scraped, config.http.host, config.apiMetricsPort);
        cleanups.push(() => endpoint.close());
        logger.info({ url: endpoint.url }, "API metrics endpoint (API_METRICS_PORT)");
      }
    }
    return { address, worker, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
