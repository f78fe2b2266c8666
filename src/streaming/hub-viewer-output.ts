import type { CountedTimers } from "./counted-timers.ts";
import { formatCursor } from "./cursor.ts";
import { encodeSseEvent } from "./encode-sse-event.ts";
import { joinFrames, type Frame, type ViewerState } from "./hub-state.ts";
import type { StreamMetrics } from "./stream-metrics.ts";

/** How bytes reach one viewer's sink, with backpressure and the slow-consumer limit (PROTOCOL.md 5). */
export interface ViewerOutput {
  /** Frames ending at `lastSeq` as one socket write; ends the viewer after `end`, pauses it when the socket is full. */
  writeFrames: (viewer: ViewerState, text: string, lastSeq: number, includesEnd: boolean) => void;
  writeBatch: (viewer: ViewerState, frames: readonly Frame[]) => void;
  /** PROTOCOL.md 4.3: the reset's id is the start of the current log, a cursor the client can resume from. */
  writeReset: (viewer: ViewerState, incarnation: string, attempt: number) => void;
  /** Closes the transport (after optional text) and releases the viewer. */
  end: (viewer: ViewerState, text?: string) => void;
  /** The socket of a paused viewer drained: its slow-consumer clock stops. False if it was not paused. */
  unblock: (viewer: ViewerState) => boolean;
  /** Marks the viewer closed without touching its transport (the client is gone). Idempotent. */
  release: (viewer: ViewerState) => void;
}

export function createViewerOutput(options: {
  timers: CountedTimers;
  metrics: StreamMetrics;
  /** A viewer whose socket stays full this long is closed with a retry hint (ms). */
  slowConsumerTimeoutMs: number;
  retryHint: () => string;
  reportError: (error: unknown) => void;
  /** Bookkeeping once a viewer is closed (called once per viewer). */
  onRelease: (viewer: ViewerState) => void;
}): ViewerOutput {
  const { timers, metrics, slowConsumerTimeoutMs, retryHint, reportError, onRelease } = options;

  const release = (viewer: ViewerState): void => {
    if (viewer.mode === "closed") return;
    viewer.mode = "closed";
    timers.clear(viewer.slowTimer);
    viewer.slowTimer = undefined;
    onRelease(viewer);
  };

  const end = (viewer: ViewerState, text?: string): void => {
    if (viewer.mode === "closed") return;
    try {
      viewer.sink.end(text);
    } catch (error) {
      reportError(error);
    }
    release(viewer);
  };

  const block = (viewer: ViewerState): void => {
    viewer.mode = "blocked";
    metrics.slowConsumer("paused");
    viewer.slowTimer = timers.set(() => {
      viewer.slowTimer = undefined;
      metrics.slowConsumer("closed");
      end(viewer, retryHint());
    }, slowConsumerTimeoutMs);
  };

  const writeFrames = (viewer: ViewerState, text: string, lastSeq: number, includesEnd: boolean): void => {
    viewer.seq = lastSeq;
    let accepted: boolean;
    try {
      accepted = viewer.sink.write(text);
    } catch (error) {
      reportError(error);
      release(viewer);
      return;
    }
    if (includesEnd) end(viewer);
    else if (!accepted) block(viewer);
  };

  return {
    writeFrames,
    writeBatch(viewer, frames) {
      const last = frames.at(-1);
      if (last === undefined) return;
      writeFrames(viewer, joinFrames(frames), last.seq, last.isEnd);
    },
    writeReset(viewer, incarnation, attempt) {
      viewer.incarnation = incarnation;
      const reset = encodeSseEvent(formatCursor(incarnation, 0), { type: "reset", attempt, reason: "log-replaced" });
      writeFrames(viewer, reset, 0, false);
    },
    end,
    unblock(viewer) {
      if (viewer.mode !== "blocked") return false;
      timers.clear(viewer.slowTimer);
      viewer.slowTimer = undefined;
      metrics.slowConsumer("resumed");
      return true;
    },
    release,
  };
}
