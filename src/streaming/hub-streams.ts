import type { Clock } from "../time/clock.ts";
import type { CountedTimers, TimerHandle } from "./counted-timers.ts";
import type { Cursor } from "./cursor.ts";
import type { LogEntry } from "./events.ts";
import { createStreamState, encodeFrames, rememberFrames, type Frame, type StreamState } from "./hub-state.ts";
import type { HubSubscriptions } from "./hub-subscriptions.ts";
import type { StreamFeed } from "./hub-viewers.ts";
import { parseNotification } from "./parse-notification.ts";
import type { LogPage, StreamLog } from "./stream-log.ts";
import type { GapReason, StreamMetrics } from "./stream-metrics.ts";

/** What the stream side needs of the viewers (hub-viewers.ts). */
export interface StreamViewers {
  deliver(stream: StreamState, incarnation: string, previousHead: number, frames: readonly Frame[]): void;
  restartAll(stream: StreamState): void;
  releaseAll(stream: StreamState): void;
}

export interface HubStreamsOptions {
  log: Pick<StreamLog, "read" | "keys">;
  subscriptions: HubSubscriptions;
  viewers: StreamViewers;
  clock: Clock;
  timers: CountedTimers;
  metrics: StreamMetrics;
  stallTimeoutMs: number;
  maxRecentFrames: number;
  maxRecentBytes: number;
  reportError: (error: unknown) => void;
}

/** The streams this process serves: one per task with local viewers, kept at the log's head. */
export interface HubStreams extends Omit<StreamFeed, "idle"> {
  /**
   * The task's stream; a new one subscribes its channel, then reads the log from `after`, the
   * first viewer's cursor (`readyPromise`): that one read is both the stream's head and, when it
   * reaches the head, the viewer's catch-up.
   */
  acquire(taskId: string, after?: Cursor): StreamState;
  /** Releases the stream's viewers and unsubscribes its channel. Idempotent. */
  destroy(stream: StreamState): void;
  /** Shutdown: no more stall sweeps. */
  stop(): void;
  list(): StreamState[];
  count(): number;
}

const maxBufferedNotifications = 1_000;

/**
 * Keeps each stream's head, incarnation and recent frames current. Live
 * notifications carry the entries themselves, so the hot path is: parse and
 * encode once per stream, hand the frames to the viewers. The log, not
 * pub/sub, is the source of truth: sequence gaps, a reconnect of the
 * subscriber or a silent live stream make it read the log from its head.
 */
export function createHubStreams(options: HubStreamsOptions): HubStreams {
  const { log, subscriptions, viewers, clock, timers, metrics, stallTimeoutMs, maxRecentFrames, maxRecentBytes, reportError } = options;
  const streams = new Map<string, StreamState>();
  const byChannel = new Map<string, StreamState>();
  let sweeper: TimerHandle | undefined;
  let stopped = false;

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
  const onReconnect = (): void => {
    const ready = [...streams.values()].filter((stream) => stream.ready && !stream.closed);
    if (ready.length === 0) return;
    void subscriptions
      .subscribe(ready.map((stream) => stream.channel))
      .catch(reportError)
      .finally(() => {
        for (const stream of ready) if (!stream.closed) requestSync(stream, "reconnect");
      });
  };

  subscriptions.listen(onMessage, onReconnect);

  const acquire = (taskId: string, after?: Cursor): StreamState => streams.get(taskId) ?? createStream(taskId, after);

  function createStream(taskId: string, after: Cursor | undefined): StreamState {
    const channel = log.keys(taskId).notify;
    const stream = createStreamState(taskId, channel, clock.monotonicMs());
    streams.set(taskId, stream);
    byChannel.set(channel, stream);
    // Subscribe first, then read: whatever is appended after the read is announced to us.
    stream.readyPromise = (async () => {
      await subscriptions.subscribe([channel]);
      if (stream.closed) return;
      const afterSeq = after?.seq ?? 0;
      const page = await log.read(taskId, afterSeq);
      if (stream.closed) return;
      if (page) takeFirstPage(stream, page, after === undefined || after.incarnation === page.incarnation ? afterSeq : undefined);
      stream.ready = true;
      stream.lastActivityAt = clock.monotonicMs();
      const buffered = stream.buffered;
      stream.buffered = [];
      for (const notification of buffered) ingest(stream, notification.incarnation, notification.entries);
    })();
    stream.readyPromise.catch(() => destroy(stream));
    ensureSweeper();
    return stream;
  }

  /**
   * The stream's first read, from the first viewer's cursor (`fromSeq`, undefined when that cursor
   * is another incarnation's). When the page reaches the log's head its entries become the
   * stream's recent frames, so that viewer catches up from memory without a second read (one
   * round trip less on every stream open); otherwise the stream takes only the head.
   */
  function takeFirstPage(stream: StreamState, page: LogPage, fromSeq: number | undefined): void {
    stream.incarnation = page.incarnation;
    stream.attempt = page.attempt;
    stream.ended = page.state === "ended";
    // A page holds consecutive entries after fromSeq (LogPage), so it reaches the head when its last
    // entry (or, empty, fromSeq itself) is the log's last; a hole would still be caught by ingest.
    if (fromSeq === undefined || (page.entries.at(-1)?.seq ?? fromSeq) !== page.lastSeq) {
      stream.head = page.lastSeq;
      return;
    }
    stream.head = fromSeq;
    ingest(stream, page.incarnation, page.entries);
  }

  function destroy(stream: StreamState): void {
    if (stream.closed) return;
    stream.closed = true;
    viewers.releaseAll(stream);
    if (streams.get(stream.taskId) === stream) streams.delete(stream.taskId);
    if (byChannel.get(stream.channel) === stream) byChannel.delete(stream.channel);
    subscriptions.unsubscribe(stream.channel);
    if (streams.size === 0) stopSweeper();
  }

  function adoptIncarnation(stream: StreamState, incarnation: string, attempt: number): void {
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
    viewers.restartAll(stream);
  }

  /**
   * Applies consecutive entries (from a notification or a log read) to the
   * stream: drops what it holds, detects gaps, encodes new frames once and
   * hands them to the viewers.
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
    for (const { event } of fresh) if (event.type === "start" || event.type === "reset" || event.type === "continue") stream.attempt = event.attempt;
    const frames = encodeFrames(incarnation, fresh);
    const previousHead = stream.head;
    stream.head = frames.at(-1)?.seq ?? previousHead;
    stream.ended ||= frames.some((frame) => frame.isEnd);
    rememberFrames(stream, frames, maxRecentFrames, maxRecentBytes);
    viewers.deliver(stream, incarnation, previousHead, frames);
  }

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

  function requestSync(stream: StreamState, reason: GapReason): void {
    void syncStream(stream, reason);
  }

  // One sweep every half stall timeout: a live stream silent for stallTimeoutMs
  // gets one log read (then its clock restarts), never per-chunk polling.
  function ensureSweeper(): void {
    if (sweeper !== undefined || stopped) return;
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
  }

  function stopSweeper(): void {
    timers.clear(sweeper);
    sweeper = undefined;
  }

  return {
    acquire,
    destroy,
    ingest,
    adoptIncarnation,
    requestSync,
    stop() {
      stopped = true;
      stopSweeper();
    },
    list: () => [...streams.values()],
    count: () => streams.size,
  };
}
