import type { IncomingMessage, ServerResponse } from "node:http";
import { SluiceError, errorHeaders, isSluiceError, toErrorBody } from "../errors/catalog.ts";
import { systemClock, type Clock } from "../time/clock.ts";
import { parseCursor, type Cursor } from "./cursor.ts";
import { encodeSseComment, encodeSseRetry } from "./encode-sse-event.ts";
import { defaultRetryJitterMs, defaultRetryMs, type StreamHub, type ViewerSink, type WhenLogMissingOption } from "./stream-hub.ts";

export const defaultHeartbeatMs = 15_000;

/** PROTOCOL.md 2.2. */
export const sseHeaders = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache, no-transform",
  "X-Accel-Buffering": "no",
  Connection: "keep-alive",
} as const;

export interface ServeSseOptions {
  request: IncomingMessage;
  response: ServerResponse;
  hub: StreamHub;
  taskId: string;
  /**
   * Overrides the cursor found in the request (`Last-Event-ID` header, else `?lastEventId=`);
   * "first-entry" ignores the request's: the POST that started the generation reads it all.
   */
  after?: Cursor | "first-entry" | undefined;
  /** Written after the `retry:` line, before the log's first event (the started generation's `accepted` event). */
  firstFrame?: string;
  /**
   * Answers a refusal of the hub's open or of the admission, before any SSE byte
   * (default: the error's status and body, `writeErrorResponse`).
   */
  answerRefusal?: (response: ServerResponse, error: SluiceError) => void;
  /** From the task's state: "wait" while queued or running; STREAM_EXPIRED once finished; STREAM_NOT_FOUND otherwise (or a lookup, run only when the log is missing). */
  whenMissing?: WhenLogMissingOption;
  /**
   * A check that runs beside the hub's open (an open-stream lease): its rejection is
   * answered as the error, before any SSE byte, and the viewer is released.
   */
  admission?: Promise<unknown>;
  heartbeatMs?: number;
  retryMs?: number;
  retryJitterMs?: number;
  clock?: Clock;
  random?: () => number;
  /** Called once when the response is over, however it ended. */
  onClose?: () => void;
  /** A response the hub ends while its socket is still full (a slow consumer) is destroyed after this long (ms). */
  closeGraceMs?: number;
}

export const defaultCloseGraceMs = 5_000;

/**
 * The client's cursor: the `Last-Event-ID` header (what EventSource sends when it
 * reconnects), else the `lastEventId` query parameter; empty means none.
 * Throws INVALID_CURSOR (400) on garbage.
 */
export function cursorFromRequest(request: IncomingMessage): Cursor | undefined {
  const header = request.headers["last-event-id"];
  const fromHeader = Array.isArray(header) ? header[0] : header;
  const text = fromHeader !== undefined && fromHeader !== "" ? fromHeader : new URL(request.url ?? "/", "http://localhost").searchParams.get("lastEventId");
  return text === null || text === "" ? undefined : parseCursor(text);
}

/** Writes the one error body shape, `{"error":{"code","message"}}`, if nothing was sent yet, with Retry-After when the error says when to come back (as the API's error handler does). */
export function writeErrorResponse(response: ServerResponse, error: SluiceError): void {
  if (response.headersSent || response.destroyed) return;
  const body = JSON.stringify(toErrorBody(error));
  response
    .writeHead(error.status, {
      "Content-Type": "application/json; charset=utf-8",
      "Cache-Control": "no-store",
      ...errorHeaders(error),
    })
    .end(body);
}

/**
 * Serves one SSE connection of PROTOCOL.md on a raw node:http response:
 * validates the cursor, attaches a hub viewer (errors become 400/404/410/503
 * bodies before any SSE byte; a cursor at the end gives 204), then writes the
 * headers and the `retry:` line, replays, goes live, sends heartbeats, and ends
 * the response after `end`. Everything is released when the client goes away,
 * at whatever moment. Resolves when the response is over.
 *
 * @example
 * server.on("request", (request, response) => void serveSse({ request, response, hub, taskId }));
 */
export async function serveSse(options: ServeSseOptions): Promise<void> {
  const { request, response, hub, taskId } = options;
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const heartbeatMs = options.heartbeatMs ?? defaultHeartbeatMs;
  const retryMs = (options.retryMs ?? defaultRetryMs) + Math.floor(random() * (options.retryJitterMs ?? defaultRetryJitterMs));

  let closed = false;
  const finished = new Promise<void>((resolve) => {
    // The caller may have awaited (a task lookup) while the client hung up: its "close" is gone,
    // so an already closed response counts as closed now, or its viewer and lease would never be freed.
    if (response.closed || response.destroyed) {
      closed = true;
      resolve();
      return;
    }
    response.once("close", () => {
      closed = true;
      resolve();
    });
  });
  void finished.then(() => options.onClose?.());

  let after: Cursor | undefined;
  try {
    after = options.after === "first-entry" ? undefined : (options.after ?? cursorFromRequest(request));
  } catch (error) {
    writeErrorResponse(response, toSluiceError(error));
    return await finished;
  }

  let forceClose: unknown;
  const sink: ViewerSink = {
    write: (text) => response.write(text),
    end: (text) => {
      response.end(text);
      // A client that does not read never lets the end (or a retry hint) out: free the socket anyway.
      // A response that finishes normally closes first and clears this.
      if (!response.writableFinished && forceClose === undefined) {
        forceClose = clock.setTimeout(() => response.destroy(), options.closeGraceMs ?? defaultCloseGraceMs);
      }
    },
  };
  if (closed) return await finished;
  // Side by side: the hub's subscribe + read and the caller's admission cost one round trip, not two.
  const [openResult, admissionResult] = await Promise.allSettled([
    hub.open({ taskId, after, whenMissing: options.whenMissing ?? "wait", sink }),
    options.admission,
  ]);
  if (openResult.status === "rejected" || admissionResult.status === "rejected") {
    if (openResult.status === "fulfilled" && openResult.value.status === "ready") openResult.value.viewer.close();
    const failure: unknown = openResult.status === "rejected" ? openResult.reason : (admissionResult as PromiseRejectedResult).reason;
    if (!closed) (options.answerRefusal ?? writeErrorResponse)(response, toSluiceError(failure));
    return await finished;
  }
  const opened = openResult.value;
  if (opened.status === "finished") {
    // PROTOCOL.md 4.2: nothing after the end; 204 also stops EventSource from reconnecting.
    if (!closed) response.writeHead(204, { "Cache-Control": "no-store" }).end();
    return await finished;
  }
  const { viewer } = opened;
  if (closed) {
    viewer.close();
    return;
  }

  let heartbeat: unknown;
  const scheduleHeartbeat = (): void => {
    heartbeat = clock.setTimeout(() => {
      if (closed || response.writableEnded) return;
      // A blocked socket gets nothing more; the hub closes it past its limit.
      if (!response.writableNeedDrain) response.write(encodeSseComment("ping"));
      scheduleHeartbeat();
    }, heartbeatMs);
  };
  const onDrain = (): void => viewer.resume();
  response.on("drain", onDrain);
  void finished.then(() => {
    clock.clearTimeout(heartbeat);
    if (forceClose !== undefined) clock.clearTimeout(forceClose);
    response.off("drain", onDrain);
    viewer.close();
  });

  response.writeHead(200, sseHeaders);
  response.write(options.firstFrame === undefined ? encodeSseRetry(retryMs) : encodeSseRetry(retryMs) + options.firstFrame);
  scheduleHeartbeat();
  viewer.start();
  await finished;
}

function toSluiceError(error: unknown): SluiceError {
  return isSluiceError(error) ? error : new SluiceError("SERVICE_UNAVAILABLE", undefined, { cause: error });
}
