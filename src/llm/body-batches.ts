import { Readable, finished } from "node:stream";

/** Turns a streaming body's reads into items: what readBodyBatches calls, on the body's own events. */
export interface BodyParser<T> {
  /** Parses one read into `into`; returns true once the stream's own end marker (`[DONE]`) was read. */
  read(bytes: Uint8Array | string, into: T[]): boolean;
  /** At the end marker or the body's end: adds the last items, or throws (a stream cut short). */
  end(into: T[]): void;
}

/** Reads past this many unread items pause the body (TCP backpressure), as async iteration would. */
const pauseAtItems = 1024;

/**
 * Reads a streaming HTTP body and yields the items `parser` makes of it, all those of the reads that
 * arrived since the last `next()` together, in order.
 *
 * Why not `for await` over the body: on the worker's hottest path each token is one network read,
 * and every async layer between the socket and the worker's loop costs a promise and microtask hops
 * per token. Here the parser runs in the body's own `data` handler, and a waiting `next()` is the
 * only promise a read resolves (BENCHMARKS.md, "Floors").
 *
 * - After the end marker a body whose last byte has arrived (node:http's `complete`) is read to its
 *   end, which returns the connection to the keep-alive pool; any other body is destroyed at once,
 *   as the SDKs do: a server that keeps the response open after `[DONE]` must not hold the reply.
 * - A failure of the parser or of the body (a reset, a premature close) rejects the next `next()`;
 *   after `signal` aborted it ends the iteration quietly instead, as the SDKs' streams do.
 * - `return()` (a consumer that stops early) destroys the body.
 */
export function readBodyBatches<T>(body: unknown, parser: BodyParser<T>, signal?: AbortSignal): AsyncIterableIterator<T[]> {
  const source = body instanceof Readable ? body : Readable.from(body as AsyncIterable<Uint8Array | string>, { objectMode: true });
  let pending: T[] = [];
  let state: "reading" | "ended" = "reading";
  // Set when the body or the parser failed (state "ended"); delivered by the next next(), then cleared.
  let failure: Error | undefined;
  let waiter: { resolve: (result: IteratorResult<T[]>) => void; reject: (error: unknown) => void } | undefined;

  const settle = (): void => {
    if (waiter === undefined) return;
    const { resolve, reject } = waiter;
    if (pending.length > 0) {
      waiter = undefined;
      resolve({ done: false, value: take() });
    } else if (failure !== undefined) {
      waiter = undefined;
      reject(failure);
      failure = undefined;
    } else if (state === "ended") {
      waiter = undefined;
      resolve({ done: true, value: undefined });
    }
  };
  const take = (): T[] => {
    const items = pending;
    pending = [];
    if (source.isPaused() && state === "reading") source.resume();
    return items;
  };
  const fail = (error: unknown): void => {
    if (state !== "reading") return;
    state = "ended";
    if (signal?.aborted !== true) failure = error instanceof Error ? error : new Error(String(error));
    source.destroy();
    settle();
  };
  const end = (): void => {
    if (state !== "reading") return;
    try {
      parser.end(pending);
      state = "ended";
    } catch (error) {
      fail(error);
      return;
    }
    settle();
  };

  source.on("data", (bytes: Uint8Array | string) => {
    if (state !== "reading") return;
    let sawEndMarker: boolean;
    try {
      sawEndMarker = parser.read(bytes, pending);
    } catch (error) {
      fail(error);
      return;
    }
    if (sawEndMarker) {
      end();
      // node:http sets `complete` after the data handler of the read that carried the body's end,
      // so it is checked a tick later (before the stream's own end, and before anyone can abort).
      process.nextTick(() => {
        if ((source as { complete?: boolean }).complete !== true) source.destroy();
      });
      return;
    }
    if (pending.length >= pauseAtItems && waiter === undefined) source.pause();
    settle();
  });
  finished(source, (error) => (error ? fail(error) : end()));

  const iterator: AsyncIterableIterator<T[]> = {
    next: () => {
      if (pending.length > 0) return Promise.resolve({ done: false, value: take() });
      if (failure !== undefined) {
        const error = failure;
        failure = undefined;
        return Promise.reject(error);
      }
      if (state === "ended") return Promise.resolve({ done: true, value: undefined });
      // One next() at a time, as `for await` asks: a second waiter would leave the first unsettled.
      if (waiter !== undefined) return Promise.reject(new TypeError("readBodyBatches: next() called while another next() is pending"));
      return new Promise((resolve, reject) => {
        waiter = { resolve, reject };
      });
    },
    return: () => {
      if (state === "reading") source.destroy();
      // A failure nobody read is dropped with the rest: after return() the iterator is done.
      state = "ended";
      failure = undefined;
      pending = [];
      settle();
      return Promise.resolve({ done: true, value: undefined });
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}
