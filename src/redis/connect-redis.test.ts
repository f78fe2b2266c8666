import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { startRedisServer } from "../embedded/redis-server.ts";
import { findFreePort } from "../embedded/free-port.ts";
import { connectRedis } from "./connect-redis.ts";

describe("the subscriber connection", () => {
  it("closed while ioredis re-subscribes after a Redis restart leaves no unhandled rejection", async () => {
    const dataDirectory = mkdtempSync(join(tmpdir(), "sluice-subscriber-"));
    const options = { executable: inject("redisExecutable"), dataDirectory, appendOnly: false, supervise: false, port: await findFreePort() };
    let server = await startRedisServer(options);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    const subscriber = connectRedis(server.url, "subscriber", { commandTimeoutMs: 500, name: "sluice-test" });
    try {
      await subscriber.subscribe("a", "b");
      await server.stop();
      server = await startRedisServer(options);
      // ioredis sends the re-SUBSCRIBE as it becomes ready; closing at that moment rejects it.
      // The socket is destroyed at once, so the SUBSCRIBE's reply can never arrive first.
      await new Promise<void>((resolve) => subscriber.once("ready", () => {
        subscriber.disconnect();
        (subscriber as unknown as { stream: { destroy(): void } }).stream.destroy();
        resolve();
      }));
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
