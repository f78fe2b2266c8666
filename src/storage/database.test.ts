import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/support/servers/test-database.ts";
import { openDatabase, poolConfig, selectRows, type Database } from "./database.ts";
import { conversations, messages, users } from "./schema.ts";

async function exerciseSchema(database: Database): Promise<void> {
  expect(await database.migrationsApplied()).toBe(false);
  await database.migrate();
  expect(await database.migrationsApplied()).toBe(true);
  await database.migrate(); // idempotent
  const { db } = database;
  const [user] = await db.insert(users).values({ email: "a@example.com", passwordHash: "x" }).returning();
  if (!user) throw new Error("no user");
  await expect(db.insert(users).values({ email: "a@example.com", passwordHash: "y" })).rejects.toThrow();
  const [conversation] = await db.insert(conversations).values({ userId: user.id }).returning();
  if (!conversation) throw new Error("no conversation");
  const active = { conversationId: conversation.id, userId: user.id, role: "assistant" as const, status: "streaming" as const };
  await db.insert(messages).values({ ...active, taskId: "t1" });
  // The partial unique index allows one generating reply per conversation.
  await expect(db.insert(messages).values({ ...active, taskId: "t2" })).rejects.toThrow();
  await expect(db.insert(messages).values({ ...active, taskId: "t3", status: "done" as "completed" })).rejects.toThrow();
  const indexes = await selectRows<{ indexname: string }>(db, sql`select indexname from pg_indexes where tablename = 'messages'`);
  expect(indexes.map((row) => row.indexname)).toEqual(
    expect.arrayContaining(["messages_conversation_idx", "messages_one_active_per_conversation", "messages_active_idx"]),
  );
}

describe("the PostgreSQL pool", () => {
  it("keeps two connections open however long idle (a new one costs ~14 ms), closes the rest after 30 s, and probes idle ones", () => {
    const config = poolConfig({ url: "postgres://db/sluice", dataDirectory: "/nonexistent", poolSize: 10, statementTimeoutMs: 5000 });
    expect(config).toMatchObject({ max: 10, min: 2, idleTimeoutMillis: 30_000, keepAlive: true });
    expect(poolConfig({ url: "postgres://db/sluice", dataDirectory: "/nonexistent", poolSize: 1, statementTimeoutMs: 5000 }).min).toBe(1);
  });
});

describe("openDatabase", () => {
  it("migrates and enforces the schema on real PostgreSQL", async () => {
    const database = await openDatabase({
      url: await createTestDatabase("schema"),
      dataDirectory: "/nonexistent",
      poolSize: 2,
      statementTimeoutMs: 5000,
    });
    try {
      expect(database.kind).toBe("postgres");
      await exerciseSchema(database);
    } finally {
      await database.close();
    }
  });

  it("migrates and enforces the same schema on embedded PGlite, persisted across reopen", async () => {
    const directory = mkdtempSync(join(tmpdir(), "sluice-pglite-"));
    const options = { url: undefined, dataDirectory: directory, poolSize: 1, statementTimeoutMs: 5000 };
    const database = await openDatabase(options);
    try {
      expect(database.kind).toBe("pglite");
      await exerciseSchema(database);
    } finally {
      await database.close();
    }
    const reopened = await openDatabase(options);
    try {
      expect(await reopened.migrationsApplied()).toBe(true);
      const rows = await reopened.db.select().from(users);
      expect(rows.map((row) => row.email)).toEqual(["a@example.com"]);
    } finally {
      await reopened.close();
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
