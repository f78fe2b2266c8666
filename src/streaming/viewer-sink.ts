/** Where a viewer's bytes go: an HTTP response in production (serve-sse.ts), an array in tests. */
export interface ViewerSink {
  /** Writes SSE text; false means the transport buffer is full: call `resume()` on drain. */
  write(text: string): boolean;
  /** Writes the optional text, then closes the transport. */
  end(text?: string): void;
}

export interface HubViewer {
  /** Begins the replay from the cursor, then live delivery. Call once, after the response headers are out. */
  start(): void;
  /** The transport drained after `write` returned false. */
  resume(): void;
  /** The client went away: release everything. Idempotent; safe at any moment. */
  close(): void;
}
