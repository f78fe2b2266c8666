import { SluiceError, isSluiceError } from "../errors/catalog.ts";
import { systemClock, type Clock } from "../time/clock.ts";
import type { ContentEvent, EndOutcome } from "./events.ts";
import type { EndResult, StreamLog } from "./stream-log.ts";

/** docs/decisions/2026-11-25-coalescing-window.md: one frame at 60 Hz. */
export const defaultCoalesceWindowMs = 16;
/** A text event is cut at this size even inside a window; keep it well under the log's maxEventBytes. */
export const defaultCoalesceMaxBytes = 4096;

export interface StreamWriterOptions {
  log: Pick<StreamLog, "append" | "end">;
  taskId: string;
  /** The attempt returned by `log.beginAttempt`: every append is fenced by it. */
  attempt: number;
  /**
   * The seq of the attempt's start/reset entry (`beginAttempt(...).seq`). With it
   * every append names the seq it expects to write, so a retried append (a reply
   * lost on a broken connection) is recognised and never duplicates text.
   */
  startSeq?: number;
  clock?: Clock;
  /** A number, or the current window of a load-adaptive policy (load-adaptive-window.ts), read at each decision. */
  coalesceWindowMs?: number | (() => number);
  coalesceMaxBytes?: number;
}

export interface StreamWriter {
  /** Buffers a text delta; never waits. Throws the SluiceError of an earlier rejected append. */
  appendText(delta: string): void;
  appendReasoning(delta: string): void;
  /** A non-text event (usage): flushes pending text first, then it, at once. */
  append(event: ContentEvent): void;
  /** Resolves once everything buffered so far is in the log; rejects with the append's SluiceError. */
  flush(): Promise<void>;
  /**
   * Flushes, then appends the one `end`. After a rejected append (text was lost)
   * a "completed" end is refused with that error; "failed" or "cancelled" is
   * still written (the end entry is allowed past the caps). STALE_ATTEMPT stays fatal.
   */
  end(outcome: EndOutcome): Promise<EndResult>;
  /**
   * With `startSeq`: the seq of the last entry in the log once everything appended so far is
   * flushed (the attempt's start entry before any append); undefined without `startSeq`. Fenced
   * appends make it the log's own last seq, so the final save needs no read of the log's meta.
   */
  readonly lastSeq: number | undefined;
  /** Aborted with the SluiceError when an append is rejected: pass it to the provider call to stop generating. */
  readonly signal: AbortSignal;
  readonly failure: SluiceError | undefined;
}

type DeltaType = "text-delta" | "reasoning-delta";

/**
 * Coalesces deltas into log appends (docs/decisions/2026-11-25-coalescing-window.md).
 * Leading edge: a delta that arrives when no flush started within the last
 * window goes out at once, so the first token is never delayed; later ones wait
 * for the window's end or until `coalesceMaxBytes` are pending. At most one
 * append is in flight; text arriving meanwhile joins the next one.
 *
 * @example
 * const writer = createStreamWriter({ log, taskId, attempt });
 * for await (const token of completion) writer.appendText(token);
 * await writer.end({ status: "completed", messageId });
 */
export function createStreamWriter(options: StreamWriterOptions): StreamWriter {
  const { log, taskId, attempt } = options;
  let nextSeq = options.startSeq === undefined ? undefined : options.startSeq + 1;
  const clock = options.clock ?? systemClock;
  const window = options.coalesceWindowMs ?? defaultCoalesceWindowMs;
  const windowMs = typeof window === "number" ? () => window : window;
  const maxBytes = options.coalesceMaxBytes ?? defaultCoalesceMaxBytes;
  const abort = new AbortController();

  let pending: ContentEvent[] = [];
  let pendingBytes = 0;
  let lastDeltaBytes = 0;
  let flushNow = false;
  let lastFlushAt = Number.NEGATIVE_INFINITY;
  let timer: { handle: unknown } | undefined;
  let inFlight: Promise<void> | undefined;
  let failure: SluiceError | undefined;
  let ended = false;

  const cancelTimer = (): void => {
    if (timer) clock.clearTimeout(timer.handle);
    timer = undefined;
  };

  const fail = (error: unknown): void => {
    failure = isSluiceError(error) ? error : new SluiceError("SERVICE_UNAVAILABLE", "The stream log could not be written.", { cause: error });
    pending = [];
    pendingBytes = 0;
    cancelTimer();
    abort.abort(failure);
  };

  const startFlush = (now: number): void => {
    const batch = pending;
    pending = [];
    pendingBytes = 0;
    lastDeltaBytes = 0;
    flushNow = false;
    lastFlushAt = now;
    // Never rejects: a failure is recorded and surfaces on the next call.
    inFlight = log.append(taskId, attempt, batch, nextSeq).then(
      (result) => {
        inFlight = undefined;
        if (nextSeq !== undefined) nextSeq = result.lastSeq + 1;
        kick();
      },
      (error: unknown) => {
        inFlight = undefined;
        fail(error);
      },
    );
  };

  function kick(): void {
    if (inFlight !== undefined || failure !== undefined || pending.length === 0) return;
    const now = clock.monotonicMs();
    const dueAt = lastFlushAt + windowMs();
    if (flushNow || pendingBytes >= maxBytes || now >= dueAt) {
      cancelTimer();
      startFlush(now);
    } else if (timer === undefined) {
      const scheduled = { handle: undefined as unknown };
      scheduled.handle = clock.setTimeout(() => {
        if (timer === scheduled) timer = undefined;
        kick();
      }, dueAt - now);
      timer = scheduled;
    }
  }

  const assertWritable = (): void => {
    if (ended) throw new Error("the stream writer has ended");
    if (failure) throw failure;
  };

  const addDelta = (type: DeltaType, delta: string): void => {
    assertWritable();
    if (delta === "") return;
    const bytes = Buffer.byteLength(delta);
    const last = pending.at(-1);
    // Merge into the previous delta of the same kind, but cut at maxBytes so no
    // coalesced event grows past what one delta would have been.
    if (last?.type === type && lastDeltaBytes + bytes <= maxBytes) {
      last.delta += delta;
      lastDeltaBytes += bytes;
    } else {
      pending.push({ type, delta });
      lastDeltaBytes = bytes;
    }
    pendingBytes += bytes;
    kick();
  };

  const flush = async (): Promise<void> => {
    for (;;) {
      if (failure) throw failure;
      if (inFlight === undefined && pending.length === 0) return;
      if (pending.length > 0) {
        flushNow = true;
        kick();
      }
      await inFlight;
    }
  };

  return {
    appendText: (delta) => addDelta("text-delta", delta),
    appendReasoning: (delta) => addDelta("reasoning-delta", delta),
    append(event) {
      assertWritable();
      pending.push({ ...event });
      lastDeltaBytes = Number.POSITIVE_INFINITY;
      flushNow = true;
      kick();
    },
    flush,
    async end(outcome) {
      if (ended) throw new Error("the stream writer has ended");
      try {
        await flush();
      } catch (error) {
        if (failure === undefined) throw error;
      }
      if (failure && (failure.code === "STALE_ATTEMPT" || outcome.status === "completed")) throw failure;
      cancelTimer();
      const result = await log.end(taskId, attempt, outcome);
      ended = true;
      return result;
    },
    signal: abort.signal,
    get lastSeq() {
      return nextSeq === undefined ? undefined : nextSeq - 1;
    },
    get failure() {
      return failure;
    },
  };
}
