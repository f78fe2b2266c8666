import type { TimerHandle } from "./counted-timers.ts";
import { formatCursor } from "./cursor.ts";
import { encodeSseEvent } from "./encode-sse-event.ts";
import type { LogEntry } from "./events.ts";
import type { Notification } from "./parse-notification.ts";
import type { ViewerSink } from "./viewer-sink.ts";

// The hub's bookkeeping. hub-streams.ts writes a stream's fields; hub-viewers.ts (and its output) writes each
// viewer's fields and a stream's `viewers` set. Each side only reads what the other writes.

export interface Frame {
  seq: number;
  text: string;
  isEnd: boolean;
}

export type ViewerMode = "joining" | "catching-up" | "live" | "blocked" | "waiting" | "closed";

export interface ViewerState {
  stream: StreamState;
  sink: ViewerSink;
  /** The viewer's cursor: the last entry written to it. Undefined incarnation = no cursor yet. */
  incarnation: string | undefined;
  seq: number;
  mode: ViewerMode;
  slowTimer: TimerHandle | undefined;
}

export interface StreamState {
  taskId: string;
  channel: string;
  viewers: Set<ViewerState>;
  ready: boolean;
  readyPromise: Promise<void>;
  /** Undefined while the task has no log (the generation has not started). */
  incarnation: string | undefined;
  /** Last seq this hub holds for the incarnation; every live viewer is at or past it. */
  head: number;
  attempt: number;
  ended: boolean;
  /** Frames (head - recent.length, head], encoded once for every viewer. */
  recent: Frame[];
  recentBytes: number;
  /** Notifications that arrived before the initial read (the join race). */
  buffered: Notification[];
  syncing: boolean;
  syncAgain: boolean;
  lastActivityAt: number;
  closed: boolean;
}

/** A stream not read yet: `readyPromise` is replaced by its first read. */
export function createStreamState(taskId: string, channel: string, nowMs: number): StreamState {
  return {
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
    lastActivityAt: nowMs,
    closed: false,
  };
}

/** Appends frames to the stream's recent ones, then drops the oldest past either limit (keeping at least one). */
export function rememberFrames(stream: StreamState, frames: readonly Frame[], maxFrames: number, maxBytes: number): void {
  for (const frame of frames) {
    stream.recent.push(frame);
    stream.recentBytes += frame.text.length;
  }
  while (stream.recent.length > maxFrames || (stream.recentBytes > maxBytes && stream.recent.length > 1)) {
    stream.recentBytes -= stream.recent.shift()?.text.length ?? 0;
  }
}

/** SSE frames of consecutive entries, encoded once whoever they are written to. */
export function encodeFrames(incarnation: string, entries: readonly LogEntry[]): Frame[] {
  return entries.map((entry) => ({
    seq: entry.seq,
    text: encodeSseEvent(formatCursor(incarnation, entry.seq), entry.event),
    isEnd: entry.event.type === "end",
  }));
}

/** One write's worth of frames. */
export function joinFrames(frames: readonly Frame[]): string {
  return frames.map((frame) => frame.text).join("");
}
