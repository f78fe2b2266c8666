import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { createSseParser, type ParsedSseEvent, type SseParser } from "./sse-parser.ts";

export interface SseConnection {
  status: number;
  headers: IncomingHttpHeaders;
  parser: SseParser;
  /** Raw body text as received. */
  raw(): string;
  /** Resolves when the server closed the response (or the connection broke). */
  closed: Promise<void>;
  /** Resolves once `count` events have arrived. */
  waitForEvents(count: number, timeoutMs?: number): Promise<ParsedSseEvent[]>;
  /** Stops reading the socket (a slow client), so the server's writes back up. */
  pause(): void;
  /** Reads again (what the kernel buffered, then whatever follows). */
  resume(): void;
  abort(): void;
}

/** Opens a GET like a client would and parses the body as SSE as it arrives. */
export async function openSse(url: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<SseConnection> {
  return await new Promise((resolve, reject) => {
    const request = httpRequest(url, { headers: { Accept: "text/event-stream", ...headers }, ...(signal ? { signal } : {}) });
    request.once("error", reject);
    request.once("response", (response) => {
      response.setEncoding("utf8");
      let raw = "";
      const waiters: Array<{ count: number; resolve: () => void }> = [];
      const parser = createSseParser(() => {
        for (const waiter of waiters.filter((entry) => parser.events.length >= entry.count)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve();
        }
      });
      const closed = new Promise<void>((done) => {
        response.once("close", done);
        response.once("error", () => done());
      });
      response.on("data", (chunk: string) => {
        raw += chunk;
        parser.push(chunk);
      });
      request.removeListener("error", reject);
      request.on("error", () => undefined);
      resolve({
        status: response.statusCode ?? 0,
        headers: response.headers,
        parser,
        raw: () => raw,
        closed,
        async waitForEvents(count, timeoutMs = 5_000) {
          if (parser.events.length < count) {
            await new Promise<void>((done, fail) => {
              const timer = setTimeout(() => fail(new Error(`only ${parser.events.length} of ${count} events after ${timeoutMs} ms: ${raw.slice(-500)}`)), timeoutMs);
              waiters.push({
                count,
                resolve: () => {
                  clearTimeout(timer);
                  done();
                },
              });
            });
          }
          return parser.events.slice(0, count);
        },
        pause: () => response.pause(),
        resume: () => response.resume(),
        abort: () => request.destroy(),
      });
    });
    request.end();
  });
}

/** Reads a whole non-SSE response (errors, 204). */
export async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown }> {
  const connection = await openSse(url, headers);
  await connection.closed;
  const text = connection.raw();
  return { status: connection.status, body: text === "" ? undefined : (JSON.parse(text) as unknown) };
}

/**
 * Opens a stream with `open` and drops it after `abortAfterMs`: before the headers (during the
 * attach), during the replay, live, or after the end, as a client that leaves at any moment does.
 */
export async function openAndAbort(open: (signal: AbortSignal) => Promise<SseConnection>, abortAfterMs: number): Promise<void> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), abortAfterMs);
  try {
    const connection = await open(abort.signal);
    if (!abort.signal.aborted) await Promise.race([connection.closed, new Promise((resolve) => abort.signal.addEventListener("abort", resolve))]);
    connection.abort();
  } catch {
    // aborted before the response
  } finally {
    clearTimeout(timer);
  }
}
