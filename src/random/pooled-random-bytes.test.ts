import { describe, expect, it } from "vitest";
import { pooledRandomBytes } from "./pooled-random-bytes.ts";

describe("pooled random bytes", () => {
  it("hands out each byte once: ids drawn across several refills of the pool are all distinct and of the asked size", () => {
    // 2,000 × 16 bytes crosses the 4 KiB pool's refill several times, at offsets that do not divide it.
    const sizes = [16, 9, 6, 16, 7];
    const ids = Array.from({ length: 2_000 }, (_, index) => pooledRandomBytes(sizes[index % sizes.length] ?? 16));
    expect(ids.every((bytes, index) => bytes.length === sizes[index % sizes.length])).toBe(true);
    const hex = ids.map((bytes) => bytes.toString("hex"));
    expect(new Set(hex).size).toBe(hex.length);
  });

  it("serves a size larger than the pool directly", () => {
    expect(pooledRandomBytes(10_000).length).toBe(10_000);
  });
});
