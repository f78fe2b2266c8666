import type { SseEvent, SseResponse } from "./read-sse.ts";
import type { ChatUser } from "./chat-api.ts";

export interface LiveStream {
  /** Events so far, in arrival order. */
  readonly events: SseEvent[];
  /** Resolves when the server closes the stream (after `end`) or the watch is aborted. */
  readonly done: Promise<SseResponse>;
  /** Resolves once `predicate` holds for the events so far (checked on every event); rejects when the stream ends first. */
  until(predicate: (events: readonly SseEvent[]) => boolean, what: string): Promise<void>;
  /** Drops the connection, as a closed browser tab would. */
  abort(): void;
}

/** Reads a stream in the background so a test can act when given events have arrived. */
export function watchStream(user: ChatUser, taskId: string, baseUrl?: string): LiveStream {
  const events: SseEvent[] = [];
  const waiters: Array<{ predicate: (events: readonly SseEvent[]) => boolean; resolve: () => void }> = [];
  const controller = new AbortController();
  const check = (): void => {
    for (const waiter of [...waiters]) {
      if (waiter.predicate(events)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  };
  const done = user.stream(taskId, {
    signal: controller.signal,
    ...(baseUrl === undefined ? {} : { baseUrl }),
    stopAfter: (event) => {
      events.push(event);
      check();
      return false;
    },
  });
  return {
    events,
    done,
    abort: () => controller.abort(),
    until: (predicate, what) =>
      new Promise<void>((resolve, reject) => {
        if (predicate(events)) return resolve();
        waiters.push({ predicate, resolve });
        void done.then(
          (response) => {
            if (!predicate(events)) reject(new Error(`stream ended (${response.status}) before ${what}: ${JSON.stringify(events.map((event) => event.event))}`));
          },
          (error: unknown) => reject(error instanceof Error ? error : new Error(String(error))),
        );
      }),
  };
}

export const countOf = (type: string) => (events: readonly SseEvent[]): number => events.filter((event) => event.event === type).length;
