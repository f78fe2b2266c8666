import type { CountedTimers } from "./counted-timers.ts";
import { formatCursor } from "./cursor.ts";
import { encodeSseEvent } from "./encode-sse-event.ts";
import type { LogEntry } from "./events.ts";
import { encodeFrames, joinFrames, type Frame, type StreamState, type ViewerState } from "./hub-state.ts";
import type { StreamLog } from "./stream-log.ts";
import type { GapReason, StreamMetrics } from "./stream-metrics.ts";
import type { HubViewer } from "./viewer-sink.ts";

/** What the per-viewer side needs from the stream side of the hub. */
export interface ViewerDriverContext {
  log: Pick<StreamLog, "read">;
  timers: CountedTimers;
  metrics: StreamMetrics;
  slowConsumerTimeoutMs: number;
  /** A fresh `retry:` line with jitter. */
  retryHint(): string;
  reportError(error: unknown): void;
  /** Stream bookkeeping once a viewer is gone (drops the stream after its last viewer). */
  detach(viewer: ViewerState): void;
  ingest(stream: StreamState, incarnation: string, entries: readonly LogEntry[]): void;
  adoptIncarnation(stream: StreamState, incarnation: string, attempt: number): void;
  requestSync(stream: StreamState, reason: GapReason): void;
}

export interface ViewerDriver {
  /** Replays from the viewer's cursor (log or recent frames) until it is live. Only from joining, waiting or live. */
  startCatchUp: (viewer: ViewerState) => void;
  /** Writes frames ending at `lastSeq` as one socket write; ends the viewer after `end`, pauses it when the socket is full. */
  writeFrames: (viewer: ViewerState, text: string, lastSeq: number, includesEnd: boolean) => void;
  writeBatch: (viewer: ViewerState, frames: readonly Frame[]) => void;
  /** Closes the transport (after optional text) and releases the viewer. */
  endViewer: (viewer: ViewerState, text?: string) => void;
  /** Releases the viewer without touching its transport (the client is gone). Idempotent. */
  release: (viewer: ViewerState) => void;
  handleOf: (viewer: ViewerState) => HubViewer;
}

/**
 * The per-viewer half of the hub: backpressure (PROTOCOL.md 5: a full socket
 * gets nothing more until it drains, then catches up from its own cursor, and
 * is closed with a retry hint past the slow-consumer limit) and the catch-up
 * loop that brings a joining, resuming or drained viewer to the stream head.
 */
export function createViewerDriver(context: ViewerDriverContext): ViewerDriver {
  const { log, timers, metrics } = context;

  const release = (viewer: ViewerState): void => {
    if (viewer.mode === "closed") return;
    viewer.mode = "closed";
    timers.clear(viewer.slowTimer);
    viewer.slowTimer = undefined;
    context.detach(viewer);
  };

  const endViewer = (viewer: ViewerState, text?: string): void => {
    if (viewer.mode === "closed") return;
    try {
      viewer.sink.end(text);
    } catch (error) {
      context.reportError(error);
    }
    release(viewer);
  };

  const block = (viewer: ViewerState): void => {
    viewer.mode = "blocked";
    metrics.slowConsumer("paused");
    viewer.slowTimer = timers.set(() => {
      viewer.slowTimer = undefined;
      metrics.slowConsumer("closed");
      endViewer(viewer, context.retryHint());
    }, context.slowConsumerTimeoutMs);
  };

  const writeFrames = (viewer: ViewerState, text: string, lastSeq: number, includesEnd: boolean): void => {
    viewer.seq = lastSeq;
    let accepted: boolean;
    try {
      accepted = viewer.sink.write(text);
    } catch (error) {
      context.reportError(error);
      release(viewer);
      return;
    }
    if (includesEnd) endViewer(viewer);
    else if (!accepted) block(viewer);
  };

  const writeBatch = (viewer: ViewerState, frames: readonly Frame[]): void => {
    const last = frames.at(-1);
    if (last === undefined) return;
    writeFrames(viewer, joinFrames(frames), last.seq, last.isEnd);
  };

  // PROTOCOL.md 4.3: the reset's id is the start of the current log, a cursor the client can resume from.
  const writeReset = (viewer: ViewerState, incarnation: string, attempt: number): void => {
    viewer.incarnation = incarnation;
    const reset = encodeSseEvent(formatCursor(incarnation, 0), { type: "reset", attempt, reason: "log-replaced" });
    writeFrames(viewer, reset, 0, false);
  };

  function startCatchUp(viewer: ViewerState): void {
    if (viewer.mode !== "joining" && viewer.mode !== "waiting" && viewer.mode !== "live") return;
    viewer.mode = "catching-up";
    runCatchUp(viewer).catch((error: unknown) => {
      // A failed read: hand the client back its own retry (it resumes from its cursor).
      context.reportError(error);
      endViewer(viewer, context.retryHint());
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
        context.requestSync(stream, "log-replaced");
        return;
      }
      if (page.incarnation !== stream.incarnation) {
        context.adoptIncarnation(stream, page.incarnation, page.attempt);
        context.requestSync(stream, "log-replaced");
        continue;
      }
      if (page.lastSeq < viewer.seq) {
        writeReset(viewer, page.incarnation, page.attempt);
        continue;
      }
      if (page.entries.length === 0 && viewer.seq < page.lastSeq) throw new Error(`stream log of ${stream.taskId} has a hole after ${viewer.seq}`);
      // What this viewer read also moves the stream on, should notifications be late.
      context.ingest(stream, page.incarnation, page.entries);
      const frames = encodeFrames(
        page.incarnation,
        page.entries.filter((entry) => entry.seq > viewer.seq),
      );
      metrics.replayed(frames.length);
      writeBatch(viewer, frames);
      if (viewer.mode === "catching-up" && page.state === "ended" && viewer.seq >= page.lastSeq) {
        endViewer(viewer);
        return;
      }
      if (viewer.mode === "catching-up" && viewer.seq >= page.lastSeq && viewer.seq > stream.head) {
        viewer.mode = "live";
        context.requestSync(stream, "seq-gap");
        return;
      }
    }
  }

  const handleOf = (viewer: ViewerState): HubViewer => ({
    start: () => {
      if (viewer.mode === "joining") startCatchUp(viewer);
    },
    resume: () => {
      if (viewer.mode !== "blocked") return;
      timers.clear(viewer.slowTimer);
      viewer.slowTimer = undefined;
      metrics.slowConsumer("resumed");
      viewer.mode = "waiting";
      startCatchUp(viewer);
    },
    close: () => release(viewer),
  });

  return { startCatchUp, writeFrames, writeBatch, endViewer, release, handleOf };
}
