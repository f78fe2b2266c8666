/**
 * A client harness for fault tests: reads Sluice streams the way a careful
 * client does (resuming with Last-Event-ID after every drop), records every
 * complete event it received as `(task, connection, cursor, type, data)`, and
 * then judges each task: lost, duplicated and out-of-order entries (by the
 * `seq` part of the cursor, PROTOCOL.md 4.1), the number of `end` events, and
 * whether the text equals the expected text and the saved message.
 */
import { expect } from "vitest";
import { call, expectStatus, type ConversationJson, type MessageJson } from "./chat-api.ts";
import { parseCursor, readSseConnection } from "./read-sse.ts";

export interface RecordedEvent {
  taskId: string;
  /** Which connection (0, 1, ...) of this task delivered it. */
  connection: number;
  cursor: string | undefined;
  type: string;
  data: { type: string; [key: string]: unknown };
  /** Date.now() when the event was complete. */
  at: number;
}

export interface ReadOptions {
  /** Sent as the Last-Event-ID header; undefined = from the beginning. */
  lastEventId?: string | undefined;
  /** Abort the connection after this many complete events (a drop between events). */
  abortAfterEvents?: number;
  /** Abort after this many body bytes, possibly inside an event (a drop mid-frame). */
  abortAfterBytes?: number;
  signal?: AbortSignal;
  /** Abort when no byte arrived for this long (default: never). */
  idleTimeoutMs?: number;
  /** Called when the response headers arrived (a join is in place before any event). */
  onResponse?: (status: number) => void;
  /** Each `retry:` line, with how many events this connection had delivered before it. */
  onRetry?: (ms: number, afterEvents: number) => void;
}

export interface ReadResult {
  status: number;
  /** Error responses: the body. */
  body: string;
  headers: Headers;
  events: RecordedEvent[];
  /** The id of the last complete event on this connection, if any. */
  lastEventId: string | undefined;
  /** True when this connection delivered `end`. */
  ended: boolean;
  /** How the connection finished. */
  finish: "closed" | "aborted" | "idle" | "error";
}

export interface TaskReport {
  taskId: string;
  connections: number;
  /** Entries missing between 1 and the highest seq seen, per incarnation. */
  lost: number;
  /** Entries received more than once (same incarnation and seq). */
  duplicated: number;
  /** Entries that arrived after a higher seq of the same incarnation. */
  outOfOrder: number;
  ends: number;
  endStatus: string | undefined;
  /** Text after the last `reset` (PROTOCOL.md 3.2); for a client that started from a cursor, only what came after it. */
  text: string;
  resets: number;
}

export interface Session {
  baseUrl: string;
  token: string;
  userId: string;
}

export type SavedMessage = MessageJson;

/** Reads one SSE connection, recording complete events only; a partial frame at an abort is discarded, as a browser does. */
export async function readStreamOnce(
  url: string,
  taskId: string,
  connection: number,
  headers: Record<string, string>,
  options: ReadOptions = {},
  onEvent?: (event: RecordedEvent) => void,
): Promise<ReadResult> {
  const events: RecordedEvent[] = [];
  let lastEventId: string | undefined;
  let ended = false;
  const { abortAfterEvents, onRetry, ...connectionOptions } = options;
  const read = await readSseConnection(url, {
    ...connectionOptions,
    headers: { accept: "text/event-stream", ...headers },
    onMessage: (message) => {
      const data = JSON.parse(message.data) as RecordedEvent["data"];
      const event: RecordedEvent = { taskId, connection, cursor: message.id, type: message.event ?? data.type, data, at: Date.now() };
      events.push(event);
      onEvent?.(event);
      if (message.id !== undefined) lastEventId = message.id;
      if (data.type === "end") ended = true;
      // The events after it in the same chunk never reached this client.
      return abortAfterEvents !== undefined && events.length >= abortAfterEvents;
    },
    ...(onRetry ? { onRetry: (ms: number) => onRetry(ms, events.length) } : {}),
  });
  return { status: read.status, body: read.body, headers: read.headers, events, lastEventId, ended, finish: read.finish };
}

/** Judges the events one task delivered over all its connections. */
export function analyseTask(taskId: string, events: readonly RecordedEvent[], startAfter?: string): TaskReport {
  const own = events.filter((event) => event.taskId === taskId);
  const seen = new Map<string, Set<number>>();
  const highest = new Map<string, number>();
  // A client that started from a cursor already had everything up to it.
  const start = startAfter === undefined ? undefined : parseCursor(startAfter);
  if (start) {
    seen.set(start.incarnation, new Set(Array.from({ length: start.seq }, (_, index) => index + 1)));
    highest.set(start.incarnation, start.seq);
  }
  let duplicated = 0;
  let outOfOrder = 0;
  let ends = 0;
  let resets = 0;
  let endStatus: string | undefined;
  let text = "";
  for (const event of own) {
    if (event.type === "end") {
      ends += 1;
      endStatus = String(event.data.status);
    }
    if (event.type === "reset") {
      resets += 1;
      text = "";
    }
    if (event.type === "text-delta") text += String(event.data.delta);
    const cursor = event.cursor === undefined ? undefined : parseCursor(event.cursor);
    // seq 0 is the `log-replaced` reset's position marker, not an entry (PROTOCOL.md 4.3).
    if (!cursor || cursor.seq === 0) continue;
    const set = seen.get(cursor.incarnation) ?? new Set<number>();
    seen.set(cursor.incarnation, set);
    const top = highest.get(cursor.incarnation) ?? 0;
    if (set.has(cursor.seq)) duplicated += 1;
    else if (cursor.seq < top) outOfOrder += 1;
    set.add(cursor.seq);
    highest.set(cursor.incarnation, Math.max(top, cursor.seq));
  }
  let lost = 0;
  for (const [incarnation, set] of seen) lost += (highest.get(incarnation) ?? 0) - set.size;
  const connections = new Set(own.map((event) => event.connection)).size;
  return { taskId, connections, lost, duplicated, outOfOrder, ends, endStatus, text, resets };
}

/** The client got the whole reply once: nothing lost, repeated or reordered, one `end` (completed), and `expected` as its text. */
export function expectCompleteReply(report: TaskReport, expected: string, context: string): void {
  expect(report.lost, context).toBe(0);
  expect(report.duplicated, context).toBe(0);
  expect(report.outOfOrder, context).toBe(0);
  expect(report.ends, context).toBe(1);
  expect(report.endStatus, context).toBe("completed");
  expect(report.text, context).toBe(expected);
}

/** A recorder bound to one signed-in user of one Sluice API. */
export interface StreamRecorder {
  /** Every complete event of every connection, appended live as it arrives. */
  readonly events: RecordedEvent[];
  /** One connection for the task, recorded. */
  read(taskId: string, options?: ReadOptions): Promise<ReadResult>;
  /**
   * Reads the task to its `end`, reconnecting with the last complete event's id
   * after every connection that ends without `end` (drops, server closes).
   * `plan(n)` gives the options of connection n (abort points, delays before it).
   */
  follow(taskId: string, plan?: (connection: number) => Promise<ReadOptions> | ReadOptions, options?: { maxConnections?: number; deadlineMs?: number }): Promise<TaskReport>;
  report(taskId: string): TaskReport;
  /** GET /api/conversations/:id → the assistant message of this task. */
  savedMessage(conversationId: string, taskId: string): Promise<SavedMessage | undefined>;
}

export function createStreamRecorder(session: Session): StreamRecorder {
  const events: RecordedEvent[] = [];
  const connections = new Map<string, number>();
  const startCursors = new Map<string, string>();
  const headers = { authorization: `Bearer ${session.token}` };
  const read = async (taskId: string, options: ReadOptions = {}): Promise<ReadResult> => {
    const connection = connections.get(taskId) ?? 0;
    connections.set(taskId, connection + 1);
    if (connection === 0 && options.lastEventId !== undefined) startCursors.set(taskId, options.lastEventId);
    // Recorded as they arrive, so a test can act on what a client has seen so far.
    return await readStreamOnce(`${session.baseUrl}/api/stream/${encodeURIComponent(taskId)}`, taskId, connection, headers, options, (event) => events.push(event));
  };
  return {
    events,
    read,
    follow: async (taskId, plan, options = {}) => {
      const deadline = Date.now() + (options.deadlineMs ?? 60_000);
      let cursor: string | undefined;
      for (let connection = 0; connection < (options.maxConnections ?? 1_000); connection += 1) {
        if (Date.now() > deadline) throw new Error(`stream ${taskId} did not end in time: ${JSON.stringify(analyseTask(taskId, events))}`);
        const planned = (await plan?.(connection)) ?? {};
        const result = await read(taskId, { ...planned, lastEventId: cursor ?? planned.lastEventId });
        if (result.lastEventId !== undefined) cursor = result.lastEventId;
        if (result.ended || result.status === 204) break;
        // A refused connection or a 503 (a backing service is down) is retried after a short pause, as PROTOCOL.md 5 asks.
        if (result.status === 0 || result.status === 503) await new Promise((resolve) => setTimeout(resolve, 100));
        else if (result.status !== 200) throw new Error(`stream ${taskId}: ${result.status} ${result.body}`);
      }
      return analyseTask(taskId, events, startCursors.get(taskId));
    },
    report: (taskId) => analyseTask(taskId, events, startCursors.get(taskId)),
    savedMessage: async (conversationId, taskId) => {
      const conversation = expectStatus(await call<ConversationJson>(session.baseUrl, "GET", `/api/conversations/${conversationId}`, { token: session.token }), 200);
      return conversation.messages.find((message) => message.taskId === taskId);
    },
  };
}
