import { describe, expect, it } from "vitest";
import { createManualClock } from "../time/manual-clock.ts";
import { ProviderError } from "./provider-error.ts";
import { withIdleTimeout } from "./with-idle-timeout.ts";

/** A source the test feeds by hand; `next()` waits until an item is pushed. */
function createFeed<T>() {
  const waiting: Array<(result: IteratorResult<T>) => void> = [];
  const queued: Array<IteratorResult<T>> = [];
  const deliver = (result: IteratorResult<T>): void => {
    const resolve = waiting.shift();
    if (resolve) resolve(result);
    else queued.push(result);
  };
  return {
    push: (value: T) => deliver({ done: false, value }),
    end: () => deliver({ done: true, value: undefined }),
    iterable: {
      [Symbol.asyncIterator]: () => ({
        next: () => {
          const result = queued.shift();
          return result ? Promise.resolve(result) : new Promise<IteratorResult<T>>((resolve) => waiting.push(resolve));
        },
      }),
    } satisfies AsyncIterable<T>,
  };
}

describe("withIdleTimeout", () => {
  it("fails with idle-timeout when nothing arrives for the idle time, and not before", async () => {
    const clock = createManualClock();
    const feed = createFeed<string>();
    const iterator = withIdleTimeout(feed.iterable, 1000, new AbortController().signal, clock)[Symbol.asyncIterator]();
    const first = iterator.next();
    await clock.waitForTimers(1);
    clock.advance(999);
    feed.push("a");
    expect(await first).toEqual({ done: false, value: "a" });

    const second = iterator.next();
    await clock.waitForTimers(1);
    clock.advance(999);
    expect(clock.pendingTimers()).toBe(1);
    clock.advance(1);
    await expect(second).rejects.toMatchObject({ kind: "idle-timeout", code: "PROVIDER_TIMEOUT" });
    expect(clock.pendingTimers()).toBe(0);
  });

  it("fails with aborted as soon as the signal aborts, even while the source is silent", async () => {
    const clock = createManualClock();
    const controller = new AbortController();
    const feed = createFeed<string>();
    const next = withIdleTimeout(feed.iterable, 1000, controller.signal, clock)[Symbol.asyncIterator]().next();
    await clock.waitForTimers(1);
    controller.abort();
    await expect(next).rejects.toBeInstanceOf(ProviderError);
    await expect(next).rejects.toMatchObject({ kind: "aborted" });
    expect(clock.pendingTimers()).toBe(0);
  });

  it("passes items and the end through, and source errors unchanged", async () => {
    const clock = createManualClock();
    const feed = createFeed<number>();
    feed.push(1);
    feed.push(2);
    feed.end();
    const items: number[] = [];
    for await (const item of withIdleTimeout(feed.iterable, 1000, new AbortController().signal, clock)) items.push(item);
    expect(items).toEqual([1, 2]);
    expect(clock.pendingTimers()).toBe(0);

    const failure = new Error("boom");
    const failing: AsyncIterable<number> = {
      [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(failure) }),
    };
    await expect(withIdleTimeout(failing, 1000, new AbortController().signal, clock).next()).rejects.toBe(failure);
  });
});
