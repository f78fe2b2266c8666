import type { Clock } from "./clock.ts";

/** A clock for tests: time moves only when `advance` is called. */
export interface ManualClock extends Clock {
  /** Moves time forward, firing due timers in order. */
  advance(durationMs: number): void;
  /** Number of timers waiting to fire. */
  pendingTimers(): number;
  /** Resolves once at least `count` timers are pending (polled on the microtask queue). */
  waitForTimers(count?: number): Promise<void>;
}

interface PendingTimer {
  id: number;
  dueAt: number;
  callback: () => void;
}

export function createManualClock(startMs = 0): ManualClock {
  let nowMs = startMs;
  let nextId = 1;
  const timers = new Map<number, PendingTimer>();
  const clock: ManualClock = {
    now: () => nowMs,
    setTimeout(callback, delayMs) {
      const id = nextId++;
      timers.set(id, { id, dueAt: nowMs + Math.max(0, delayMs), callback });
      return id;
    },
    clearTimeout(handle) {
      timers.delete(handle as number);
    },
    advance(durationMs) {
      const target = nowMs + durationMs;
      for (;;) {
        let due: PendingTimer | undefined;
        for (const timer of timers.values()) {
          if (timer.dueAt <= target && (!due || timer.dueAt < due.dueAt)) due = timer;
        }
        if (!due) break;
        timers.delete(due.id);
        nowMs = Math.max(nowMs, due.dueAt);
        due.callback();
      }
      nowMs = target;
    },
    pendingTimers: () => timers.size,
    async waitForTimers(count = 1) {
      // Bounded: the awaited code sets its timer within a few microtask hops or never.
      for (let hop = 0; hop < 10_000; hop++) {
        if (timers.size >= count) return;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      throw new Error(`expected ${count} pending timer(s), have ${timers.size}`);
    },
  };
  return clock;
}
