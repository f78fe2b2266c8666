import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { createTestDatabase } from "../../test/support/servers/test-database.ts";
import { acceptTurn, type TurnInput } from "./accept-turn.ts";
import { openDatabase, type Database, type DatabaseOptions } from "./database.ts";
import { conversations, users } from "./schema.ts";

/** Opens, migrates, runs `body`, closes. */
async function withDatabase(options: DatabaseOptions, body: (database: Database) => Promise<void>): Promise<void> {
  const database = await openDatabase(options);
  try {
    await database.migrate();
    await body(database);
  } finally {
    await database.close();
  }
}

async function turnsFor(database: Database, count: number): Promise<TurnInput[]> {
  const [user] = await database.db.insert(users).values({ email: `u${count}@example.test`, passwordHash: "x" }).returning();
  if (!user) throw new Error("no user");
  const created = await database.db.insert(conversations).values(Array.from({ length: count }, () => ({ userId: user.id }))).returning();
  return created.map((conversation, index) => ({
    conversationId: conversation.id,
    userId: user.id,
    userContent: "hello",
    taskId: `task_${index}_${conversation.id}`,
    requestedModel: undefined,
    models: { defaultModel: "m", allowed: ["m"] },
    activeLimit: 2,
    placement: { kind: "append" },
  }));
}

describe("acceptTurn's per-user limit", () => {
  it("admits exactly the limit of parallel turns on PostgreSQL", async () => {
    await withDatabase({ url: await createTestDatabase("turns"), dataDirectory: "/nonexistent", poolSize: 24, statementTimeoutMs: 5000 }, async (database) => {
      // Four users' bursts at once (a single burst slipped through about two times in three before the fix).
      const users = await Promise.all([12, 13, 14, 15].map((count) => turnsFor(database, count)));
      const outcomes = await Promise.all(users.map((turns) => Promise.all(turns.map((turn) => acceptTurn(database.db, turn)))));
      for (const [index, userOutcomes] of outcomes.entries()) {
        expect(userOutcomes.filter((outcome) => outcome.kind === "accepted"), `user ${index}`).toHaveLength(2);
        expect(userOutcomes.filter((outcome) => outcome.kind === "too-many-generations")).toHaveLength(userOutcomes.length - 2);
      }
    });
  });

  it("works the same on embedded PGlite (the locking function exists there too)", async () => {
    const directory = mkdtempSync(join(tmpdir(), "sluice-turns-"));
    try {
      await withDatabase({ url: undefined, dataDirectory: directory, poolSize: 1, statementTimeoutMs: 5000 }, async (database) => {
        const outcomes = await Promise.all((await turnsFor(database, 3)).map((turn) => acceptTurn(database.db, turn)));
        expect(outcomes.map((outcome) => outcome.kind).sort()).toEqual(["accepted", "accepted", "too-many-generations"]);
      });
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

describe("acceptTurn on a PostgreSQL pool", () => {
  it("runs as a named statement (parsed and planned once per connection), and the same on every call", async () => {
    await withDatabase({ url: await createTestDatabase("turns_named"), dataDirectory: "/nonexistent", poolSize: 2, statementTimeoutMs: 5000 }, async (database) => {
      const pool = (database.db as unknown as { $client: { query: (...args: unknown[]) => unknown } }).$client;
      const query = vi.spyOn(pool, "query");
      const turns = await turnsFor(database, 3);
      for (const turn of turns) expect((await acceptTurn(database.db, { ...turn, activeLimit: 10 })).kind).toBe("accepted");
      const names = query.mock.calls.map(([config]) => (config as { name?: string }).name).filter((name) => name?.startsWith("sluice_accept_turn"));
      expect(names).toHaveLength(3);
      expect(new Set(names).size).toBe(1);
      expect(names[0]).toMatch(/^sluice_accept_turn_[0-9a-f]{12}$/);
    });
  });
});
