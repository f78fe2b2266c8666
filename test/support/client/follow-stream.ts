/**
 * A client that reads one Sluice stream to its `end` across any number of
 * connections and API processes, the way PROTOCOL.md 5 asks: after a
 * connection closes without `end` it waits for the server's `retry:` hint
 * (capped, so tests stay short) and reconnects with Last-Event-ID to whichever
 * API `pickApi` names. Every complete event and every connection is recorded.
 */
import { readStreamOnce, type RecordedEvent } from "./stream-recorder.ts";

/** Judge what a client received with `analyseTask(taskId, events)` (stream-recorder.ts). */
export type ClientEvent = RecordedEvent;

export interface ConnectionRecord {
  url: string;
  /** HTTP status, 0 when the connection was refused or failed before an answer. */
  status: number;
  /**
   * `retry:` lines this connection received, with how many events had arrived before each:
   * the server sends one when the stream opens (afterEvents 0) and one when it closes the
   * stream on shutdown or for a slow consumer (PROTOCOL.md 5).
   */
  retries: Array<{ ms: number; afterEvents: number }>;
  events: number;
  ended: boolean;
  /** "closed": the server closed it; "aborted": the client switched; "error": a network error. */
  finish: "closed" | "aborted" | "idle" | "error";
}

export interface FollowedStream {
  readonly taskId: string;
  readonly events: ClientEvent[];
  readonly connections: ConnectionRecord[];
  /** Resolves after `end`; rejects past the deadline or on an unexpected status. */
  readonly done: Promise<void>;
  /** Resolves once `predicate` holds for the events so far; rejects if the stream finishes first. */
  until(predicate: (events: readonly ClientEvent[]) => boolean, what: string): Promise<void>;
  /** Drops the current connection; the client resumes at once on `pickApi(next connection)`. */
  switchNow(): void;
}

export interface FollowOptions {
  taskId: string;
  token: string;
  /** The API base URL for connection n; undefined = none available yet (try again shortly). */
  pickApi: (connection: number) => string | undefined;
  /** Upper bound of the wait after a server close, in ms (the server's hint is used when smaller). */
  retryCapMs?: number;
  deadlineMs?: number;
}

export function followStream(options: FollowOptions): FollowedStream {
  const events: ClientEvent[] = [];
  const connections: ConnectionRecord[] = [];
  const waiters: Array<{ predicate: (events: readonly ClientEvent[]) => boolean; resolve: () => void }> = [];
  let current: AbortController | undefined;
  let cursor: string | undefined;
  let ended = false;
  const notify = (): void => {
    for (const waiter of [...waiters]) {
      if (waiter.predicate(events)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  };

  const readOnce = async (connection: number, url: string): Promise<ConnectionRecord> => {
    const record: ConnectionRecord = { url, status: 0, retries: [], events: 0, ended: false, finish: "closed" };
    connections.push(record);
    const controller = new AbortController();
    current = controller;
    try {
      const read = await readStreamOnce(
        `${url}/api/stream/${encodeURIComponent(options.taskId)}`,
        options.taskId,
        connection,
        { authorization: `Bearer ${options.token}` },
        { lastEventId: cursor, signal: controller.signal, onRetry: (ms, afterEvents) => record.retries.push({ ms, afterEvents }) },
        (event) => {
          events.push(event);
          record.events += 1;
          if (event.cursor !== undefined) cursor = event.cursor;
          notify();
        },
      );
      record.status = read.status;
      record.ended = read.ended;
      record.finish = read.finish;
    } finally {
      current = undefined;
    }
    return record;
  };

  const run = async (): Promise<void> => {
    const deadline = Date.now() + (options.deadlineMs ?? 60_000);
    const retryCapMs = options.retryCapMs ?? 250;
    for (let connection = 0; !ended; connection += 1) {
      if (Date.now() > deadline) throw new Error(`stream ${options.taskId} did not end in time; connections: ${JSON.stringify(connections)}`);
      const url = options.pickApi(connection);
      if (url === undefined) {
        await pause(50);
        continue;
      }
      const record = await readOnce(connection, url);
      if (record.ended) {
        ended = true;
        break;
      }
      if (record.status === 200) {
        if (record.finish !== "aborted") await pause(Math.min(record.retries.at(-1)?.ms ?? retryCapMs, retryCapMs));
      } else if (record.status === 0 || record.status === 503) {
        await pause(50);
      } else {
        throw new Error(`stream ${options.taskId}: unexpected status ${record.status} from ${url}`);
      }
    }
  };
  const done = run();
  // Callers await `done`; this only keeps a rejection nobody awaited yet from crashing the run.
  void done.catch(() => undefined);

  return {
    taskId: options.taskId,
    events,
    connections,
    done,
    switchNow: () => current?.abort(),
    until: (predicate, what) =>
      new Promise<void>((resolve, reject) => {
        if (predicate(events)) return resolve();
        waiters.push({ predicate, resolve });
        done.then(
          () => {
            if (!predicate(events)) reject(new Error(`stream ${options.taskId} ended before ${what}: ${JSON.stringify(events.map((event) => event.type))}`));
          },
          (error: unknown) => reject(error instanceof Error ? error : new Error(String(error))),
        );
      }),
  };
}

/** The `retry:` hint a server sent while closing the connection mid-stream (after events), if any. */
export function closingHint(record: ConnectionRecord): number | undefined {
  return record.events > 0 ? record.retries.find((retry) => retry.afterEvents === record.events)?.ms : undefined;
}

function pause(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}
