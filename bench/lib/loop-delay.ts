import type { monitorEventLoopDelay } from "node:perf_hooks";

// No imports beyond types: bench/probes/event-loop-delay.ts, preloaded into Sluice's processes, uses this.

/** Event-loop delay of one process over one step: how late a 5 ms timer fired (monitorEventLoopDelay minus its interval). */
export interface EventLoopDelay {
  samples: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

/**
 * A `monitorEventLoopDelay` histogram as an EventLoopDelay. The histogram records whole timer
 * intervals (an idle loop reads ~5.1 ms at a 5 ms resolution): the delay is what exceeds the interval.
 */
export function loopDelayOf(histogram: ReturnType<typeof monitorEventLoopDelay>, resolutionMs: number): EventLoopDelay {
  const toMs = (nanoseconds: number): number => Math.max(0, Math.round((nanoseconds / 1e6 - resolutionMs) * 100) / 100);
  return { samples: histogram.count, p50Ms: toMs(histogram.percentile(50)), p99Ms: toMs(histogram.percentile(99)), maxMs: toMs(histogram.max), meanMs: toMs(histogram.mean) };
}
