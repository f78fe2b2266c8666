import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { connect } from "node:net";
import { Writable } from "node:stream";
import { Redis } from "ioredis";
import { afterEach, describe, expect, inject, it } from "vitest";
import { loadConfig } from "../config/config.ts";
import { ioredisAddress } from "../redis/connect-redis.ts";
import { createLogger } from "../logging/create-logger.ts";
import { resolveRedis, type ResolvedRedis } from "./resolve-redis.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startManaged(dataDirectory: string): Promise<{ redis: ResolvedRedis; logs: () => string }> {
  let logs = "";
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs += chunk.toString();
      done();
    },
  });
  const config = loadConfig({ DATA_DIR: dataDirectory, AUTH_SECRET: "x".repeat(32) }, "/");
  const redis = await resolveRedis(config, createLogger({ level: "debug", destination }), dirname(inject("redisExecutable")));
  cleanups.push(() => redis.stop());
  return { redis, logs: () => logs };
}

/** Sends RESP inline commands on a fresh socket (a TCP port or a unix socket's path), as any local process could, and returns the first `lines` reply lines. */
async function rawExchange(address: number | string, commands: string, lines: number): Promise<string[]> {
  return await new Promise((resolve, reject) => {
    const socket = typeof address === "number" ? connect(address, "127.0.0.1", () => socket.write(commands)) : connect(address, () => socket.write(commands));
    let received = "";
    socket.on("data", (data: Buffer) => {
      received += data.toString();
      const replies = received.split("\r\n").filter(Boolean);
      if (replies.length >= lines) {
        socket.destroy();
        resolve(replies.slice(0, lines));
      }
    });
    socket.once("error", reject);
  });
}

describe("the managed redis-server (REDIS_URL unset)", () => {
  it("requires a generated password kept 0600 in a 0700 DATA_DIR, hands it out in the URL and nowhere else", async () => {
    const root = mkdtempSync(join(tmpdir(), "sluice-managed-"));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const dataDirectory = join(root, "data");
    const { redis, logs } = await startManaged(dataDirectory);
    const passwordFile = join(dataDirectory, "redis-password");
    const password = readFileSync(passwordFile, "utf8");
    expect(password).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(passwordFile).mode & 0o777).toBe(0o600);
    expect(statSync(dataDirectory).mode & 0o777).toBe(0o700);
    expect(statSync(join(dataDirectory, "redis")).mode & 0o777).toBe(0o700);
    // Sluice's own processes use a unix socket in the data directory, 0700 like it; the port stays for other tools.
    const socketPath = join(dataDirectory, "redis", "redis.sock");
    expect(redis.url).toBe(`unix://${socketPath}?password=${password}`);
    expect(statSync(socketPath).mode & 0o777).toBe(0o700);
    const port = Number(/"port":(\d+)/.exec(logs())?.[1]);
    expect(port).toBeGreaterThan(0);

    // Any local user can reach a loopback port: without the password, nothing but AUTH works, on either.
    for (const address of [port, socketPath]) {
      expect(await rawExchange(address, "PING\r\nGET anything\r\n", 2)).toEqual(["-NOAUTH Authentication required.", "-NOAUTH Authentication required."]);
      expect((await rawExchange(address, `AUTH ${"0".repeat(64)}\r\n`, 1))[0]).toMatch(/^-WRONGPASS/);
      expect(await rawExchange(address, `AUTH ${password}\r\nPING\r\n`, 2)).toEqual(["+OK", "+PONG"]);
    }

    const client = new Redis(ioredisAddress(redis.url));
    cleanups.push(() => client.disconnect());
    expect(await client.ping()).toBe("PONG");
    expect(await client.client("INFO")).toMatch(/laddr=\/|addr=\/|unix/);

    // Not on the server's command line (readable by every local user) and not in the logs.
    const pid = /"redisPid":(\d+)/.exec(logs())?.[1];
    expect(pid).toBeDefined();
    expect(readFileSync(`/proc/${pid}/cmdline`, "utf8")).not.toContain(password);
    expect(logs()).not.toContain(password);
  });

  it("keeps the same password across restarts, so a restarted process finds its data", async () => {
    const root = mkdtempSync(join(tmpdir(), "sluice-managed-"));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const first = await startManaged(root);
    await first.redis.stop();
    const second = await startManaged(root);
    expect(new URL(second.redis.url).searchParams.get("password")).toBe(new URL(first.redis.url).searchParams.get("password"));
  });

  it("listens on TCP only when the data directory is too deep for a unix socket's path", async () => {
    const root = mkdtempSync(join(tmpdir(), "sluice-managed-"));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const { redis } = await startManaged(join(root, "d".repeat(100)));
    expect(redis.url).toMatch(/^redis:\/\/:[0-9a-f]{64}@127\.0\.0\.1:\d+$/);
    const client = new Redis(redis.url);
    cleanups.push(() => client.disconnect());
    expect(await client.ping()).toBe("PONG");
  });
});
