/** Why the hub read the log for a whole stream (PROTOCOL.md section 8, point 5). */
export type GapReason = "seq-gap" | "reconnect" | "stall" | "log-replaced";

export type SlowConsumerAction = "paused" | "resumed" | "closed";

/**
 * Counters and gauges of the fan-out, so the integrator can plug prom-client in.
 * Every method is called synchronously on the hot path: keep them cheap.
 */
export interface StreamMetrics {
  /** A viewer was attached (+1) or released (-1): a gauge of open viewers. */
  viewers(delta: 1 | -1): void;
  /** Entries sent to one viewer from the log rather than live (late join, resume, catch-up). */
  replayed(entries: number): void;
  /** A viewer joined with a cursor. */
  resumed(): void;
  /** A whole-stream log read that found `entries` entries the notifications had not delivered. */
  gapRecovered(reason: GapReason, entries: number): void;
  slowConsumer(action: SlowConsumerAction): void;
  /** Time from a notification reaching the hub to its frames being written to every live viewer (ms). */
  deliveryLatency(milliseconds: number): void;
  /**
   * Writer's flush stamp to the live SSE write of those entries, across processes (ms).
   * Wall clocks of writer and reader must agree (same host or NTP).
   */
  flushToSse(milliseconds: number): void;
}

export const noopStreamMetrics: StreamMetrics = {
  viewers: () => undefined,
  replayed: () => undefined,
  resumed: () => undefined,
  gapRecovered: () => undefined,
  slowConsumer: () => undefined,
  deliveryLatency: () => undefined,
  flushToSse: () => undefined,
};
