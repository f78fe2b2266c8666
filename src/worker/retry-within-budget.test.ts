import { describe, expect, it } from "vitest";
import { createManualClock } from "../time/manual-clock.ts";
import { retryDatabase, retryWithinBudget } from "./retry-within-budget.ts";

/** A connection error as pg raises it when PostgreSQL is down: no SQLSTATE. */
const connectionLost = (): Error => new Error("Connection terminated unexpectedly");

/** A manual clock whose timers fire at once, recording each wait. */
function fakeTime() {
  const manual = createManualClock(0, { autoAdvance: true });
  const sleeps: number[] = [];
  const clock: typeof manual = { ...manual, setTimeout: (callback, delayMs) => { sleeps.push(delayMs); return manual.setTimeout(callback, delayMs); } };
  return { clock, sleeps };
}

describe("retryWithinBudget", () => {
  it("stops retrying once its signal is aborted, with the last error", async () => {
    const time = fakeTime();
    const shutdown = new AbortController();
    let calls = 0;
    const attempt = retryWithinBudget(() => {
      calls += 1;
      if (calls === 2) shutdown.abort();
      return Promise.reject(new Error(`refused ${calls}`));
    }, { budgetMs: 60_000, baseDelayMs: 200, maxDelayMs: 2_000, retryable: () => true, signal: shutdown.signal, clock: time.clock });
    await expect(attempt).rejects.toThrow("refused 2");
    expect(calls).toBe(2);
  });
});

describe("retryDatabase", () => {
  it("retries while PostgreSQL is unavailable, with capped backoff, until it answers", async () => {
    const time = fakeTime();
    let calls = 0;
    const result = await retryDatabase(() => {
      calls += 1;
      return calls < 8 ? Promise.reject(connectionLost()) : Promise.resolve("saved");
    }, { budgetMs: 60_000, baseDelayMs: 200, maxDelayMs: 2_000, clock: time.clock });
    expect(result).toBe("saved");
    expect(time.sleeps).toEqual([200, 400, 800, 1_600, 2_000, 2_000, 2_000]);
  });

  it("gives up when the next wait would pass the budget, with the last error", async () => {
    const time = fakeTime();
    const attempt = retryDatabase(() => Promise.reject(connectionLost()), { budgetMs: 10_000, baseDelayMs: 200, maxDelayMs: 2_000, clock: time.clock });
    await expect(attempt).rejects.toThrow("Connection terminated");
    expect(time.sleeps.reduce((sum, ms) => sum + ms, 0)).toBeLessThanOrEqual(10_000);
    expect(time.sleeps.reduce((sum, ms) => sum + ms, 0)).toBeGreaterThan(8_000);
  });

  it("does not retry an error with a SQLSTATE that is not about availability (a bug or a constraint)", async () => {
    const time = fakeTime();
    let calls = 0;
    const attempt = retryDatabase(() => {
      calls += 1;
      return Promise.reject(Object.assign(new Error("duplicate key"), { code: "23505" }));
    }, { budgetMs: 60_000, baseDelayMs: 200, maxDelayMs: 2_000, clock: time.clock });
    await expect(attempt).rejects.toThrow("duplicate key");
    expect(calls).toBe(1);
  });
});
