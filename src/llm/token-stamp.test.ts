import { describe, expect, it } from "vitest";
import { formatTokenStamp, monotonicMicros, parseTokenStamps } from "./token-stamp.ts";

describe("token stamps", () => {
  it("round-trips stamps through text split at any point", () => {
    const text = `${formatTokenStamp(12)}Hello ${formatTokenStamp(15)}world.${formatTokenStamp(99)}`;
    expect(parseTokenStamps(text)).toEqual([
      { emittedAtMicros: 12, word: "Hello" },
      { emittedAtMicros: 15, word: "world." },
      { emittedAtMicros: 99, word: "" },
    ]);
    expect(parseTokenStamps("no stamps here")).toEqual([]);
  });

  it("reads a monotonic clock in microseconds", () => {
    const first = monotonicMicros();
    const second = monotonicMicros();
    expect(Number.isSafeInteger(first)).toBe(true);
    expect(second).toBeGreaterThanOrEqual(first);
  });
});
