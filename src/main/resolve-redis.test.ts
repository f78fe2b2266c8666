import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { connect } from "node:net";
import { Writable } from "node:stream";
import { Redis } from "ioredis";
import { afterEach, describe, expect, inject, it } from "vitest";
import { loadConfig } from "../config/config.ts";
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

/** Sends RESP inline commands on a fresh socket, as any local process could, and returns the first `lines` reply lines. */
async function rawExchange(port: number, commands: string, lines: number): Promise<string[]> {
  return await new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(commands));
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
    const url = new URL(redis.url);
    expect(decodeURIComponent(url.password)).toBe(password);

    // Any local user can reach a loopback port: without the password, nothing but AUTH works.
    expect(await rawExchange(Number(url.port), "PING\r\nGET anything\r\n", 2)).toEqual(["-NOAUTH Authentication required.", "-NOAUTH Authentication required."]);
    expect((await rawExchange(Number(url.port), `AUTH ${"0".repeat(64)}\r\n`, 1))[0]).toMatch(/^-WRONGPASS/);
    expect(await rawExchange(Number(url.port), `AUTH ${password}\r\nPING\r\n`, 2)).toEqual(["+OK", "+PONG"]);

    const client = new Redis(redis.url);
    cleanups.push(() => client.disconnect());
    expect(await client.ping()).toBe("PONG");

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
    expect(new URL(second.redis.url).password).toBe(new URL(first.redis.url).password);
  });
});
