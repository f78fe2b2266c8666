import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { inject, onTestFinished } from "vitest";

/** A key prefix no other test uses, so tests can share one redis-server. */
export function uniqueKeyPrefix(label = "t"): string {
  return `test:${label}:${randomBytes(6).toString("hex")}:`;
}

export function testRedisUrl(): string {
  return inject("redisUrl");
}

/** An ioredis client to the test server, closed when the current test ends. */
export function connectTestRedis(): Redis {
  const client = new Redis(testRedisUrl(), { maxRetriesPerRequest: null, lazyConnect: false });
  onTestFinished(() => {
    client.disconnect();
  });
  return client;
}
