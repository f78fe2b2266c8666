import { SluiceError, isSluiceError } from "../errors/catalog.ts";
import { systemClock, type Clock } from "../time/clock.ts";
import { createCountedTimers } from "./counted-timers.ts";
import type { Cursor } from "./cursor.ts";
import { encodeSseRetry } from "./encode-sse-event.ts";
import { createHubStreams } from "./hub-streams.ts";
import { createHubSubscriptions, type PubSubConnection } from "./hub-subscriptions.ts";
import { createViewerSet } from "./hub-viewers.ts";
import type { StreamLog } from "./stream-log.ts";
import { noopStreamMetrics, type StreamMetrics } from "./stream-metrics.ts";
import type { HubViewer, ViewerSink } from "./viewer-sink.ts";

export type { HubViewer, ViewerSink } from "./viewer-sink.ts";
export type { PubSubConnection } from "./hub-subscriptions.ts";

/** What to do when the task has no log: wait for the generation to start, or answer 404 / 410. */
export type WhenLogMissing = "wait" | "STREAM_NOT_FOUND" | "STREAM_EXPIRED";

/**
 * A decision, or a question asked only when the log is missing: the caller can then
 * look the task up (PostgreSQL) just for the rare stream that has not started yet or
 * has expired, instead of on every open.
 */
export type WhenLogMissingOption = WhenLogMissing | (() => Promise<WhenLogMissing>);

export interface OpenViewerOptions {
  taskId: string;
  /** The client's cursor; undefined = from the first entry. */
  after?: Cursor | undefined;
  whenMissing?: WhenLogMissingOption;
  sink: ViewerSink;
}

export type OpenViewerResult =
  | { status: "ready"; viewer: HubViewer }
  /** The cursor is the stream's end: nothing to send (HTTP 204). */
  | { status: "finished" };

export interface HubStats {
  streams: number;
  viewers: number;
  /** Channels this hub has subscribed on the shared connection. */
  channels: number;
  /** Timers the hub owns (stall sweeper, slow-consumer limits). */
  timers: number;
}

export interface StreamHub {
  /**
   * Attaches a viewer: subscribes the stream's channel if it is the first local
   * viewer, then checks the log. Rejects with STREAM_NOT_FOUND / STREAM_EXPIRED
   * per `whenMissing`, or SERVICE_UNAVAILABLE; nothing is written to the sink before `start()`.
   */
  open(options: OpenViewerOptions): Promise<OpenViewerResult>;
  /** Graceful shutdown: every viewer gets a `retry:` hint and is closed; all channels are unsubscribed. */
  close(options?: { retryMs?: number }): Promise<void>;
  stats(): HubStats;
}

export interface StreamHubOptions {
  log: Pick<StreamLog, "read" | "keys">;
  subscriber: PubSubConnection;
  /** "ssubscribe" for Redis Cluster, matching the log's "spublish". */
  subscribeMode?: "subscribe" | "ssubscribe";
  /** Timers and `monotonicMs`; its `wallClockMs` is compared with the writers' flush stamps for `metrics.flushToSse`. */
  clock?: Clock;
  random?: () => number;
  /** A live stream with no notification for this long is read from the log (ms). */
  stallTimeoutMs?: number;
  /** A viewer whose socket stays full this long is closed with a retry hint (ms). */
  slowConsumerTimeoutMs?: number;
  /** `retry:` hint when the hub closes a viewer: base + random jitter (ms). */
  retryMs?: number;
  retryJitterMs?: number;
  /** Recent frames kept per stream so joiners and drained viewers catch up without a read. */
  recentFrames?: number;
  recentBytes?: number;
  metrics?: StreamMetrics;
  /** Background failures (a catch-up read while Redis is down); the hub recovers by itself. */
  onError?: (error: unknown) => void;
}

export const defaultStallTimeoutMs = 3_000;
export const defaultSlowConsumerTimeoutMs = 30_000;
export const defaultRetryMs = 2_000;
export const defaultRetryJitterMs = 1_000;

/**
 * Fans streams out to local viewers over ONE shared subscriber connection
 * (PROTOCOL.md section 8). Three parts: the channels on that connection
 * (hub-subscriptions.ts), the streams kept at the log's head from
 * notifications and log reads (hub-streams.ts), and the viewers with their
 * cursors, catch-up and backpressure (hub-viewers.ts).
 */
export function createStreamHub(options: StreamHubOptions): StreamHub {
  const { log } = options;
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const metrics = options.metrics ?? noopStreamMetrics;
  const retryMs = options.retryMs ?? defaultRetryMs;
  const retryJitterMs = options.retryJitterMs ?? defaultRetryJitterMs;
  const reportError = options.onError ?? (() => undefined);
  const timers = createCountedTimers(clock);
  let hubClosed = false;

  const subscriptions = createHubSubscriptions({ subscriber: options.subscriber, sharded: options.subscribeMode === "ssubscribe", reportError });
  // The viewers call back into the streams only off the live path (a catch-up
  // read, a log replaced, the last viewer gone), so these forwarders cost no
  // work per notification; the streams call the viewers directly.
  const viewers = createViewerSet({
    log,
    timers,
    metrics,
    slowConsumerTimeoutMs: options.slowConsumerTimeoutMs ?? defaultSlowConsumerTimeoutMs,
    retryHint: (baseMs = retryMs) => encodeSseRetry(baseMs + Math.floor(random() * retryJitterMs)),
    reportError,
    streams: {
      ingest: (stream, incarnation, entries) => streams.ingest(stream, incarnation, entries),
      adoptIncarnation: (stream, incarnation, attempt) => streams.adoptIncarnation(stream, incarnation, attempt),
      requestSync: (stream, reason) => streams.requestSync(stream, reason),
      idle: (stream) => streams.destroy(stream),
    },
  });
  const streams = createHubStreams({
    log,
    subscriptions,
    viewers,
    clock,
    timers,
    metrics,
    stallTimeoutMs: options.stallTimeoutMs ?? defaultStallTimeoutMs,
    maxRecentFrames: options.recentFrames ?? 256,
    maxRecentBytes: options.recentBytes ?? 256 * 1024,
    reportError,
  });

  const shuttingDown = (): SluiceError => new SluiceError("SERVICE_UNAVAILABLE", "The server is shutting down.");
  const unavailable = (error: unknown): SluiceError => (isSluiceError(error) ? error : new SluiceError("SERVICE_UNAVAILABLE", undefined, { cause: error }));

  return {
    async open({ taskId, after, whenMissing = "wait", sink }) {
      if (hubClosed) throw shuttingDown();
      const stream = streams.acquire(taskId, after);
      const viewer = viewers.attach(stream, sink, after);
      try {
        await stream.readyPromise;
      } catch (error) {
        viewers.release(viewer);
        throw unavailable(error);
      }
      if (viewers.isClosed(viewer)) throw shuttingDown();
      if (stream.incarnation === undefined && whenMissing !== "wait") {
        let decided: WhenLogMissing;
        try {
          decided = typeof whenMissing === "function" ? await whenMissing() : whenMissing;
        } catch (error) {
          viewers.release(viewer);
          throw unavailable(error);
        }
        // The hub may have closed while the caller looked.
        if (viewers.isClosed(viewer)) throw shuttingDown();
        // The log may have appeared while the caller looked: then it is simply there.
        if (stream.incarnation === undefined && decided !== "wait") {
          viewers.release(viewer);
          throw new SluiceError(decided);
        }
      }
      if (after && stream.ended && after.incarnation === stream.incarnation && after.seq === stream.head) {
        viewers.release(viewer);
        return { status: "finished" };
      }
      return { status: "ready", viewer: viewers.handleOf(viewer) };
    },

    async close(closeOptions) {
      hubClosed = true;
      streams.stop();
      for (const stream of streams.list()) {
        viewers.closeAll(stream, closeOptions?.retryMs ?? retryMs);
        streams.destroy(stream);
      }
      await subscriptions.close();
    },

    stats: () => ({ streams: streams.count(), viewers: viewers.count(), channels: subscriptions.count(), timers: timers.count() }),
  };
}
