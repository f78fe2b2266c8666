import { createConnection, createServer, type Server, type Socket } from "node:net";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { testRedisUrl } from "./redis.ts";
import { startFaultProxy, type FaultProxy } from "./fault-proxy.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startEchoServer(): Promise<{ url: string }> {
  const server: Server = createServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("no address");
  return { url: `tcp://127.0.0.1:${address.port}` };
}

async function connect(proxy: FaultProxy): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  const socket = createConnection({ host: "127.0.0.1", port: proxy.port });
  socket.on("error", () => undefined);
  let received = "";
  socket.on("data", (chunk: Buffer) => (received += chunk.toString()));
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  cleanups.push(() => void socket.destroy());
  return { socket, received: () => received, closed };
}

describe("fault proxy", () => {
  it("passes bytes both ways", async () => {
    const proxy = await startFaultProxy((await startEchoServer()).url);
    cleanups.push(() => proxy.close());
    const client = await connect(proxy);
    client.socket.write("hello");
    await expect.poll(() => client.received(), { timeout: 5_000, interval: 10 }).toBe("hello");
    expect(proxy.connectionCount()).toBe(1);
  });

  it("pause holds bytes and open connections; pass delivers them in order", async () => {
    const proxy = await startFaultProxy((await startEchoServer()).url);
    cleanups.push(() => proxy.close());
    const client = await connect(proxy);
    proxy.setMode({ kind: "pause" });
    client.socket.write("one ");
    client.socket.write("two");
    // Nothing may arrive while paused: prove it by a round trip through a second, unpaused path.
    const control = await startFaultProxy((await startEchoServer()).url);
    cleanups.push(() => control.close());
    const other = await connect(control);
    other.socket.write("x");
    await expect.poll(() => other.received(), { timeout: 5_000, interval: 10 }).toBe("x");
    expect(client.received()).toBe("");
    expect(client.socket.destroyed).toBe(false);
    proxy.setMode({ kind: "pass" });
    await expect.poll(() => client.received(), { timeout: 5_000, interval: 10 }).toBe("one two");
  });

  it("drop resets every connection and refuses new ones until pass", async () => {
    const proxy = await startFaultProxy((await startEchoServer()).url);
    cleanups.push(() => proxy.close());
    const client = await connect(proxy);
    proxy.setMode({ kind: "drop" });
    await client.closed;
    expect(proxy.connectionCount()).toBe(0);
    const refused = createConnection({ host: "127.0.0.1", port: proxy.port });
    const outcome = await new Promise<string>((resolve) => {
      refused.once("data", () => resolve("data"));
      refused.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"));
      refused.once("close", () => resolve("closed"));
      refused.write("ping");
    });
    expect(outcome).not.toBe("data");
    proxy.setMode({ kind: "pass" });
    const again = await connect(proxy);
    again.socket.write("back");
    await expect.poll(() => again.received(), { timeout: 5_000, interval: 10 }).toBe("back");
  });

  it("delay delivers each chunk no sooner than the delay, in order", async () => {
    const proxy = await startFaultProxy((await startEchoServer()).url);
    cleanups.push(() => proxy.close());
    const client = await connect(proxy);
    proxy.setMode({ kind: "delay", delayMs: 150 });
    const sentAt = Date.now();
    client.socket.write("a");
    client.socket.write("b");
    await expect.poll(() => client.received(), { timeout: 5_000, interval: 10 }).toBe("ab");
    // Each direction is delayed: request and echo, at least 2 × 150 ms.
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(290);
  });

  it("stands in front of a real Redis", async () => {
    const proxy = await startFaultProxy(testRedisUrl());
    cleanups.push(() => proxy.close());
    const redis = new Redis(proxy.url, { maxRetriesPerRequest: 1, commandTimeout: 300, lazyConnect: true });
    redis.on("error", () => undefined);
    cleanups.push(() => void redis.disconnect());
    await redis.connect();
    expect(await redis.ping()).toBe("PONG");
    proxy.setMode({ kind: "pause" });
    await expect(redis.ping()).rejects.toThrow(/timed out/i);
    proxy.setMode({ kind: "pass" });
    expect(await redis.ping()).toBe("PONG");
  });
});
