/**
 * The one pub/sub connection of a process, as the hub uses it. An ioredis
 * `Redis` in subscriber mode fits; `ready` is its (re)connection event.
 */
export interface PubSubConnection {
  subscribe(...channels: string[]): Promise<unknown>;
  unsubscribe(...channels: string[]): Promise<unknown>;
  ssubscribe(...channels: string[]): Promise<unknown>;
  sunsubscribe(...channels: string[]): Promise<unknown>;
  on(event: "message" | "smessage", listener: (channel: string, message: string) => void): unknown;
  on(event: "ready", listener: () => void): unknown;
  off(event: "message" | "smessage", listener: (channel: string, message: string) => void): unknown;
  off(event: "ready", listener: () => void): unknown;
}

/** The hub's channels on the shared connection; it knows nothing of streams. */
export interface HubSubscriptions {
  /** Routes the connection's messages and (re)connections to the hub until `close()`. */
  listen(onMessage: (channel: string, message: string) => void, onReconnect: () => void): void;
  /** Resolves once the channels are subscribed (SUBSCRIBE is idempotent on the connection). */
  subscribe(channels: readonly string[]): Promise<void>;
  /**
   * Issued synchronously, so a SUBSCRIBE for a new stream of the same task is
   * queued after it on the one connection. Failures go to `reportError`.
   */
  unsubscribe(channel: string): void;
  count(): number;
  /** Stops listening and waits for the unsubscribes in flight. */
  close(): Promise<void>;
}

export function createHubSubscriptions(options: {
  subscriber: PubSubConnection;
  /** SSUBSCRIBE for Redis Cluster, matching the log's SPUBLISH. */
  sharded: boolean;
  reportError: (error: unknown) => void;
}): HubSubscriptions {
  const { subscriber, sharded, reportError } = options;
  const messageEvent = sharded ? "smessage" : "message";
  const channels = new Set<string>();
  const unsubscribing = new Set<Promise<unknown>>();
  let listening: { onMessage: (channel: string, message: string) => void; onReconnect: () => void } | undefined;

  return {
    listen(onMessage, onReconnect) {
      listening = { onMessage, onReconnect };
      subscriber.on(messageEvent, onMessage);
      subscriber.on("ready", onReconnect);
    },

    async subscribe(names) {
      for (const name of names) channels.add(name);
      if (names.length === 0) return;
      if (!sharded) await subscriber.subscribe(...names);
      else await Promise.all(names.map((name) => subscriber.ssubscribe(name)));
    },

    unsubscribe(name) {
      channels.delete(name);
      const pending = (sharded ? subscriber.sunsubscribe(name) : subscriber.unsubscribe(name)).catch(reportError);
      unsubscribing.add(pending);
      void pending.finally(() => unsubscribing.delete(pending));
    },

    count: () => channels.size,

    async close() {
      if (listening) {
        subscriber.off(messageEvent, listening.onMessage);
        subscriber.off("ready", listening.onReconnect);
        listening = undefined;
      }
      await Promise.allSettled([...unsubscribing]);
    },
  };
}
