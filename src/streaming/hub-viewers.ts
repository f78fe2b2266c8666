import type { CountedTimers } from "./counted-timers.ts";
import type { Cursor } from "./cursor.ts";
import type { LogEntry } from "./events.ts";
import { encodeFrames, joinFrames, type Frame, type StreamState, type ViewerState } from "./hub-state.ts";
import { createViewerOutput } from "./hub-viewer-output.ts";
import type { StreamLog } from "./stream-log.ts";
import type { GapReason, StreamMetrics } from "./stream-metrics.ts";
import type { HubViewer, ViewerSink } from "./viewer-sink.ts";

/** What the viewers need of the stream side (hub-streams.ts); none of it is on the live path. */
export interface StreamFeed {
  /** Entries a catch-up read: they move the stream on too, should notifications be late. */
  ingest(stream: StreamState, incarnation: string, entries: readonly LogEntry[]): void;
  adoptIncarnation(stream: StreamState, incarnation: string, attempt: number): void;
  requestSync(stream: StreamState, reason: GapReason): void;
  /** The stream's last viewer is gone. */
  idle(stream: StreamState): void;
}

export interface ViewerSetOptions {
  log: Pick<StreamLog, "read">;
  timers: CountedTimers;
  metrics: StreamMetrics;
  slowConsumerTimeoutMs: number;
  /** A fresh `retry:` line with jitter, on `baseMs` or the hub's default. */
  retryHint: (baseMs?: number) => string;
  reportError: (error: unknown) => void;
  streams: StreamFeed;
}

/** Every local viewer: attached to one stream each, owning its cursor, mode and slow-consumer timer. */
export interface ViewerSet {
  /** A joining viewer of `stream`: nothing is written to its sink before its handle's `start()`. */
  attach(stream: StreamState, sink: ViewerSink, after: Cursor | undefined): ViewerState;
  /** Fan-out of frames the stream just took in after `previousHead`: one joined write per viewer at the head. */
  deliver(stream: StreamState, incarnation: string, previousHead: number, frames: readonly Frame[]): void;
  /** The stream's log was replaced: viewers at the head or waiting catch up, with an explicit reset (PROTOCOL.md 4.3). */
  restartAll(stream: StreamState): void;
  /** Shutdown: each viewer of the stream is closed with its own jittered `retry:` hint, so reconnections spread out. */
  closeAll(stream: StreamState, retryBaseMs: number): void;
  /** Releases the viewer without touching its transport (the client is gone). Idempotent. */
  release(viewer: ViewerState): void;
  releaseAll(stream: StreamState): void;
  isClosed(viewer: ViewerState): boolean;
  handleOf(viewer: ViewerState): HubViewer;
  count(): number;
}

/**
 * The per-viewer half of the hub: the fan-out to viewers at the head, and the
 * catch-up loop that brings a joining, resuming or drained viewer there. A full
 * socket gets nothing more until it drains, then catches up from its own cursor
 * (PROTOCOL.md 5; the writes and the slow-consumer limit: hub-viewer-output.ts).
 */
export function createViewerSet(options: ViewerSetOptions): ViewerSet {
  const { log, timers, metrics, slowConsumerTimeoutMs, retryHint, reportError, streams } = options;
  let viewerCount = 0;

  const output = createViewerOutput({
    timers,
    metrics,
    slowConsumerTimeoutMs,
    retryHint,
    reportError,
    onRelease: (viewer) => {
      viewerCount -= 1;
      metrics.viewers(-1);
      const { stream } = viewer;
      stream.viewers.delete(viewer);
      if (stream.viewers.size === 0) streams.idle(stream);
    },
  });
  const { writeFrames, writeBatch, writeReset, end: endViewer, release } = output;

  /** Replays from the viewer's cursor (log or recent frames) until it is live. Only from joining, waiting or live. */
  function startCatchUp(viewer: ViewerState): void {
    if (viewer.mode !== "joining" && viewer.mode !== "waiting" && viewer.mode !== "live") return;
    viewer.mode = "catching-up";
    runCatchUp(viewer).catch((error: unknown) => {
      // A failed read: hand the client back its own retry (it resumes from its cursor).
      reportError(error);
      endViewer(viewer, retryHint());
    });
  }

  /**
   * Brings one viewer from its cursor to the stream head: an explicit reset
   * when its cursor belongs to another incarnation or cannot be ours, then the
   * recent frames from memory or pages of the log, until it is live.
   */
  async function runCatchUp(viewer: ViewerState): Promise<void> {
    const { stream } = viewer;
    for (;;) {
      if (viewer.mode !== "catching-up") return;
      if (stream.incarnation === undefined) {
        viewer.mode = viewer.incarnation === undefined && viewer.seq === 0 ? "live" : "waiting";
        return;
      }
      if (viewer.incarnation === undefined) viewer.incarnation = stream.incarnation;
      else if (viewer.incarnation !== stream.incarnation) {
        writeReset(viewer, stream.incarnation, stream.attempt);
        continue;
      }
      if (viewer.seq === stream.head) {
        if (stream.ended) endViewer(viewer);
        else viewer.mode = "live";
        return;
      }
      const oldest = stream.recent[0];
      if (viewer.seq < stream.head && oldest !== undefined && oldest.seq <= viewer.seq + 1) {
        writeBatch(viewer, stream.recent.slice(viewer.seq + 1 - oldest.seq));
        continue;
      }
      const page = await log.read(stream.taskId, viewer.seq);
      if (viewer.mode !== "catching-up") return;
      if (page === undefined) {
        // The log vanished under us: wait for the next incarnation.
        viewer.mode = "waiting";
        streams.requestSync(stream, "log-replaced");
        return;
      }
      if (page.incarnation !== stream.incarnation) {
        streams.adoptIncarnation(stream, page.incarnation, page.attempt);
        streams.requestSync(stream, "log-replaced");
        continue;
      }
      if (page.lastSeq < viewer.seq) {
        writeReset(viewer, page.incarnation, page.attempt);
        continue;
      }
      if (page.entries.length === 0 && viewer.seq < page.lastSeq) throw new Error(`stream log of ${stream.taskId} has a hole after ${viewer.seq}`);
      streams.ingest(stream, page.incarnation, page.entries);
      const frames = encodeFrames(page.incarnation, page.entries.filter((entry) => entry.seq > viewer.seq));
      metrics.replayed(frames.length);
      writeBatch(viewer, frames);
      if (viewer.mode === "catching-up" && page.state === "ended" && viewer.seq >= page.lastSeq) {
        endViewer(viewer);
        return;
      }
      if (viewer.mode === "catching-up" && viewer.seq >= page.lastSeq && viewer.seq > stream.head) {
        viewer.mode = "live";
        streams.requestSync(stream, "seq-gap");
        return;
      }
    }
  }

  return {
    attach(stream, sink, after) {
      const viewer: ViewerState = { stream, sink, incarnation: after?.incarnation, seq: after?.seq ?? 0, mode: "joining", slowTimer: undefined };
      stream.viewers.add(viewer);
      viewerCount += 1;
      metrics.viewers(1);
      if (after) metrics.resumed();
      return viewer;
    },

    deliver(stream, incarnation, previousHead, frames) {
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
    },

    restartAll(stream) {
      for (const viewer of [...stream.viewers]) if (viewer.mode === "live" || viewer.mode === "waiting") startCatchUp(viewer);
    },

    closeAll(stream, retryBaseMs) {
      for (const viewer of [...stream.viewers]) {
        if (viewer.mode === "joining") release(viewer);
        else endViewer(viewer, retryHint(retryBaseMs));
      }
    },

    release,

    releaseAll(stream) {
      for (const viewer of stream.viewers) release(viewer);
    },

    isClosed: (viewer) => viewer.mode === "closed",

    handleOf: (viewer) => ({
      start: () => {
        if (viewer.mode === "joining") startCatchUp(viewer);
      },
      resume: () => {
        if (!output.unblock(viewer)) return;
        viewer.mode = "waiting";
        startCatchUp(viewer);
      },
      close: () => release(viewer),
    }),

    count: () => viewerCount,
  };
}
