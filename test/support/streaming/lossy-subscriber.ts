import type { PubSubConnection } from "../../../src/streaming/stream-hub.ts";

type MessageListener = (channel: string, message: string) => void;

export interface LossySubscriber extends PubSubConnection {
  /** Drops the next notification that arrives, whatever its channel. */
  dropNext(): void;
  /** Drops every notification for which the predicate holds, until cleared with undefined. */
  dropWhen(predicate: ((message: string) => boolean) | undefined): void;
  dropped(): number;
}

/** Wraps the real subscriber so tests can lose notifications on purpose: "a notification that never arrives". */
export function lossySubscriber(inner: PubSubConnection): LossySubscriber {
  let drops = 0;
  let dropped = 0;
  let predicate: ((message: string) => boolean) | undefined;
  const wrapped = new Map<MessageListener, MessageListener>();
  const subscriber = {
    dropNext: () => {
      drops += 1;
    },
    dropWhen: (next: ((message: string) => boolean) | undefined) => {
      predicate = next;
    },
    dropped: () => dropped,
    subscribe: async (...channels: string[]) => await inner.subscribe(...channels),
    unsubscribe: async (...channels: string[]) => await inner.unsubscribe(...channels),
    ssubscribe: async (...channels: string[]) => await inner.ssubscribe(...channels),
    sunsubscribe: async (...channels: string[]) => await inner.sunsubscribe(...channels),
    on(event: "message" | "smessage" | "ready", listener: MessageListener | (() => void)) {
      if (event === "ready") return inner.on(event, listener as () => void);
      const filtered: MessageListener = (channel, message) => {
        if (drops > 0 || predicate?.(message) === true) {
          if (drops > 0) drops -= 1;
          dropped += 1;
          return;
        }
        listener(channel, message);
      };
      wrapped.set(listener, filtered);
      return inner.on(event, filtered);
    },
    off(event: "message" | "smessage" | "ready", listener: MessageListener | (() => void)) {
      if (event === "ready") return inner.off(event, listener as () => void);
      return inner.off(event, wrapped.get(listener) ?? listener);
    },
  };
  return subscriber;
}
