import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { describe, expect, inject, it } from "vitest";
import { startRedisServer } from "../embedded/redis-server.ts";
import { findFreePort } from "../embedded/free-port.ts";
import { connectRedis } from "./connect-redis.ts";

const options = { commandTimeoutMs: 500, name: "sluice-test" };

describe("the subscriber connection", () => {
  it.each([
    { what: "the process's subscriber (SUBSCRIBE)", subscribe: (url: string) => subscribeWith(connectRedis(url, "subscriber", options), "subscribe") },
    {
      // A Cluster with shardedSubscribers opens a plain ioredis connection per shard itself; a
      // subscriber role anywhere in the process covers those too.
      what: "a connection ioredis opened itself, as a cluster shard's subscriber (SSUBSCRIBE)",
      subscribe: (url: string) => {
        connectRedis(url, "subscriber", options).disconnect();
        return subscribeWith(new Redis(url, { retryStrategy: () => 50 }), "ssubscribe");
      },
    },
  ])("closed while ioredis re-subscribes after a Redis restart leaves no unhandled rejection: $what", async ({ subscribe }) => {
    const dataDirectory = mkdtempSync(join(tmpdir(), "sluice-subscriber-"));
    const serverOptions = { executable: inject("redisExecutable"), dataDirectory, appendOnly: false, supervise: false, port: await findFreePort() };
    let server = await startRedisServer(serverOptions);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    const subscriber = await subscribe(server.url);
    try {
      await server.stop();
      // ioredis sends the re-subscribe as it becomes ready; closing at that moment rejects it.
      // The socket is destroyed at once, so the reply can never arrive first. Listened for before the
      // restart: a client retrying every 50 ms can be ready before the restart's own PING answers.
      const closedWhenReady = new Promise<void>((resolve) => subscriber.once("ready", () => {
        subscriber.disconnect();
        (subscriber as unknown as { stream: { destroy(): void } }).stream.destroy();
        resolve();
      }));
      server = await startRedisServer(serverOptions);
      await closedWhenReady;
      // Unhandled rejections are reported after the microtask queue drains: let one macrotask pass.
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
      subscriber.disconnect();
      await server.stop();
      rmSync(dataDirectory, { recursive: true, force: true });
    }
  });
});

async function subscribeWith(client: Redis, method: "subscribe" | "ssubscribe"): Promise<Redis> {
  client.on("error", () => undefined);
  await client[method]("a", "b");
  return client;
}
