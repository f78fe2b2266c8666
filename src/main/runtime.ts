import type { Logger } from "pino";
import { buildApp } from "../api/build-app.ts";
import type { Config } from "../config/config.ts";
import { connectRedis } from "../redis/connect-redis.ts";
import { openDatabase } from "../storage/database.ts";
import { resolveRedis } from "./resolve-redis.ts";

export type Role = "start" | "api" | "worker" | "migrate";

export interface Runtime {
  /** The API's bound address, when this process serves HTTP. */
  readonly address: string | undefined;
  /** Stops accepting, drains, closes pools and the managed Redis. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Wires config into running parts for one CLI command. Every resource opened
 * here is closed by `stop`, in reverse order.
 */
export async function startRuntime(role: Role, config: Config, logger: Logger, searchPath: string | undefined): Promise<Runtime> {
  const cleanups: Array<() => Promise<void>> = [];
  const stopAll = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (error) {
        logger.error({ err: error }, "error during shutdown");
      }
    }
  };
  try {
    const database = await openDatabase({
      url: config.database.url,
      dataDirectory: config.dataDirectory,
      poolSize: config.database.poolSize,
      statementTimeoutMs: config.database.statementTimeoutMs,
      onPoolError: (error) => logger.warn({ err: error }, "PostgreSQL pool client error"),
    });
    cleanups.push(() => database.close());
    logger.info({ kind: database.kind }, database.kind === "pglite" ? "using embedded PostgreSQL (PGlite): DATABASE_URL is unset" : "using PostgreSQL");
    if (role !== "worker") {
      await database.migrate();
      logger.info("migrations applied");
    }
    if (role === "migrate") return { address: undefined, stop: stopAll };

    const redis = await resolveRedis(config, logger, searchPath);
    cleanups.push(() => redis.stop());
    const onRedisError = (error: Error): void => logger.warn({ err: error }, "Redis connection error");
    const commands = connectRedis(redis.url, "commands", { commandTimeoutMs: config.redis.commandTimeoutMs, name: "sluice", onError: onRedisError });
    cleanups.push(async () => {
      await commands.quit().catch(() => commands.disconnect());
    });

    logger.info({ provider: config.llm.provider, model: config.llm.defaultModel, reason: config.llm.providerReason }, `LLM provider: ${config.llm.provider}`);

    let address: string | undefined;
    if (role === "start" || role === "api") {
      const app = await buildApp(config, {
        logger,
        readinessProbes: [
          { name: "postgres", check: () => database.ping() },
          {
            name: "migrations",
            check: async () => {
              if (!(await database.migrationsApplied())) throw new Error("pending migrations");
            },
          },
          { name: "redis", check: async () => void (await commands.ping()) },
        ],
      });
      cleanups.push(() => app.close());
      address = await app.listen({ port: config.http.port, host: config.http.host });
    }
    return { address, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
