/**
 * Time, injected so coalescing windows, heartbeats, stall timers and provider
 * pacing are testable without waiting. Shared by src/streaming and src/llm,
 * which must not import each other.
 */
export interface Clock {
  /** Milliseconds on a monotonic scale (only differences matter). */
  now(): number;
  setTimeout(callback: () => void, delayMs: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * Wall-clock milliseconds since the epoch with sub-millisecond precision, for
 * comparing instants across processes (the flush-to-SSE latency); same host or NTP.
 */
export const wallClockMs = (): number => performance.timeOrigin + performance.now();

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};
