import type { Clock } from "./clock.ts";

/** The one clock for tests: time moves only when `advance` is called (or, with `autoAdvance`, when a timer waits). */
export interface ManualClock extends Clock {
  /** Moves time forward, firing due timers in order (each sees `monotonicMs()` at its due time). */
  advance(durationMs: number): void;
  /** Number of timers waiting to fire. */
  pendingTimers(): number;
  /** Resolves once at least `count` timers are pending (polled on the macrotask queue). */
  waitForTimers(count?: number): Promise<void>;
}

export interface ManualClockOptions {
  /** `wallClockMs()` at `startMs`; the wall clock moves with the monotonic one (default: `startMs`). */
  wallClockStartMs?: number;
  /**
   * Each timer fires on the next microtask, time jumping to its due time: for code that
   * waits in a loop (retry backoff) where the test only checks how long it waited.
   */
  autoAdvance?: boolean;
}

interface PendingTimer {
  id: number;
  dueAt: number;
  callback: () => void;
}

/** @example const clock = createManualClock(); startHeartbeat(clock); clock.advance(15_000); */
export function createManualClock(startMs = 0, options: ManualClockOptions = {}): ManualClock {
  const wallClockOffsetMs = (options.wallClockStartMs ?? startMs) - startMs;
  let nowMs = startMs;
  let nextId = 1;
  const timers = new Map<number, PendingTimer>();
  const clock: ManualClock = {
    monotonicMs: () => nowMs,
    wallClockMs: () => nowMs + wallClockOffsetMs,
    setTimeout(callback, delayMs) {
      const id = nextId++;
      const dueAt = nowMs + Math.max(0, delayMs);
      timers.set(id, { id, dueAt, callback });
      if (options.autoAdvance === true) {
        queueMicrotask(() => {
          if (timers.has(id)) clock.advance(Math.max(0, dueAt - nowMs));
        });
      }
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
      // Bounded: the awaited code sets its timer within a few hops or never.
      for (let hop = 0; hop < 10_000; hop++) {
        if (timers.size >= count) return;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      throw new Error(`expected ${count} pending timer(s), have ${timers.size}`);
    },
  };
  return clock;
}
