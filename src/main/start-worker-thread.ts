import { Worker, type MessagePort } from "node:worker_threads";
import type { Logger } from "pino";
import type { Config } from "../config/config.ts";
import { unrefTimer, type Clock } from "../time/clock.ts";
import type { RunningWorker } from "../worker/start-worker.ts";
import { createPortRpc, type PortRpc } from "../threads/port-rpc.ts";
import type { ThreadMetrics, WorkerThreadControl, WorkerThreadData } from "./worker-thread-protocol.ts";

export interface WorkerThread {
  readonly worker: RunningWorker;
  /** The thread's metrics, for the API's /metrics (merged with the API thread's). */
  metrics(): Promise<ThreadMetrics>;
}

const restartDelayMs = 1_000;

/**
 * `sluice start`'s worker on a second thread (worker-thread.ts): the API and the
 * worker each get an event loop and a core, instead of sharing one (issue 13:
 * `start` degraded first). With embedded PGlite, each thread started gets its own
 * port to the database's thread (src/embedded/pglite-thread.ts). A thread that
 * dies is started again; its jobs are recovered like any dead worker's (BullMQ's
 * stalled check, a new fenced attempt).
 */
export async function startWorkerThread(options: {
  config: Config;
  redisUrl: string | undefined;
  /** Embedded PGlite: a new port to its thread, for each worker thread started. */
  embeddedDatabasePort: (() => MessagePort) | undefined;
  logger: Logger;
  /** Times the restart of a thread that died. */
  clock: Clock;
  /** Starts one thread (tests keep hold of it); default: worker-thread.ts. */
  createThread?: (workerData: WorkerThreadData, transferList: MessagePort[]) => Worker;
}): Promise<WorkerThread> {
  const { logger, clock } = options;
  const createThread = options.createThread ?? ((workerData, transferList) => new Worker(new URL("./worker-thread.ts", import.meta.url), { workerData, transferList }));
  let stopping = false;
  let current: { thread: Worker; rpc: PortRpc; control: WorkerThreadControl } | undefined;
  let pendingRestart: unknown;

  const spawn = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const embeddedDatabasePort = options.embeddedDatabasePort?.();
      const workerData: WorkerThreadData = { config: options.config, redisUrl: options.redisUrl, logLevel: logger.level, embeddedDatabasePort };
      const thread = createThread(workerData, embeddedDatabasePort === undefined ? [] : [embeddedDatabasePort]);
      const rpc = createPortRpc(thread);
      const control = rpc.proxy<WorkerThreadControl>("control", ["sweep", "metrics", "stop"]);
      let ready = false;
      thread.on("message", (message: { type?: string } | undefined) => {
        if (message?.type !== "ready") return;
        ready = true;
        current = { thread, rpc, control };
        resolve();
      });
      thread.on("error", (error: Error) => {
        logger.error({ err: error }, "worker thread failed");
        if (!ready) reject(error);
      });
      thread.on("exit", (code) => {
        rpc.close(new Error(`the worker thread exited (${code})`));
        if (!ready) {
          reject(new Error(`the worker thread exited with code ${code} before it was ready`));
          return;
        }
        if (current?.thread === thread) current = undefined;
        if (stopping) return;
        logger.error({ code, restartInMs: restartDelayMs }, "worker thread exited; starting a new one");
        pendingRestart = clock.setTimeout(() => {
          pendingRestart = undefined;
          if (!stopping) spawn().catch((error: unknown) => logger.error({ err: error }, "worker thread could not be restarted"));
        }, restartDelayMs);
        unrefTimer(pendingRestart);
      });
    });

  await spawn();
  const live = (): WorkerThreadControl => {
    if (!current) throw new Error("the worker thread is restarting");
    return current.control;
  };
  return {
    worker: {
      sweeper: { sweep: () => live().sweep() },
      ready: Promise.resolve(),
      stop: async () => {
        stopping = true;
        if (pendingRestart !== undefined) clock.clearTimeout(pendingRestart);
        if (!current) return;
        const { thread, control } = current;
        await control.stop();
        await thread.terminate();
      },
    },
    metrics: async () => (current ? current.control.metrics() : []),
  };
}
