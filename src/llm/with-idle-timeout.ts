import { systemClock, type Clock } from "../time/clock.ts";
import { ProviderError } from "./provider-error.ts";

/**
 * Passes `source` through, throwing `ProviderError("idle-timeout")` when no item
 * arrives for `idleTimeoutMs` (the wait for the first item counts too, so a
 * provider that never sends headers is caught) and `ProviderError("aborted")`
 * as soon as `signal` aborts, without waiting for the source to notice.
 *
 * Per item it costs one promise: one watchdog timer re-arms itself for the whole
 * iteration and one abort listener serves it, instead of a timer and a listener
 * set and cleared for every token. It is a plain iterator, not an async generator,
 * whose `yield` would add microtask hops to every item (the worker's per-token
 * cost, BENCHMARKS.md). The source is opened, and the watchdog armed, at the first `next()`.
 *
 * It cannot cancel a pending `next()` of the source; the owner must abort the
 * request behind it (guardProviderStream does, in its `finally`).
 *
 * @example for await (const event of withIdleTimeout(events, 30_000, signal)) …
 */
export function withIdleTimeout<T>(
  source: AsyncIterable<T>,
  idleTimeoutMs: number,
  signal: AbortSignal,
  clock: Clock = systemClock,
): AsyncIterableIterator<T> {
  let iterator: AsyncIterator<T> | undefined;
  let finished = false;
  // When the pending next() was asked for; the watchdog measures silence from it.
  let waitingSince = clock.monotonicMs();
  let interrupt: ((error: ProviderError) => void) | undefined;
  let failure: ProviderError | undefined;
  const fail = (error: ProviderError): void => {
    failure ??= error;
    const pending = interrupt;
    interrupt = undefined;
    pending?.(failure);
  };
  let watchdog: unknown;
  const arm = (delayMs: number): void => {
    watchdog = clock.setTimeout(() => {
      watchdog = undefined;
      const silentForMs = clock.monotonicMs() - waitingSince;
      if (silentForMs >= idleTimeoutMs) fail(new ProviderError("idle-timeout", { message: `The provider sent nothing for ${idleTimeoutMs} ms.` }));
      else arm(idleTimeoutMs - silentForMs);
    }, delayMs);
  };
  const onAbort = (): void => fail(new ProviderError("aborted", { message: "The request was aborted.", cause: signal.reason }));
  /** Stops the watchdog and the listener; with `closeSource`, also tells the source (not awaited: an async generator queues return() behind its pending next()). */
  const finish = (closeSource: boolean): void => {
    if (finished) return;
    finished = true;
    interrupt = undefined;
    if (watchdog !== undefined) clock.clearTimeout(watchdog);
    signal.removeEventListener("abort", onAbort);
    if (closeSource && iterator?.return) void iterator.return().catch(() => undefined);
  };
  const open = (): AsyncIterator<T> => {
    if (signal.aborted) throw new ProviderError("aborted", { message: "The request was aborted.", cause: signal.reason });
    const opened = source[Symbol.asyncIterator]();
    signal.addEventListener("abort", onAbort, { once: true });
    arm(idleTimeoutMs);
    return opened;
  };
  const self: AsyncIterableIterator<T> = {
    next: () => {
      if (finished) return Promise.resolve({ done: true, value: undefined });
      try {
        iterator ??= open();
      } catch (error) {
        finished = true;
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the caller's abort (a ProviderError) or the source's own throw, unchanged
        return Promise.reject(error);
      }
      if (failure) {
        finish(true);
        return Promise.reject(failure);
      }
      waitingSince = clock.monotonicMs();
      let next: Promise<IteratorResult<T>>;
      try {
        next = iterator.next();
      } catch (error) {
        finish(true);
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the source's own error, passed on unchanged
        return Promise.reject(error);
      }
      return new Promise<IteratorResult<T>>((resolve, reject) => {
        interrupt = (error) => {
          finish(true);
          reject(error);
        };
        next.then(
          (result) => {
            if (finished) return; // interrupted meanwhile: the promise is already rejected
            interrupt = undefined;
            if (result.done === true) finish(false);
            resolve(result);
          },
          (error: unknown) => {
            finish(true);
            // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the source's own error, passed on unchanged
            reject(error);
          },
        );
      });
    },
    return: () => {
      finish(true);
      return Promise.resolve({ done: true, value: undefined });
    },
    [Symbol.asyncIterator]: () => self,
  };
  return self;
}
