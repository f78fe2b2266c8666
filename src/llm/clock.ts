import type { Clock } from "../time/clock.ts";

export { systemClock, type Clock } from "../time/clock.ts";

/**
 * Resolves after `delayMs` on `clock`, or rejects with the signal's reason as
 * soon as `signal` aborts; the timer is always released.
 */
export function sleep(clock: Clock, delayMs: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(handle);
      reject(signal.reason as Error);
    };
    const handle = clock.setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, delayMs)); // a deadline just passed (float rounding) is "now", not a negative-delay warning
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
