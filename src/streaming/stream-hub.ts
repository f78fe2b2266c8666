import { SluiceError, isSluiceError } from "../errors/catalog.ts";
import { systemClock, type Clock } from "../time/clock.ts";
import { createCountedTimers, type TimerHandle } from "./counted-timers.ts";
import type { Cursor } from "./cursor.ts";
import { encodeSseRetry } from "./encode-sse-event.ts";
import type { LogEntry } from "./events.ts";
import { encodeFrames, joinFrames, type Frame, type StreamState, type ViewerState } from "./hub-state.ts";
import { createViewerDriver } from "./hub-viewers.ts";
import { parseNotification } from "./parse-notification.ts";
import type { StreamLog } from "./stream-log.ts";
import { noopStreamMetrics, type GapReason, type StreamMetrics } from "./stream-metrics.ts";
import type { HubViewer, ViewerSink } from "./viewer-sink.ts";

export type { HubViewer, ViewerSink } from "./viewer-sink.ts";

/**
 * The one pub/sub connection of a process, as the hub uses it. An ioredis
 * `Redis` in subscriber mode fits; `ready` is its (re)connection event.
 */
export interface PubSubConnection {
  subscribe(...channels: string[]): Promise<unknown>;
  unsubscribe(...channels: string[]): Promise<unknown>;
  ssubscribe(...channels: string[]): Promise<unknown>;
  sunsubscribe(...channels: string[]): Promise<unknown>;
  on(event: "message" | "smessage", listener: (channel: string, message: string) => void): unknown;
  on(event: "ready", listener: () => void): unknown;
  off(event: "message" | "smessage", listener: (channel: string, message: string) => void): unknown;
  off(event: "ready", listener: () => void): unknown;
}

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
  log: Pick<StreamLog, "read" | "inspect" | "keys">;
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

const maxBufferedNotifications = 1_000;

/**
 * Fans streams out to local viewers over ONE shared subscriber connection
 * (PROTOCOL.md section 8). Live notifications carry the entries themselves, so
 * the hot path is: parse and encode once per stream, write the same string to
 * every viewer at the head. The log, not pub/sub, is the source of truth:
 * sequence gaps, a reconnect of the subscriber or a silent live stream make the
 * hub read the log from the last entry it holds.
 */
export function createStreamHub(options: StreamHubOptions): StreamHub {
  const { log, subscriber } = options;
  const sharded = options.subscribeMode === "ssubscribe";
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const metrics = options.metrics ?? noopStreamMetrics;
  const stallTimeoutMs = options.stallTimeoutMs ?? defaultStallTimeoutMs;
  const slowConsumerTimeoutMs = options.slowConsumerTimeoutMs ?? defaultSlowConsumerTimeoutMs;
  const retryMs = options.retryMs ?? defaultRetryMs;
  const retryJitterMs = options.retryJitterMs ?? defaultRetryJitterMs;
  const maxRecentFrames = options.recentFrames ?? 256;
  const maxRecentBytes = options.recentBytes ?? 256 * 1024;
  const reportError = options.onError ?? (() => undefined);

  const streams = new Map<string, StreamState>();
  const byChannel = new Map<string, StreamState>();
  const channels = new Set<string>();
  const unsubscribing = new Set<Promise<unknown>>();
  let viewerCount = 0;
  let sweeper: TimerHandle | undefined;
  let hubClosed = false;

  const timers = createCountedTimers(clock);
  const retryHint = (base = retryMs): string => encodeSseRetry(base + Math.floor(random() * retryJitterMs));

  // --- subscriptions -------------------------------------------------------

  const subscribeChannels = async (names: string[]): Promise<void> => {
    for (const name of names) channels.add(name);
    if (names.length === 0) return;
    if (!sharded) await subscriber.subscribe(...names);
    else await Promise.all(names.map((name) => subscriber.ssubscribe(name)));
  };

  // Issued synchronously when a stream is dropped, so a SUBSCRIBE for a new
  // stream of the same task is queued after it on the one connection.
  const unsubscribeChannel = (name: string): void => {
    channels.delete(name);
    const pending = (sharded ? subscriber.sunsubscribe(name) : subscriber.unsubscribe(name)).catch(reportError);
    unsubscribing.add(pending);
    void pending.finally(() => unsubscribing.delete(pending));
  };

  const onMessage = (channel: string, message: string): void => {
    const stream = byChannel.get(channel);
    if (!stream || stream.closed) return;
    const notification = parseNotification(message);
    if (!notification) {
      if (stream.ready) requestSync(stream, "seq-gap");
      return;
    }
    if (!stream.ready) {
      // Past the cap the oldest are dropped: the merge then sees a gap and reads the log.
      if (stream.buffered.push(notification) > maxBufferedNotifications) stream.buffered.shift();
      return;
    }
    const receivedAt = clock.monotonicMs();
    const headBefore = stream.head;
    ingest(stream, notification.incarnation, notification.entries);
    metrics.deliveryLatency(clock.monotonicMs() - receivedAt);
    // Live path only: the head moved, so these entries were just written to the viewers at it.
    // Skew between the two wall clocks could make it negative; 0 is the honest floor.
    if (notification.flushedAtMs !== undefined && stream.head > headBefore) metrics.flushToSse(Math.max(0, clock.wallClockMs() - notification.flushedAtMs));
  };

  // After a reconnect the connection may have missed anything: resubscribe
  // (idempotent, and awaited so nothing published from now on is missed), then
  // read every stream's log from its head.
  const onReady = (): void => {
    const ready = [...streams.values()].filter((stream) => stream.ready && !stream.closed);
    if (ready.length === 0) return;
    void subscribeChannels(ready.map((stream) => stream.channel))
      .catch(reportError)
      .finally(() => {
        for (const stream of ready) if (!stream.closed) requestSync(stream, "reconnect");
      });
  };

  subscriber.on(sharded ? "smessage" : "message", onMessage);
  subscriber.on("ready", onReady);

  // --- streams -------------------------------------------------------------

  const createStream = (taskId: string): StreamState => {
    const channel = log.keys(taskId).notify;
    const stream: StreamState = {
      taskId,
      channel,
      viewers: new Set(),
      ready: false,
      readyPromise: Promise.resolve(),
      incarnation: undefined,
      head: 0,
      attempt: 0,
      ended: false,
      recent: [],
      recentBytes: 0,
      buffered: [],
      syncing: false,
      syncAgain: false,
      lastActivityAt: clock.monotonicMs(),
      closed: false,
    };
    streams.set(taskId, stream);
    byChannel.set(channel, stream);
    // Subscribe first, then read: whatever is appended after the read is announced to us.
    stream.readyPromise = (async () => {
      await subscribeChannels([channel]);
      if (stream.closed) return;
      const meta = await log.inspect(taskId);
      if (stream.closed) return;
      if (meta) {
        stream.incarnation = meta.incarnation;
        stream.head = meta.lastSeq;
        stream.attempt = meta.attempt;
        stream.ended = meta.state === "ended";
      }
      stream.ready = true;
      stream.lastActivityAt = clock.monotonicMs();
      const buffered = stream.buffered;
      stream.buffered = [];
      for (const notification of buffered) ingest(stream, notification.incarnation, notification.entries);
    })();
    stream.readyPromise.catch(() => destroyStream(stream));
    ensureSweeper();
    return stream;
  };

  const destroyStream = (stream: StreamState): void => {
    if (stream.closed) return;
    stream.closed = true;
    for (const viewer of stream.viewers) release(viewer);
    if (streams.get(stream.taskId) === stream) streams.delete(stream.taskId);
    if (byChannel.get(stream.channel) === stream) byChannel.delete(stream.channel);
    unsubscribeChannel(stream.channel);
    if (streams.size === 0) {
      timers.clear(sweeper);
      sweeper = undefined;
    }
  };

  const adoptIncarnation = (stream: StreamState, incarnation: string, attempt: number): void => {
    const replaced = stream.incarnation !== undefined;
    stream.incarnation = incarnation;
    stream.head = 0;
    stream.attempt = attempt;
    stream.ended = false;
    stream.recent = [];
    stream.recentBytes = 0;
    if (!replaced) return;
    metrics.gapRecovered("log-replaced", 0);
    // Viewers holding cursors of the old log get an explicit reset (PROTOCOL.md 4.3).
    for (const viewer of [...stream.viewers]) if (viewer.mode === "live" || viewer.mode === "waiting") startCatchUp(viewer);
  };

  /**
   * Applies consecutive entries (from a notification or a log read) to the
   * stream: drops what it holds, detects gaps, encodes new frames once and
   * writes them to every live viewer.
   */
  function ingest(stream: StreamState, incarnation: string, entries: readonly LogEntry[]): void {
    if (stream.closed) return;
    stream.lastActivityAt = clock.monotonicMs();
    if (incarnation !== stream.incarnation) adoptIncarnation(stream, incarnation, 0);
    const fresh = entries.filter((entry) => entry.seq > stream.head);
    const first = fresh[0];
    if (first === undefined) return;
    if (first.seq !== stream.head + 1) {
      requestSync(stream, "seq-gap");
      return;
    }
    for (const { event } of fresh) if (event.type === "start" || event.type === "reset") stream.attempt = event.attempt;
    const frames = encodeFrames(incarnation, fresh);
    const previousHead = stream.head;
    stream.head = frames.at(-1)?.seq ?? previousHead;
    stream.ended ||= frames.some((frame) => frame.isEnd);
    rememberFrames(stream, frames);
    deliver(stream, incarnation, previousHead, frames);
  }

  const rememberFrames = (stream: StreamState, frames: readonly Frame[]): void => {
    for (const frame of frames) {
      stream.recent.push(frame);
      stream.recentBytes += frame.text.length;
    }
    while (stream.recent.length > maxRecentFrames || (stream.recentBytes > maxRecentBytes && stream.recent.length > 1)) {
      stream.recentBytes -= stream.recent.shift()?.text.length ?? 0;
    }
  };

  const deliver = (stream: StreamState, incarnation: string, previousHead: number, frames: readonly Frame[]): void => {
    const lastSeq = stream.head;
    let joined: string | undefined;
    for (const viewer of [...stream.viewers]) {
      if (viewer.mode === "waiting") {
        startCatchUp(viewer);
        continue;
      }
      if (viewer.mode !== "live") continue;
      if (viewer.incarnation === undefined && viewer.seq === 0 && previousHead === 0) viewer.incarnation = incarnation;
      if (viewer.incarnation !== incarnation || viewer.seq < previousHead) {
        startCatchUp(viewer);
        continue;
      }
      if (viewer.seq >= lastSeq) {
        // It already has the end (its cursor was the end when it joined): close without a second one.
        if (stream.ended) endViewer(viewer);
        continue;
      }
      if (viewer.seq === previousHead) {
        joined ??= joinFrames(frames);
        writeFrames(viewer, joined, lastSeq, frames.at(-1)?.isEnd ?? false);
      } else {
        writeBatch(viewer, frames.filter((frame) => frame.seq > viewer.seq));
      }
    }
  };

  async function syncStream(stream: StreamState, reason: GapReason): Promise<void> {
    if (stream.syncing) {
      stream.syncAgain = true;
      return;
    }
    stream.syncing = true;
    let recovered = 0;
    try {
      do {
        stream.syncAgain = false;
        for (;;) {
          const page = await log.read(stream.taskId, stream.head);
          if (stream.closed || page === undefined) break;
          if (page.incarnation !== stream.incarnation) {
            adoptIncarnation(stream, page.incarnation, page.attempt);
            continue;
          }
          const before = stream.head;
          ingest(stream, page.incarnation, page.entries);
          recovered += stream.head - before;
          if (stream.head >= page.lastSeq || stream.head === before) break;
        }
      } while (stream.syncAgain && !stream.closed);
    } catch (error) {
      reportError(error);
    } finally {
      stream.syncing = false;
    }
    if (recovered > 0) metrics.gapRecovered(reason, recovered);
  }

  const requestSync = (stream: StreamState, reason: GapReason): void => {
    void syncStream(stream, reason);
  };

  // One sweep every half stall timeout: a live stream silent for stallTimeoutMs
  // gets one log read (then its clock restarts), never per-chunk polling.
  const ensureSweeper = (): void => {
    if (sweeper !== undefined || hubClosed) return;
    sweeper = timers.set(() => {
      sweeper = undefined;
      const now = clock.monotonicMs();
      for (const stream of streams.values()) {
        if (!stream.ready || stream.ended || stream.syncing || now - stream.lastActivityAt < stallTimeoutMs) continue;
        stream.lastActivityAt = now;
        requestSync(stream, "stall");
      }
      if (streams.size > 0) ensureSweeper();
    }, Math.max(1, stallTimeoutMs / 2));
  };

  // --- viewers (hub-viewers.ts) ---------------------------------------------

  const viewers = createViewerDriver({
    log,
    timers,
    metrics,
    slowConsumerTimeoutMs,
    retryHint: () => retryHint(),
    reportError,
    detach: (viewer) => {
      viewerCount -= 1;
      metrics.viewers(-1);
      const { stream } = viewer;
      stream.viewers.delete(viewer);
      if (stream.viewers.size === 0) destroyStream(stream);
    },
    ingest,
    adoptIncarnation,
    requestSync,
  });
  const { startCatchUp, writeFrames, writeBatch, endViewer, release } = viewers;

  return {
    async open({ taskId, after, whenMissing = "wait", sink }) {
      if (hubClosed) throw new SluiceError("SERVICE_UNAVAILABLE", "The server is shutting down.");
      const stream = streams.get(taskId) ?? createStream(taskId);
      const viewer: ViewerState = { stream, sink, incarnation: after?.incarnation, seq: after?.seq ?? 0, mode: "joining", slowTimer: undefined };
      stream.viewers.add(viewer);
      viewerCount += 1;
      metrics.viewers(1);
      if (after) metrics.resumed();
      try {
        await stream.readyPromise;
      } catch (error) {
        release(viewer);
        throw isSluiceError(error) ? error : new SluiceError("SERVICE_UNAVAILABLE", undefined, { cause: error });
      }
      if (viewer.mode === "closed") throw new SluiceError("SERVICE_UNAVAILABLE", "The server is shutting down.");
      if (stream.incarnation === undefined && whenMissing !== "wait") {
        let decided: WhenLogMissing;
        try {
          decided = typeof whenMissing === "function" ? await whenMissing() : whenMissing;
        } catch (error) {
          release(viewer);
          throw isSluiceError(error) ? error : new SluiceError("SERVICE_UNAVAILABLE", undefined, { cause: error });
        }
        // Re-read after the await: the hub may have closed meanwhile (TypeScript keeps the narrowed mode).
        if ((viewer.mode as ViewerState["mode"]) === "closed") throw new SluiceError("SERVICE_UNAVAILABLE", "The server is shutting down.");
        // The log may have appeared while the caller looked: then it is simply there.
        if (stream.incarnation === undefined && decided !== "wait") {
          release(viewer);
          throw new SluiceError(decided);
        }
      }
      if (after && stream.ended && after.incarnation === stream.incarnation && after.seq === stream.head) {
        release(viewer);
        return { status: "finished" };
      }
      return { status: "ready", viewer: viewers.handleOf(viewer) };
    },

    async close(closeOptions) {
      hubClosed = true;
      timers.clear(sweeper);
      sweeper = undefined;
      for (const stream of [...streams.values()]) {
        for (const viewer of [...stream.viewers]) {
          // Each viewer draws its own jitter, so the reconnections spread out.
          if (viewer.mode === "joining") release(viewer);
          else endViewer(viewer, retryHint(closeOptions?.retryMs ?? retryMs));
        }
        destroyStream(stream);
      }
      subscriber.off(sharded ? "smessage" : "message", onMessage);
      subscriber.off("ready", onReady);
      await Promise.allSettled([...unsubscribing]);
    },

    stats: () => ({ streams: streams.size, viewers: viewerCount, channels: channels.size, timers: timers.count() }),
  };
}
