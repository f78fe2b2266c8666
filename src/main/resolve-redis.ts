import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Logger } from "pino";
import type { Config } from "../config/config.ts";
import { ensureRedisServer } from "../embedded/ensure-redis-server.ts";
import { ensurePrivateDirectory, readOrCreateSecret } from "../embedded/private-files.ts";
import { startRedisServer } from "../embedded/redis-server.ts";

export interface ResolvedRedis {
  readonly url: string;
  readonly managed: boolean;
  stop(): Promise<void>;
}

/**
 * REDIS_URL when set; otherwise a supervised redis-server child with AOF under
 * the data directory, on loopback and a unix socket there (mode 0700), with a password generated once and kept in
 * `DATA_DIR/redis-password` (mode 0600, DATA_DIR 0700): other local users can
 * reach a loopback port, so the server refuses clients that do not AUTH.
 * The returned `url` carries the password; log `port`, never the URL.
 */
export async function resolveRedis(config: Config, logger: Logger, searchPath: string | undefined): Promise<ResolvedRedis> {
  if (config.redis.url !== undefined) return { url: config.redis.url, managed: false, stop: async () => {} };
  const executable = ensureRedisServer({ searchPath, logger, isRoot: process.getuid?.() === 0 });
  ensurePrivateDirectory(config.dataDirectory);
  const password = readOrCreateSecret(join(config.dataDirectory, "redis-password"), () => randomBytes(32).toString("hex"), (secret) => /^[0-9a-f]{64}$/.test(secret));
  const dataDirectory = join(config.dataDirectory, "redis");
  // A unix socket when its path fits (sun_path holds 107 bytes): Sluice's processes on this machine
  // talk to it with less CPU per command than over TCP (BENCHMARKS.md, eleventh session).
  const socketPath = join(dataDirectory, "redis.sock");
  const unixSocket = Buffer.byteLength(socketPath) <= 100 ? socketPath : undefined;
  const server = await startRedisServer({
    executable,
    password,
    dataDirectory,
    ...(unixSocket === undefined ? {} : { unixSocket }),
    appendOnly: true,
    supervise: true,
    onLog: (line) => logger.debug({ component: "redis-server" }, line),
    onUnexpectedExit: (code, signal) => logger.error({ code, signal }, "managed redis-server exited; restarting it"),
  });
  logger.info({ host: "127.0.0.1", port: server.port, socket: unixSocket, redisPid: server.pid(), dataDirectory }, "started managed redis-server (REDIS_URL is unset; password in DATA_DIR/redis-password)");
  return {
    url: server.socketUrl ?? server.url,
    managed: true,
    stop: async () => {
      await server.stop();
      logger.info("stopped managed redis-server");
    },
  };
}
