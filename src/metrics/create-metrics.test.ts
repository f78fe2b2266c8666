import { describe, expect, it } from "vitest";
import { createMetrics } from "./create-metrics.ts";

describe("Sluice metrics", () => {
  it("reports scrape-time sources from the scrape itself: the first scrape is not empty", async () => {
    const metrics = createMetrics();
    let stalled = 1;
    metrics.addScrapeSources({
      hubStats: () => ({ streams: 3, viewers: 5 }),
      queueCounts: () => Promise.resolve({ waiting: 2, active: 4, stalled }),
    });
    const first = await metrics.registry.metrics();
    expect(first).toContain('sluice_queue_jobs{state="stalled"} 1');
    expect(first).toContain('sluice_queue_jobs{state="active"} 4');
    expect(first).toContain("sluice_streams_active 3");
    expect(first).toContain("sluice_scrape_sources_ok 1");
    stalled = 0;
    expect(await metrics.registry.metrics()).toContain('sluice_queue_jobs{state="stalled"} 0');
  });

  it("says when a source failed during the scrape", async () => {
    const metrics = createMetrics();
    metrics.addScrapeSources({ queueCounts: () => Promise.reject(new Error("Redis down")) });
    expect(await metrics.registry.metrics()).toContain("sluice_scrape_sources_ok 0");
  });

  it("puts flush-to-SSE latencies (ms from the hub) into the histogram in seconds", async () => {
    const metrics = createMetrics();
    metrics.stream.flushToSse?.(0.2);
    metrics.stream.flushToSse?.(2);
    const text = await metrics.registry.metrics();
    expect(text).toContain('sluice_flush_to_sse_seconds_bucket{le="0.00025"} 1');
    expect(text).toContain('sluice_flush_to_sse_seconds_bucket{le="0.0025"} 2');
    expect(text).toContain("sluice_flush_to_sse_seconds_count 2");
  });
});
