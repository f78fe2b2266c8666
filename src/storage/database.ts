import { createHash } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { MessagePort } from "node:worker_threads";
import type { PGlite } from "@electric-sql/pglite";
import { sql, type SQL } from "drizzle-orm";
import { readMigrationFiles } from "drizzle-orm/migrator";
import { drizzle as drizzleNodePostgres } from "drizzle-orm/node-postgres";
import { migrate as migrateNodePostgres } from "drizzle-orm/node-postgres/migrator";
import type { PgDatabase, PgDialect, PgQueryResultHKT } from "drizzle-orm/pg-core";
import pg from "pg";
import type { EmbeddedDatabase } from "../embedded/pglite-thread.ts";
import { DatabaseUnavailableError } from "./database-errors.ts";
import * as schema from "./schema.ts";

/**
 * A pg.Pool whose promise-form `connect` (what drizzle's transactions use) turns a
 * connect failure or timeout into DatabaseUnavailableError, so the API answers 503.
 */
class GuardedPool extends pg.Pool {
  override connect(): Promise<pg.PoolClient>;
  override connect(callback: (error: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void): void;
  override connect(
    callback?: (error: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void,
  ): Promise<pg.PoolClient> | void {
    if (callback) {
      super.connect(callback);
      return;
    }
    return super.connect().catch((error: unknown) => {
      throw new DatabaseUnavailableError(error);
    });
  }
}

export type Schema = typeof schema;
/** The query builder both drivers share; modules depend on this, never on a driver. */
export type Db = PgDatabase<PgQueryResultHKT, Schema>;

export interface Database {
  readonly db: Db;
  readonly kind: "pglite" | "postgres";
  migrate(): Promise<void>;
  /** True when every migration shipped with this build is recorded as applied. */
  migrationsApplied(): Promise<boolean>;
  /** A cheap round trip for readiness checks. */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** Embedded PGlite only, in the process that opened it: a port another thread opens it on (`embeddedPort`). */
  portForThread?: () => MessagePort;
}

export interface DatabaseOptions {
  /** PostgreSQL URL; undefined selects embedded PGlite under `dataDirectory`, on a thread of its own. */
  url: string | undefined;
  /** With no URL: the embedded database another thread of this process opened (its `portForThread`). */
  embeddedPort?: MessagePort;
  dataDirectory: string;
  poolSize: number;
  statementTimeoutMs: number;
  /** Called for errors on idle pool clients (e.g. the server restarted) and of the embedded database's thread; they must never crash the process. */
  onPoolError?: (error: Error) => void;
}

const migrationsFolder = fileURLToPath(new URL("./migrations", import.meta.url));

/**
 * The node-postgres pool's settings. Connections beyond the busiest moment close after 30 s idle,
 * but two stay open for good: a new connection costs about 14 ms before its first statement
 * (a backend forked and started, catalogs read, the named statements prepared again; more with
 * password authentication), which a message after a quiet half-minute would otherwise pay on the
 * accept and again on the worker's claim (BENCHMARKS.md, eleventh session). TCP keepalive finds
 * those long-idle connections dead when a middlebox dropped them, instead of a query hanging.
 */
export function poolConfig(options: DatabaseOptions & { url: string }): pg.PoolConfig {
  return {
    connectionString: options.url,
    max: options.poolSize,
    min: Math.min(options.poolSize, 2),
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 30_000,
    statement_timeout: options.statementTimeoutMs,
    query_timeout: options.statementTimeoutMs + 1000,
    connectionTimeoutMillis: options.statementTimeoutMs,
  };
}

/** Opens PostgreSQL through a pool, or embedded PGlite when no URL is configured. Same schema and migrations for both. */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  const expectedMigrations = readMigrationFiles({ migrationsFolder }).length;
  const countApplied = async (db: Db): Promise<number> => {
    try {
      const rows = await selectRows<{ count: number }>(db, sql`select count(*)::int as count from drizzle.__drizzle_migrations`);
      return rows[0]?.count ?? 0;
    } catch {
      return 0; // the table does not exist before the first migration
    }
  };
  /** The same Database over either driver; `client` answers the readiness ping. */
  const opened = (kind: Database["kind"], db: Db, client: { query(text: string): Promise<unknown> }, migrate: () => Promise<void>, close: () => Promise<void>): Database => ({
    db,
    kind,
    migrate,
    migrationsApplied: async () => (await countApplied(db)) >= expectedMigrations,
    ping: async () => {
      await client.query("select 1");
    },
    close,
  });

  if (options.url === undefined) {
    // Loaded only when embedded: a process given DATABASE_URL never loads PGlite.
    const [embeddedThread, { drizzle: drizzlePglite }, { migrate: migratePglite }] = await Promise.all([
      import("../embedded/pglite-thread.ts"),
      import("drizzle-orm/pglite"),
      import("drizzle-orm/pglite/migrator"),
    ]);
    let embedded: EmbeddedDatabase;
    if (options.embeddedPort === undefined) {
      const directory = join(options.dataDirectory, "pglite");
      // 0700, like DATA_DIR itself (src/embedded/private-files.ts): the database files are private.
      mkdirSync(directory, { recursive: true, mode: 0o700 });
      embedded = await embeddedThread.startEmbeddedDatabase(directory, (error) => options.onPoolError?.(error));
    } else {
      embedded = embeddedThread.connectEmbeddedDatabase(options.embeddedPort);
    }
    // drizzle calls only `query` and `transaction` of its PGlite client: the thread's client answers both.
    const db = drizzlePglite({ client: embedded.client as unknown as PGlite, schema });
    const database = opened("pglite", db, embedded.client, async () => migratePglite(db, { migrationsFolder }), () => embedded.close());
    return embedded.portForThread === undefined ? database : { ...database, portForThread: embedded.portForThread };
  }

  const pool = new GuardedPool(poolConfig({ ...options, url: options.url }));
  pool.on("error", (error) => options.onPoolError?.(error));
  const db = drizzleNodePostgres({ client: pool, schema });
  return opened("postgres", db, pool, async () => migrateNodePostgres(db, { migrationsFolder }), async () => pool.end());
}

/** Raw SQL rows from either driver (both return `{ rows }` from execute). */
export async function selectRows<Row>(db: Db, query: SQL): Promise<Row[]> {
  const result: unknown = await db.execute(query);
  return (result as { rows: Row[] }).rows;
}

/**
 * `selectRows` as a named (prepared) statement where the driver can prepare one, a node-postgres
 * pool: PostgreSQL then parses and plans it once per connection instead of on every call, which
 * for the accept statement halves the server's CPU and the round trip (BENCHMARKS.md, issue 13).
 * Anywhere else (PGlite, a transaction's client) it runs as `selectRows` does. The name carries a
 * hash of the text, so a different statement (another model allow-list) never reuses it.
 */
export async function selectRowsPrepared<Row>(db: Db, name: string, query: SQL): Promise<Row[]> {
  const client = (db as { $client?: unknown }).$client;
  if (!(client instanceof pg.Pool)) return selectRows<Row>(db, query);
  const { sql: text, params } = (db as unknown as { dialect: PgDialect }).dialect.sqlToQuery(query);
  const result = await client.query({ name: statementName(name, text), text, values: params });
  return result.rows as Row[];
}

// A process prepares a handful of statement texts (one per call site and configuration): each is hashed once.
const textHashes = new Map<string, string>();
function statementName(name: string, text: string): string {
  let hash = textHashes.get(text);
  if (hash === undefined) {
    hash = createHash("sha256").update(text).digest("hex").slice(0, 12);
    textHashes.set(text, hash);
  }
  return `${name}_${hash}`;
}
