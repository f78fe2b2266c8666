import type { Clock } from "../time/clock.ts";

export interface TimerHandle {
  handle: unknown;
}

export interface CountedTimers {
  set(callback: () => void, delayMs: number): TimerHandle;
  /** Safe on undefined and on a timer that already fired. */
  clear(timer: TimerHandle | undefined): void;
  /** Timers neither fired nor cleared: tests prove with it that nothing is left behind. */
  count(): number;
}

export function createCountedTimers(clock: Clock): CountedTimers {
  let count = 0;
  return {
    set(callback, delayMs) {
      const timer: TimerHandle = { handle: undefined };
      count += 1;
      timer.handle = clock.setTimeout(() => {
        count -= 1;
        timer.handle = undefined;
        callback();
      }, delayMs);
      return timer;
    },
    clear(timer) {
      if (timer?.handle === undefined) return;
      clock.clearTimeout(timer.handle);
      timer.handle = undefined;
      count -= 1;
    },
    count: () => count,
  };
}
