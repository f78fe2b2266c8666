import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import pg from "pg";
import { findExecutable } from "../../src/embedded/find-executable.ts";
import { startRedisServer, type RedisServer } from "../../src/embedded/redis-server.ts";
import { startPostgresServer, type PostgresServer } from "../../test/support/servers/postgres-server.ts";

/**
 * PostgreSQL roles: pg_stat_statements counts per role, which tells Sluice's API and worker apart
 * (`start` is the one process of `sluice start`, API and worker together).
 */
export const databaseRoles = { api: "sluice_api", worker: "sluice_worker", start: "sluice_start", polling: "bench_polling" } as const;

export interface BenchServices {
  redis: RedisServer;
  postgres: PostgresServer;
  /** DATABASE_URL for one role and database. */
  databaseUrl(role: string, database: string): string;
  /** A fresh database (each Sluice system gets its own, so tables do not grow across systems); returns its name. */
  createDatabase(name: string): Promise<string>;
  /** Resets pg_stat_statements and Redis INFO commandstats. */
  resetCounters(): Promise<void>;
  /** Statements each role sent since the last reset (top level: BEGIN/COMMIT yes, foreign-key trigger queries no). */
  statementsByRole(): Promise<Record<string, number>>;
  topStatements(role: string, limit: number): Promise<Array<{ calls: number; query: string }>>;
  /** Redis commands since the last reset, by command, excluding the benchmark's own INFO/CLIENT/CONFIG. */
  redisCommands(): Promise<Record<string, number>>;
  /** Redis client connections by CLIENT SETNAME name ("" = unnamed). */
  redisConnections(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

export async function startBenchServices(): Promise<BenchServices> {
  const executable = findExecutable("redis-server", process.env.PATH);
  if (!executable) throw new Error("redis-server not found (apt-get install -y redis-server)");
  const redisDirectory = mkdtempSync(join(tmpdir(), "sluice-bench-redis-"));
  // No persistence for every system alike: the AOF would cost each design the same fsync-free write.
  const [redis, postgres] = await Promise.all([
    // A unix socket too: `npm start`'s managed server has one (src/main/resolve-redis.ts).
    startRedisServer({ executable, dataDirectory: redisDirectory, appendOnly: false, supervise: false, unixSocket: join(redisDirectory, "redis.sock") }),
    startPostgresServer({ settings: { max_connections: "500", "pg_stat_statements.track": "top", "pg_stat_statements.max": "5000" } }),
  ]);
  // Whatever happens from here on, the servers must not outlive this process.
  process.once("exit", () => {
    if (postgres.pid !== undefined) postgres.kill("SIGQUIT");
  });
  let admin: pg.Client;
  try {
    admin = await connectWhenReady(postgres.url);
  } catch (error) {
    await Promise.all([redis.stop(), postgres.stop()]);
    throw error;
  }
  await admin.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
  for (const role of Object.values(databaseRoles)) await admin.query(`CREATE ROLE ${role} LOGIN SUPERUSER`);
  await admin.query("CREATE DATABASE bench_polling OWNER bench_polling");
  const monitor = new Redis(redis.url, { connectionName: "bench-monitor" });
  const ownCommands = new Set(["info", "client|list", "config|resetstat", "client|setname", "client|setinfo"]);

  return {
    redis,
    postgres,
    databaseUrl: (role, database) => `postgres://${role}@127.0.0.1:${postgres.port}/${database}`,
    createDatabase: async (name) => {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain database name: ${name}`);
      await admin.query(`CREATE DATABASE ${name} OWNER ${databaseRoles.api}`);
      return name;
    },
    resetCounters: async () => {
      await admin.query("SELECT pg_stat_statements_reset()");
      await monitor.config("RESETSTAT");
    },
    statementsByRole: async () => {
      const { rows } = await admin.query<{ role: string; calls: string }>(
        "SELECT r.rolname AS role, sum(s.calls) AS calls FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid GROUP BY r.rolname",
      );
      return Object.fromEntries(rows.map((row) => [row.role, Number(row.calls)]));
    },
    topStatements: async (role, limit) => {
      const { rows } = await admin.query<{ calls: string; query: string }>(
        "SELECT s.calls, s.query FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = $1 ORDER BY s.calls DESC LIMIT $2",
        [role, limit],
      );
      return rows.map((row) => ({ calls: Number(row.calls), query: row.query.replace(/\s+/g, " ").slice(0, 160) }));
    },
    redisCommands: async () => {
      const text = await monitor.info("commandstats");
      const counts: Record<string, number> = {};
      for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
        const name = match[1] ?? "";
        if (!ownCommands.has(name)) counts[name] = Number(match[2]);
      }
      return counts;
    },
    redisConnections: async () => {
      const list = (await monitor.client("LIST")) as string;
      const counts: Record<string, number> = {};
      for (const line of list.split("\n")) {
        if (line === "") continue;
        const name = /(?:^| )name=(\S*)/.exec(line)?.[1] ?? "";
        if (name === "bench-monitor") continue;
        counts[name] = (counts[name] ?? 0) + 1;
      }
      return counts;
    },
    stop: async () => {
      monitor.disconnect();
      await admin.end().catch(() => undefined);
      await Promise.all([redis.stop(), postgres.stop()]);
      rmSync(redisDirectory, { recursive: true, force: true });
    },
  };
}

/** The port opens a moment before PostgreSQL accepts logins (57P03 "starting up"): retry until a deadline. */
async function connectWhenReady(url: string): Promise<pg.Client> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      return client;
    } catch (error) {
      await client.end().catch(() => undefined);
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
