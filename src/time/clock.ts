/**
 * Time, injected so coalescing windows, heartbeats, stall timers, provider
 * pacing, backoff and background loops are testable without waiting: the one
 * time module (tests use `createManualClock` from ./manual-clock.ts). Shared by
 * src/streaming, src/llm and the worker, which must not import each other.
 *
 * Two scales, never mixed: `monotonicMs` for durations, deadlines and timers in
 * one process; `wallClockMs` for instants stored or compared across processes
 * (token expiry, database timestamps, lease scores, the flush-to-SSE latency).
 */
export interface Clock {
  /** Milliseconds on a monotonic scale (only differences matter; never goes back). */
  monotonicMs(): number;
  /** Milliseconds since the Unix epoch, with sub-millisecond precision; same host or NTP. */
  wallClockMs(): number;
  setTimeout(callback: () => void, delayMs: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  monotonicMs: () => performance.now(),
  wallClockMs: () => performance.timeOrigin + performance.now(),
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Resolves after `delayMs` on `clock`, or rejects with the signal's reason as
 * soon as `signal` aborts; the timer is always released.
 *
 * @example await sleep(clock, 250, signal).catch(() => undefined); // woken early by an abort
 */
export function sleep(clock: Clock, delayMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(handle);
      reject(signal?.reason as Error);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, delayMs)); // a deadline just passed (float rounding) is "now", not a negative-delay warning
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Calls `callback` every `intervalMs` on `clock` until the returned `stop` is
 * called (the background loops: cancel-marker checks, the orphan sweep, lease
 * renewal). The next period is timed from the call, like `setInterval`.
 * A system timer here never keeps the process alive: its owner stops it, and an
 * idle process may exit.
 */
export function repeatEvery(clock: Clock, intervalMs: number, callback: () => void): () => void {
  let stopped = false;
  let handle: unknown;
  const arm = (): void => {
    handle = clock.setTimeout(() => {
      if (stopped) return;
      arm();
      callback();
    }, intervalMs);
    unrefTimer(handle);
  };
  arm();
  return () => {
    stopped = true;
    clock.clearTimeout(handle);
  };
}

/** Lets the process exit while the timer `handle` (from `clock.setTimeout`) waits; a manual clock's numeric handle has nothing to release. */
export function unrefTimer(handle: unknown): void {
  if (typeof handle === "object" && handle !== null && "unref" in handle) (handle as NodeJS.Timeout).unref();
}
