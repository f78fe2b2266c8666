import type { Clock } from "../../../src/streaming/clock.ts";

export interface ManualClock extends Clock {
  /** Moves time forward, firing due timers in order (each sees `now()` at its due time). */
  advance(milliseconds: number): void;
  pendingTimers(): number;
}

/** A deterministic clock: time only moves when the test says so. */
export function createManualClock(start = 0): ManualClock {
  let now = start;
  let nextId = 1;
  const timers = new Map<number, { dueAt: number; callback: () => void }>();
  return {
    now: () => now,
    setTimeout(callback, delayMs) {
      const id = nextId++;
      timers.set(id, { dueAt: now + Math.max(0, delayMs), callback });
      return id;
    },
    clearTimeout(handle) {
      timers.delete(handle as number);
    },
    advance(milliseconds) {
      const target = now + milliseconds;
      for (;;) {
        let dueId: number | undefined;
        let dueAt = Number.POSITIVE_INFINITY;
        for (const [id, timer] of timers) {
          if (timer.dueAt <= target && timer.dueAt < dueAt) {
            dueAt = timer.dueAt;
            dueId = id;
          }
        }
        if (dueId === undefined) break;
        const timer = timers.get(dueId);
        timers.delete(dueId);
        now = dueAt;
        timer?.callback();
      }
      now = target;
    },
    pendingTimers: () => timers.size,
  };
}
