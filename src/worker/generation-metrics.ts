/** The worker's counters (src/metrics); optional so tests can leave them out. */
export interface GenerationMetrics {
  providerTimeToFirstToken: { observe(seconds: number): void };
  chunksWritten: { inc(value?: number): void };
  bytesWritten: { inc(value?: number): void };
  generations: { inc(labels: { status: string }): void };
  /** Jobs whose lock expired, found by this worker's stalled check. */
  jobsStalled?: { inc(): void };
  /** History left out of an attempt's prompt to fit the context budget (fit-context.ts). */
  contextTurnsLeftOut?: { inc(value?: number): void };
  contextTrimmed?: { inc(): void };
}
