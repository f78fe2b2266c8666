// Run by create-logger.test.ts: the main thread and a worker thread each log `lines` lines to
// the shared standard output as fast as they can, as the API and worker threads of `sluice
// start` do. Then, as start-worker-thread.ts does, the main thread terminates the worker
// thread once it says it has stopped, logs one more line and exits at once.
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { createLogger, threadStandardOutputDestination } from "./create-logger.ts";

const lines = Number(process.argv[2] ?? workerData);
const padding = "x".repeat(300);
if (isMainThread) {
  const thread = new Worker(new URL(import.meta.url), { workerData: lines });
  const logger = createLogger({ level: "info" });
  for (let index = 0; index < lines; index += 1) logger.info({ thread: "main", index, padding }, "line");
  await new Promise((resolve) => thread.once("message", resolve));
  await thread.terminate();
  logger.info({ thread: "main" }, "last line");
  process.exit(0);
} else {
  // The destination worker-thread.ts gives its logger.
  const logger = createLogger({ level: "info", destination: threadStandardOutputDestination() });
  for (let index = 0; index < lines; index += 1) logger.info({ thread: "worker", index, padding }, "line");
  parentPort?.postMessage("stopped");
}
