import { describe, expect, it } from "vitest";
import { repeatEvery, sleep } from "./clock.ts";
import { createManualClock } from "./manual-clock.ts";

describe("sleep", () => {
  it("resolves when the clock reaches the delay, and an abort rejects it at once and releases its timer", async () => {
    const clock = createManualClock();
    let slept = false;
    const done = sleep(clock, 100).then(() => (slept = true));
    clock.advance(99);
    await Promise.resolve();
    expect(slept).toBe(false);
    clock.advance(1);
    await done;
    const controller = new AbortController();
    const aborted = sleep(clock, 100, controller.signal);
    controller.abort(new Error("stop"));
    await expect(aborted).rejects.toThrow("stop");
    expect(clock.pendingTimers()).toBe(0);
  });
});

describe("repeatEvery", () => {
  it("calls back once per period until stopped, leaving no timer", () => {
    const clock = createManualClock();
    let calls = 0;
    const stop = repeatEvery(clock, 1_000, () => (calls += 1));
    clock.advance(3_500);
    expect(calls).toBe(3);
    stop();
    clock.advance(10_000);
    expect(calls).toBe(3);
    expect(clock.pendingTimers()).toBe(0);
  });
});

describe("createManualClock", () => {
  it("moves its wall clock with its monotonic clock, from its own start", () => {
    const clock = createManualClock(5, { wallClockStartMs: 1_700_000_000_000 });
    clock.advance(20);
    expect([clock.monotonicMs(), clock.wallClockMs()]).toEqual([25, 1_700_000_000_020]);
  });
});
