import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { inject } from "vitest";
import { startRedisServer, type RedisServer } from "../../../src/embedded/redis-server.ts";
import { recordLeftover } from "./leftovers.ts";

export interface PrivateRedis {
  readonly url: string;
  readonly port: number;
  server(): RedisServer;
  pid(): number;
  /** SIGKILL: no AOF flush, no goodbye to clients. */
  kill(): Promise<void>;
  /** Starts again on the same port and data directory (AOF replayed when on). */
  restart(): Promise<void>;
  /** A command connection for the test itself (CLIENT KILL, INFO, job hashes). */
  admin(): Redis;
  stop(): Promise<void>;
}

/**
 * A redis-server of the test's own, so it may be killed, paused or have its
 * clients killed without touching the shared test server other files use.
 */
export async function startPrivateRedis(options: {
  appendOnly: boolean;
  /** Redis `maxmemory` (e.g. "64mb"); the policy is always noeviction, the production setting (docs/operations.md). */
  maxmemory?: string;
}): Promise<PrivateRedis> {
  const dataDirectory = mkdtempSync(join(tmpdir(), "sluice-fault-redis-"));
  const start = (port?: number): Promise<RedisServer> =>
    startRedisServer({ executable: inject("redisExecutable"), dataDirectory, appendOnly: options.appendOnly, supervise: false,
      extraArguments: ["--maxmemory", options.maxmemory ?? "0", "--maxmemory-policy", "noeviction"],
      ...(port === undefined ? {} : { port }),
    });
  let server = await start();
  recordLeftover({ pid: server.pid(), directory: dataDirectory });
  const port = server.port;
  let adminClient: Redis | undefined;
  const pid = (): number => {
    const value = server.pid();
    if (value === undefined) throw new Error("redis-server is not running");
    return value;
  };
  return {
    url: server.url,
    port,
    server: () => server,
    pid,
    kill: async () => {
      const current = pid();
      process.kill(current, "SIGCONT");
      process.kill(current, "SIGKILL");
      // Resolves on the child's exit event (the SIGTERM it sends after our SIGKILL finds nothing to stop).
      await server.stop();
    },
    restart: async () => {
      server = await start(port);
      recordLeftover({ pid: server.pid() });
    },
    admin: () => {
      if (!adminClient) {
        adminClient = new Redis(server.url, { maxRetriesPerRequest: 3, connectionName: "fault-test-admin" });
        adminClient.on("error", () => undefined);
      }
      return adminClient;
    },
    stop: async () => {
      adminClient?.disconnect();
      const current = server.pid();
      if (current !== undefined) process.kill(current, "SIGCONT");
      await server.stop(3_000);
      rmSync(dataDirectory, { recursive: true, force: true });
    },
  };
}
