import type { Clock } from "../time/clock.ts";

export interface LoadAdaptiveWindowOptions {
  /** The window when the process keeps up (COALESCE_WINDOW_MS). */
  baseMs: number;
  /** The widest window under load (COALESCE_MAX_WINDOW_MS): the latency budget a reader does not notice. */
  maxMs: number;
  /** The process's event-loop delay over the last period, p99 in ms; reset after each read. */
  loopDelayMs: () => number;
  clock: Clock;
  /** How often the window is reconsidered (ms). */
  periodMs?: number;
  /** Widen when the loop's p99 delay is above this (ms): the process is falling behind. */
  widenAboveMs?: number;
  /** Narrow when it is below this (ms): the process has room again. */
  narrowBelowMs?: number;
  onChange?: (windowMs: number) => void;
}

export interface LoadAdaptiveWindow {
  /** The coalescing window to use now (ms). */
  current(): number;
  stop(): void;
}

/**
 * A coalescing window that widens under load, within a latency budget
 * (issue 13). At 20 tokens/s a stream's tokens are 50 ms apart, so the 16 ms
 * window never merges two of them: every token costs an append, a notification
 * and a socket write per viewer. When the event loop falls behind, doubling the
 * window (up to `maxMs`) merges tokens and cuts those costs, which is what lets
 * the process catch up; when it has room again the window halves back to
 * `baseMs`, where the first token of a window still goes out at once.
 */
export function createLoadAdaptiveWindow(options: LoadAdaptiveWindowOptions): LoadAdaptiveWindow {
  const { baseMs, maxMs, clock } = options;
  const periodMs = options.periodMs ?? 500;
  const widenAboveMs = options.widenAboveMs ?? 25;
  const narrowBelowMs = options.narrowBelowMs ?? 8;
  let windowMs = baseMs;
  let handle: unknown;
  const reconsider = (): void => {
    const delayMs = options.loopDelayMs();
    const next = delayMs > widenAboveMs ? Math.min(maxMs, Math.max(1, windowMs) * 2) : delayMs < narrowBelowMs ? Math.max(baseMs, windowMs / 2) : windowMs;
    if (next !== windowMs) {
      windowMs = next;
      options.onChange?.(windowMs);
    }
    handle = clock.setTimeout(reconsider, periodMs);
  };
  if (maxMs > baseMs) handle = clock.setTimeout(reconsider, periodMs);
  return {
    current: () => windowMs,
    stop: () => {
      if (handle !== undefined) clock.clearTimeout(handle);
      handle = undefined;
    },
  };
}
