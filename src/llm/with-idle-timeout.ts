import { systemClock, type Clock } from "./clock.ts";
import { ProviderError } from "./provider-error.ts";

/**
 * Re-yields `source`, throwing `ProviderError("idle-timeout")` when no item
 * arrives for `idleTimeoutMs` (the wait for the first item counts too, so a
 * provider that never sends headers is caught) and `ProviderError("aborted")`
 * as soon as `signal` aborts, without waiting for the source to notice.
 *
 * It cannot cancel a pending `next()` of the source; the owner must abort the
 * request behind it (guardProviderStream does, in its `finally`).
 *
 * @example for await (const event of withIdleTimeout(events, 30_000, signal)) …
 */
export async function* withIdleTimeout<T>(
  source: AsyncIterable<T>,
  idleTimeoutMs: number,
  signal: AbortSignal,
  clock: Clock = systemClock,
): AsyncGenerator<T, void, undefined> {
  const iterator = source[Symbol.asyncIterator]();
  let exhausted = false;
  try {
    for (;;) {
      const result = await nextWithin(iterator.next(), idleTimeoutMs, signal, clock);
      if (result.done === true) {
        exhausted = true;
        return;
      }
      yield result.value;
    }
  } finally {
    // An async generator queues return() behind its pending next(), so this must not be awaited.
    if (!exhausted && iterator.return) void iterator.return().catch(() => undefined);
  }
}

function nextWithin<T>(next: Promise<T>, idleTimeoutMs: number, signal: AbortSignal, clock: Clock): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) {
      // The losing `next` may still reject later; it has a handler below so it is never unhandled.
      next.catch(() => undefined);
      reject(new ProviderError("aborted", { message: "The request was aborted.", cause: signal.reason }));
      return;
    }
    const cleanup = (): void => {
      clock.clearTimeout(handle);
      signal.removeEventListener("abort", onAbort);
    };
    const onAbort = (): void => {
      cleanup();
      reject(new ProviderError("aborted", { message: "The request was aborted.", cause: signal.reason }));
    };
    const handle = clock.setTimeout(() => {
      cleanup();
      reject(new ProviderError("idle-timeout", { message: `The provider sent nothing for ${idleTimeoutMs} ms.` }));
    }, idleTimeoutMs);
    signal.addEventListener("abort", onAbort, { once: true });
    next.then(
      (value) => {
        cleanup();
        resolve(value);
      },
      (error: Error) => {
        cleanup();
        reject(error);
      },
    );
  });
}
