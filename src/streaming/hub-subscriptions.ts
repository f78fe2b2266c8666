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
   * Sent in order with the subscribes, so a SUBSCRIBE for a new stream of the
   * same task goes after it on the one connection. Failures go to `reportError`.
   */
  unsubscribe(channel: string): void;
  count(): number;
  /** Stops listening and waits for the unsubscribes in flight. */
  close(): Promise<void>;
}

/**
 * Without Cluster, the subscribes and unsubscribes asked for in one turn of the event loop go
 * out as one SUBSCRIBE and one UNSUBSCRIBE of many channels, in the order they were asked for:
 * a burst of stream opens on an API was one command and one socket write per stream (issue 13,
 * "No stall under bursts"). Sharded channels live on different nodes, so each gets its own.
 */
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
  const batches = createCommandBatches((kind, names) => (kind === "subscribe" ? subscriber.subscribe(...names) : subscriber.unsubscribe(...names)));
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
      if (!sharded) await batches.send("subscribe", names);
      else await Promise.all(names.map((name) => subscriber.ssubscribe(name)));
    },

    unsubscribe(name) {
      channels.delete(name);
      const pending = (sharded ? subscriber.sunsubscribe(name) : batches.send("unsubscribe", [name])).catch(reportError);
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
      batches.flush();
      await Promise.allSettled([...unsubscribing]);
    },
  };
}

type CommandKind = "subscribe" | "unsubscribe";

interface CommandBatch {
  kind: CommandKind;
  names: string[];
  /** Settles with the one command the batch becomes: every request in it shares the outcome. */
  sent: PromiseWithResolvers<void>;
}

/** Requests of one event-loop turn, merged into one command per run of the same kind, sent in order. */
function createCommandBatches(sendCommand: (kind: CommandKind, names: string[]) => Promise<unknown>): {
  send(kind: CommandKind, names: readonly string[]): Promise<void>;
  flush(): void;
} {
  let queued: CommandBatch[] = [];
  let scheduled: NodeJS.Immediate | undefined;

  const flush = (): void => {
    if (scheduled) clearImmediate(scheduled);
    scheduled = undefined;
    const sending = queued;
    queued = [];
    for (const { kind, names, sent } of sending) sendCommand(kind, [...new Set(names)]).then(() => sent.resolve(), sent.reject);
  };

  return {
    send(kind, names) {
      let batch = queued.at(-1);
      if (batch?.kind !== kind) {
        batch = { kind, names: [], sent: Promise.withResolvers<void>() };
        queued.push(batch);
      }
      batch.names.push(...names);
      scheduled ??= setImmediate(flush);
      return batch.sent.promise;
    },
    flush,
  };
}
