import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { findExecutable } from "../src/embedded/find-executable.ts";
import { startRedisServer, type RedisServer } from "../src/embedded/redis-server.ts";
import { becomeRunOwner, endRun, recordLeftover, sweepLeftovers } from "./support/servers/leftovers.ts";
import { startPostgresServer, type PostgresServer } from "./support/servers/postgres-server.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** A shared redis-server for the run; every test uses its own key prefix (see test/support/servers/redis.ts). */
    redisUrl: string;
    /** Superuser URL of a shared PostgreSQL; every test file creates its own database (test/support/servers/test-database.ts). */
    postgresUrl: string;
    redisExecutable: string;
  }
}

let redis: RedisServer | undefined;
let postgres: PostgresServer | undefined;
let redisDirectory: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  // A run stopped before its teardown left its servers and Sluice processes running: end them first.
  becomeRunOwner();
  const ended = sweepLeftovers();
  if (ended > 0) console.log(`ended ${ended} process(es) left running by an earlier test run that was stopped before its teardown`);
  const redisExecutable = findExecutable("redis-server", process.env.PATH);
  if (!redisExecutable) throw new Error("redis-server not found: run `npm test`, which installs it, or apt-get install -y redis-server");
  redisDirectory = mkdtempSync(join(tmpdir(), "sluice-test-redis-"));
  [redis, postgres] = await Promise.all([
    startRedisServer({ executable: redisExecutable, dataDirectory: redisDirectory, appendOnly: false, supervise: false }),
    startPostgresServer(),
  ]);
  recordLeftover({ pid: redis.pid(), directory: redisDirectory });
  project.provide("redisUrl", redis.url);
  project.provide("postgresUrl", postgres.url);
  project.provide("redisExecutable", redisExecutable);
}

export async function teardown(): Promise<void> {
  await Promise.all([redis?.stop(), postgres?.stop()]);
  if (redisDirectory) rmSync(redisDirectory, { recursive: true, force: true });
  const leaked = endRun();
  if (leaked > 0) console.log(`ended ${leaked} process(es) that a failed test left running`);
}
