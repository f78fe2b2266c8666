import { describe, expect, it } from "vitest";
import { createManualClock } from "../time/manual-clock.ts";
import { createLoadAdaptiveWindow } from "./load-adaptive-window.ts";

describe("the load-adaptive coalescing window", () => {
  it("doubles while the loop falls behind, up to the budget, and halves back to the base when it keeps up", () => {
    const clock = createManualClock();
    const delays = [40, 40, 40, 40, 40, 15, 2, 2, 2, 2, 2];
    const seen: number[] = [];
    const window = createLoadAdaptiveWindow({ baseMs: 16, maxMs: 100, loopDelayMs: () => delays.shift() ?? 0, clock, periodMs: 500 });
    for (let period = 0; period < 11; period += 1) {
      clock.advance(500);
      seen.push(window.current());
    }
    expect(seen).toEqual([32, 64, 100, 100, 100, 100, 50, 25, 16, 16, 16]);
    window.stop();
    expect(clock.pendingTimers()).toBe(0);
  });

  it("stays at the base and runs no timer when the budget is no wider than the base", () => {
    const clock = createManualClock();
    const window = createLoadAdaptiveWindow({ baseMs: 16, maxMs: 16, loopDelayMs: () => 500, clock });
    expect(clock.pendingTimers()).toBe(0);
    expect(window.current()).toBe(16);
  });
});
