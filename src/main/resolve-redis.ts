import { join } from "node:path";
import type { Logger } from "pino";
import type { Config } from "../config/config.ts";
import { ensureRedisServer } from "../embedded/ensure-redis-server.ts";
import { startRedisServer } from "../embedded/redis-server.ts";

export interface ResolvedRedis {
  readonly url: string;
  readonly managed: boolean;
  stop(): Promise<void>;
}

/** REDIS_URL when set; otherwise a supervised redis-server child with AOF under the data directory. */
export async function resolveRedis(config: Config, logger: Logger, searchPath: string | undefined): Promise<ResolvedRedis> {
  if (config.redis.url !== undefined) return { url: config.redis.url, managed: false, stop: async () => {} };
  const executable = ensureRedisServer({ searchPath, logger, isRoot: process.getuid?.() === 0 });
  const server = await startRedisServer({
    executable,
    dataDirectory: join(config.dataDirectory, "redis"),
    appendOnly: true,
    supervise: true,
    onLog: (line) => logger.debug({ component: "redis-server" }, line),
    onUnexpectedExit: (code, signal) => logger.error({ code, signal }, "managed redis-server exited; restarting it"),
  });
  logger.info({ url: server.url, pid: server.pid(), dataDirectory: join(config.dataDirectory, "redis") }, "started managed redis-server (REDIS_URL is unset)");
  return {
    url: server.url,
    managed: true,
    stop: async () => {
      await server.stop();
      logger.info("stopped managed redis-server");
    },
  };
}
