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
    }, delayMs);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
