// The worker thread of `sluice start` (start-worker-thread.ts starts it): the whole
// worker role on a second event loop, so generation and fan-out use both cores.
import { parentPort, workerData } from "node:worker_threads";
import { createLogger, threadStandardOutputDestination } from "../logging/create-logger.ts";
import { createMetrics } from "../metrics/create-metrics.ts";
import { createGenerationQueue } from "../queue/generation-queue.ts";
import { createMessagesRepository } from "../storage/messages-repository.ts";
import { systemClock } from "../time/clock.ts";
import { startTracing } from "../tracing/start-tracing.ts";
import { createPortRpc } from "../threads/port-rpc.ts";
import { openConfiguredDatabase } from "./open-configured-database.ts";
import { createRedisConnector } from "./redis-connector.ts";
import type { WorkerThreadControl, WorkerThreadData } from "./worker-thread-protocol.ts";
import { startWorkerRole } from "./worker-role.ts";

const port = parentPort;
if (!port) throw new Error("worker-thread.ts runs only as a worker thread");
const data = workerData as WorkerThreadData;
const { config } = data;
const rpc = createPortRpc(port);
const logger = createLogger({ level: data.logLevel, destination: threadStandardOutputDestination() }).child({ thread: "worker" });
const cleanups: Array<() => Promise<void>> = [];
// The process-wide default metrics (CPU, heap, event loop of the API thread) come from the API thread.
const metrics = createMetrics({ defaultMetrics: false });

const tracing = await startTracing({
  tracesEndpoint: config.tracing.tracesEndpoint,
  serviceName: config.tracing.serviceName ?? "sluice",
  sampleRatio: config.tracing.sampleRatio,
});
cleanups.push(() => tracing.shutdown());

// This thread's own pool to PostgreSQL, or its own port to the embedded database's thread.
const database = await openConfiguredDatabase(config, metrics, logger, data.embeddedDatabasePort);
cleanups.push(() => database.close());
const messages = createMessagesRepository(database.db);

const connect = createRedisConnector({ config, redisUrl: data.redisUrl, processName: "sluice-start", metrics, logger, cleanups });
const commands = connect("commands");
const queue = createGenerationQueue(connect("queue"), config.redis.keyPrefix);
cleanups.push(() => queue.close());
const running = await startWorkerRole({ config, connect, commands, queue, messages, logger, metrics, clock: systemClock });
cleanups.push(() => running.stop());

const control: WorkerThreadControl = {
  sweep: () => running.sweeper.sweep(),
  metrics: () => metrics.registry.getMetricsAsJSON(),
  stop: async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (error) {
        logger.error({ err: error }, "error during worker thread shutdown");
      }
    }
    rpc.close(new Error("the worker thread stopped"));
  },
};
rpc.serve("control", control);
await running.ready;
port.postMessage({ type: "ready" });
