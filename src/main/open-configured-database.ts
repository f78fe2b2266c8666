import type { MessagePort } from "node:worker_threads";
import type { Logger } from "pino";
import type { Config } from "../config/config.ts";
import type { SluiceMetrics } from "../metrics/create-metrics.ts";
import { openDatabase, type Database } from "../storage/database.ts";

/**
 * The database the config names (PostgreSQL at DATABASE_URL, else embedded PGlite in
 * DATA_DIR, on a thread of its own), with pool client errors counted and logged: one recipe for
 * every process and thread. A thread other than the one that opened PGlite passes the port it got.
 */
export async function openConfiguredDatabase(config: Config, metrics: SluiceMetrics, logger: Logger, embeddedPort?: MessagePort): Promise<Database> {
  return await openDatabase({
    url: config.database.url,
    ...(embeddedPort === undefined ? {} : { embeddedPort }),
    dataDirectory: config.dataDirectory,
    poolSize: config.database.poolSize,
    statementTimeoutMs: config.database.statementTimeoutMs,
    onPoolError: (error) => {
      metrics.postgresErrors.inc();
      logger.warn({ err: error }, config.database.url === undefined ? "embedded database thread error" : "PostgreSQL pool client error");
    },
  });
}
