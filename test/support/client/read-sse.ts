import { createParser, type EventSourceMessage } from "eventsource-parser";

/**
 * The one SSE connection reader of the tests: fetch, then eventsource-parser, which
 * follows the spec (\n, \r\n or \r line ends, `data:` lines joined, comments ignored).
 * Everything else (readSse, the stream recorder, followStream) is a view of what it reads.
 */

export interface SseConnectionOptions {
  headers?: Record<string, string>;
  /** A POST that answers with a stream (PROTOCOL.md 2.4); default GET. */
  method?: "GET" | "POST";
  /** The request body, with `method: "POST"`. */
  body?: string;
  /** Sent as the Last-Event-ID header; undefined = from the beginning. */
  lastEventId?: string | undefined;
  signal?: AbortSignal;
  /** Abort after this many body bytes, possibly inside an event (a drop mid-frame). */
  abortAfterBytes?: number;
  /** Abort when no byte arrived for this long (default: never). */
  idleTimeoutMs?: number;
  /** Called when the response headers arrived (a join is in place before any event). */
  onResponse?: (status: number) => void;
  /** Each complete event; returning true aborts the connection: the rest of its chunk never reaches this client. */
  onMessage: (message: EventSourceMessage) => boolean | void;
  /** Each `retry:` line. */
  onRetry?: (ms: number) => void;
}

export interface SseConnection {
  /** HTTP status, 0 when the connection was refused or failed before an answer. */
  status: number;
  headers: Headers;
  /** The body of a non-200 answer, or the error of a connection that failed before one. */
  body: string;
  /** "closed": the server closed it; "aborted": by the client; "idle": the idle timeout; "error": a network error. */
  finish: "closed" | "aborted" | "idle" | "error";
  error?: unknown;
}

export async function readSseConnection(url: string, options: SseConnectionOptions): Promise<SseConnection> {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort();
  options.signal?.addEventListener("abort", onAbort);
  const headers: Record<string, string> = { ...options.headers };
  if (options.lastEventId !== undefined) headers["last-event-id"] = options.lastEventId;
  const result: SseConnection = { status: 0, body: "", headers: new Headers(), finish: "closed" };
  let idleTimer: NodeJS.Timeout | undefined;
  let idled = false;
  const touch = (): void => {
    if (options.idleTimeoutMs === undefined) return;
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      idled = true;
      controller.abort();
    }, options.idleTimeoutMs);
  };
  try {
    touch();
    const response = await fetch(url, { method: options.method ?? "GET", headers, signal: controller.signal, ...(options.body === undefined ? {} : { body: options.body }) });
    result.status = response.status;
    result.headers = response.headers;
    options.onResponse?.(response.status);
    if (response.status !== 200 || !response.body) {
      result.body = await response.text();
      return result;
    }
    const decoder = new TextDecoder();
    let bytes = 0;
    let enough = false;
    const parser = createParser({
      onEvent: (message) => {
        if (!enough && options.onMessage(message) === true) enough = true;
      },
      ...(options.onRetry ? { onRetry: options.onRetry } : {}),
    });
    for await (const chunk of response.body) {
      touch();
      let piece = chunk;
      let cut = false;
      if (options.abortAfterBytes !== undefined && bytes + piece.byteLength >= options.abortAfterBytes) {
        piece = piece.subarray(0, Math.max(0, options.abortAfterBytes - bytes));
        cut = true;
      }
      bytes += piece.byteLength;
      // Bytes after the cut never reached this client; a cut inside a UTF-8 sequence is held by the decoder.
      parser.feed(decoder.decode(piece, { stream: true }));
      if (enough || cut) {
        result.finish = "aborted";
        controller.abort();
        break;
      }
    }
  } catch (error) {
    if (idled) result.finish = "idle";
    else if (controller.signal.aborted) result.finish = "aborted";
    else {
      result.finish = "error";
      result.error = error;
    }
    if (!controller.signal.aborted && result.status === 0) result.body = String(error);
  } finally {
    clearTimeout(idleTimer);
    options.signal?.removeEventListener("abort", onAbort);
  }
  return result;
}

/** Parses `<incarnation>-<seq>` as a client may (the implementer's note in PROTOCOL.md 4.1): the incarnation may hold dashes. */
export function parseCursor(cursor: string): { incarnation: string; seq: number } | undefined {
  const dash = cursor.lastIndexOf("-");
  if (dash <= 0) return undefined;
  const seq = Number(cursor.slice(dash + 1));
  return Number.isInteger(seq) ? { incarnation: cursor.slice(0, dash), seq } : undefined;
}

/** One parsed SSE event as a client sees it. */
export interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
  /** `data` parsed as JSON. */
  json: { type: string; [key: string]: unknown };
}

export interface SseResponse {
  status: number;
  headers: Headers;
  /** Events in arrival order (empty for non-200 answers). */
  events: SseEvent[];
  /** `retry:` values seen. */
  retries: number[];
  /** The body, for error answers. */
  body: string;
}

/**
 * Reads an SSE response to its end (the server closes after `end`), or until
 * `stopAfter` says so, or the abort signal fires. A network error rejects.
 */
export async function readSse(
  url: string,
  options: { headers?: Record<string, string>; method?: "GET" | "POST"; body?: string; signal?: AbortSignal; stopAfter?: (event: SseEvent, all: SseEvent[]) => boolean } = {},
): Promise<SseResponse> {
  const events: SseEvent[] = [];
  const retries: number[] = [];
  const connection = await readSseConnection(url, {
    headers: options.headers ?? {},
    ...(options.method === undefined ? {} : { method: options.method }),
    ...(options.body === undefined ? {} : { body: options.body }),
    ...(options.signal ? { signal: options.signal } : {}),
    onMessage: (message) => {
      const event: SseEvent = { id: message.id, event: message.event ?? "message", data: message.data, json: JSON.parse(message.data) as SseEvent["json"] };
      events.push(event);
      return options.stopAfter?.(event, events) ?? false;
    },
    onRetry: (retry) => retries.push(retry),
  });
  if (connection.finish === "error") throw connection.error;
  return { status: connection.status, headers: connection.headers, events, retries, body: connection.body };
}

/** The text a client would show: text-deltas after the last `reset`. */
export function textOf(events: readonly SseEvent[]): string {
  let text = "";
  for (const event of events) {
    if (event.event === "reset") text = "";
    if (event.event === "text-delta") text += String(event.json.delta);
  }
  return text;
}
