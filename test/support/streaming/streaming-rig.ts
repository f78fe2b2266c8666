import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { onTestFinished } from "vitest";
import { createStreamHub, type StreamHub, type StreamHubOptions } from "../../../src/streaming/stream-hub.ts";
import { createStreamLog, type StreamLog, type StreamLogOptions } from "../../../src/streaming/stream-log.ts";
import { createStreamWriter } from "../../../src/streaming/stream-writer.ts";
import { testRedisUrl, uniqueKeyPrefix } from "../servers/redis.ts";

export interface StreamingRig {
  /** Prefix of the CLIENT SETNAME of this rig's connections: `<name>:commands`, `<name>:subscriber`. */
  name: string;
  redis: Redis;
  subscriber: Redis;
  log: StreamLog;
  hub: StreamHub;
  keyPrefix: string;
}

export interface RigOptions {
  log?: Partial<StreamLogOptions>;
  hub?: Partial<StreamHubOptions>;
}

/** A log and a hub on the shared test redis-server, with their own key prefix and named connections; closed when the test ends. */
export function createStreamingRig(options: RigOptions = {}): StreamingRig {
  const name = `sluice-test-${randomBytes(4).toString("hex")}`;
  const redis = new Redis(testRedisUrl(), { connectionName: `${name}:commands`, maxRetriesPerRequest: null });
  const subscriber = new Redis(testRedisUrl(), { connectionName: `${name}:subscriber`, maxRetriesPerRequest: null });
  for (const client of [redis, subscriber]) client.on("error", () => undefined);
  const keyPrefix = uniqueKeyPrefix("stream");
  const log = createStreamLog({ redis, keyPrefix, ...options.log });
  const hub = createStreamHub({ log, subscriber, stallTimeoutMs: 300, ...options.hub });
  onTestFinished(async () => {
    await hub.close();
    redis.disconnect();
    subscriber.disconnect();
  });
  return { name, redis, subscriber, log, hub, keyPrefix };
}

/** Connections on the server whose name starts with `prefix`, from CLIENT LIST. */
export async function clientsNamed(redis: Redis, prefix: string): Promise<Array<Record<string, string>>> {
  const list = (await redis.call("CLIENT", "LIST")) as string;
  return list
    .split("\n")
    .filter(Boolean)
    .map((line) => Object.fromEntries(line.split(" ").map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)])))
    .filter((client) => client.name?.startsWith(prefix));
}

/** Writes one generation as a worker would: `tokenCount` text deltas about 1 ms apart, then `end` (completed). */
export async function writeGeneration(log: StreamLog, taskId: string, tokenCount: number): Promise<void> {
  const { attempt } = await log.beginAttempt(taskId);
  const writer = createStreamWriter({ log, taskId, attempt, coalesceWindowMs: 2 });
  for (let token = 0; token < tokenCount; token += 1) {
    writer.appendText(`${token} `);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await writer.end({ status: "completed" });
}
