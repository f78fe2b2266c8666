/**
 * What the PROTOCOL.md conformance suite needs from a server under test. A second
 * implementation runs the suite by providing one of these (see
 * `describeConformance`); the suite itself speaks only HTTP to it.
 */

/** The terminal outcome a stream ends with (PROTOCOL.md 3.1), as the `end` event carries it. */
export interface StreamEndOutcome {
  status: "completed" | "cancelled" | "failed";
  error?: { code: string; message: string };
  messageId?: string;
}

/** Where one stream is read and who may read it (PROTOCOL.md 2.1, 7). */
export interface StreamEndpoint {
  /** The server's origin, e.g. `http://127.0.0.1:8080`; the protocol's paths (`/api/stream/:taskId`) hang off it. */
  readonly baseUrl: string;
  readonly taskId: string;
  /** Headers that authenticate the stream's owner: `Authorization: Bearer <access token>`. */
  readonly authHeaders: Readonly<Record<string, string>>;
  /** A read token for `?token=` that grants reading this stream only (for EventSource). */
  readonly readToken: string;
  /** Headers of another signed-in user of the same server, to whom this stream is foreign (404). */
  readonly strangerHeaders: Readonly<Record<string, string>>;
}

/**
 * A stream whose events the test writes, so it controls the log precisely.
 * Nothing else writes to it: the server knows the task (queued, no event yet)
 * and serves it through its real route; the test plays the generation.
 */
export interface ScriptedStream extends StreamEndpoint {
  /** The generation starts: `start` (attempt 1), with `model` when given. */
  begin(model?: string): Promise<void>;
  /** One `text-delta` event per argument, in order. */
  text(...deltas: string[]): Promise<void>;
  /** The generation is over, saved as the server would save it, and the log ends with `end`. */
  end(outcome: StreamEndOutcome): Promise<void>;
  /** A new attempt of the generation (a retry after a failure): `reset` with reason `retry` (PROTOCOL.md 4.3). */
  retry(): Promise<void>;
  /** The server loses the log (Redis restarted without persistence) while the generation is unfinished. */
  loseLog(): Promise<void>;
  /** The log of a finished stream expires (PROTOCOL.md 6). */
  expireLog(): Promise<void>;
}

export interface ConformanceTarget {
  /** The range the `retry:` delay must fall in, jitter included (PROTOCOL.md 2.2, 6). */
  readonly retryRangeMs: readonly [number, number];
  /** The server's heartbeat interval; the suite expects two `: ping` comments within 20 of them. */
  readonly heartbeatMs: number;
  /** The server's open-streams limit per user (PROTOCOL.md 6); the suite opens this many and expects 429 on the next. */
  readonly openStreamsPerUser: number;
  /** A new queued stream, owned by a user of its own (so limits of one test never reach another). */
  createStream(): Promise<ScriptedStream>;
  /**
   * A generation the server runs by itself (its model, or a simulated one), producing
   * text for at least several seconds after its first delta, so it can be cancelled
   * (PROTOCOL.md 7). Owned by a user of its own.
   */
  startGeneration(): Promise<StreamEndpoint>;
}

/** Starts a target and stops it when the suite is done. */
export type StartConformanceTarget = () => Promise<{ target: ConformanceTarget; stop(): Promise<void> }>;
