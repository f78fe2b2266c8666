import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase, type Database } from "../../../src/storage/database.ts";
import { createTestDatabase } from "./test-database.ts";

export interface TestDatabase {
  database: Database;
  /** Closes the database and removes PGlite's directory. */
  close(): Promise<void>;
}

/**
 * A migrated database of the test's own on either driver: a fresh database on the shared
 * PostgreSQL server, or PGlite (what `npm start` uses without DATABASE_URL) in a temporary directory.
 *
 * @example const opened = await openTestDatabase("pglite", "search"); afterAll(() => opened.close());
 */
export async function openTestDatabase(kind: "postgres" | "pglite", label: string): Promise<TestDatabase> {
  const directory = kind === "pglite" ? mkdtempSync(join(tmpdir(), `sluice-${label}-`)) : undefined;
  const removeDirectory = (): void => {
    if (directory) rmSync(directory, { recursive: true, force: true });
  };
  let database: Database | undefined;
  try {
    database = await openDatabase({
      url: kind === "postgres" ? await createTestDatabase(label) : undefined,
      dataDirectory: directory ?? "/nonexistent",
      poolSize: 2,
      statementTimeoutMs: 5000,
    });
    await database.migrate();
  } catch (error) {
    await database?.close();
    removeDirectory();
    throw error;
  }
  const opened = database;
  return {
    database: opened,
    close: async () => {
      await opened.close();
      removeDirectory();
    },
  };
}
