import type { Logger } from "pino";
import type { Config } from "../config/config.ts";
import type { SluiceMetrics } from "../metrics/create-metrics.ts";
import { openDatabase, type Database } from "../storage/database.ts";

/**
 * The database the config names (PostgreSQL at DATABASE_URL, else embedded PGlite in
 * DATA_DIR), with pool client errors counted and logged: one recipe for every process and thread.
 */
export async function openConfiguredDatabase(config: Config, metrics: SluiceMetrics, logger: Logger): Promise<Database> {
  return await openDatabase({
    url: config.database.url,
    dataDirectory: config.dataDirectory,
    poolSize: config.database.poolSize,
    statementTimeoutMs: config.database.statementTimeoutMs,
    onPoolError: (error) => {
      metrics.postgresErrors.inc();
      logger.warn({ err: error }, "PostgreSQL pool client error");
    },
  });
}
