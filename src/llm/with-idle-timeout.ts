import { systemClock, type Clock } from "../time/clock.ts";
import { ProviderError } from "./provider-error.ts";

/**
 * Re-yields `source`, throwing `ProviderError("idle-timeout")` when no item
 * arrives for `idleTimeoutMs` (the wait for the first item counts too, so a
 * provider that never sends headers is caught) and `ProviderError("aborted")`
 * as soon as `signal` aborts, without waiting for the source to notice.
 *
 * Per item it costs one promise: one watchdog timer re-arms itself for the whole
 * iteration and one abort listener serves it, instead of a timer and a listener
 * set and cleared for every token (the worker's per-token cost, BENCHMARKS.md).
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
  // When the pending next() was asked for; the watchdog measures silence from it.
  let waitingSince = clock.monotonicMs();
  let interrupt: ((error: ProviderError) => void) | undefined;
  let failure: ProviderError | undefined;
  const fail = (error: ProviderError): void => {
    failure ??= error;
    interrupt?.(failure);
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
  try {
    if (signal.aborted) throw new ProviderError("aborted", { message: "The request was aborted.", cause: signal.reason });
    signal.addEventListener("abort", onAbort, { once: true });
    arm(idleTimeoutMs);
    for (;;) {
      waitingSince = clock.monotonicMs();
      const next = iterator.next();
      const result = await new Promise<IteratorResult<T>>((resolve, reject) => {
        interrupt = reject;
        if (failure) reject(failure);
        next.then(resolve, reject);
      });
      interrupt = undefined;
      if (result.done === true) {
        exhausted = true;
        return;
      }
      yield result.value;
      if (failure) throw failure;
    }
  } finally {
    interrupt = undefined;
    if (watchdog !== undefined) clock.clearTimeout(watchdog);
    signal.removeEventListener("abort", onAbort);
    // An async generator queues return() behind its pending next(), so this must not be awaited.
    if (!exhausted && iterator.return) void iterator.return().catch(() => undefined);
  }
}
