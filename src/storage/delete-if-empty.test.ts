import { sql } from "drizzle-orm";
import { describe, expect, it, vi } from "vitest";
import { createTestDatabase } from "../../test/support/servers/test-database.ts";
import { acceptTurn } from "./accept-turn.ts";
import { createConversationsRepository } from "./conversations-repository.ts";
import { openDatabase, selectRows } from "./database.ts";
import { users } from "./schema.ts";

describe("ConversationsRepository.deleteIfEmpty", () => {
  it("deletes an empty conversation, keeps one with messages, and waits for a turn being stored to keep it too", async () => {
    const database = await openDatabase({ url: await createTestDatabase("delete-if-empty"), dataDirectory: "/nonexistent", poolSize: 4, statementTimeoutMs: 5000 });
    try {
      await database.migrate();
      const { db } = database;
      const repository = createConversationsRepository(db);
      const [user] = await db.insert(users).values({ email: "empty@example.test", passwordHash: "x" }).returning();
      if (!user) throw new Error("no user");
      const turn = (conversationId: string, taskId: string) => ({
        conversationId, userId: user.id, userContent: "hello", taskId, requestedModel: undefined,
        models: { defaultModel: "m", allowed: ["m"] }, activeLimit: 5, placement: { kind: "append" as const },
      });

      const empty = await repository.create(user.id, null);
      expect(await repository.deleteIfEmpty(user.id, empty.id)).toBe(true);
      expect(await repository.find(user.id, empty.id)).toBeUndefined();

      const used = await repository.create(user.id, null);
      expect((await acceptTurn(db, turn(used.id, "task_used"))).kind).toBe("accepted");
      expect(await repository.deleteIfEmpty(user.id, used.id)).toBe(false);
      expect(await repository.find(user.id, used.id)).toBeDefined();

      // A concurrent request's turn, stored in a transaction that has not committed when the delete starts.
      const racing = await repository.create(user.id, null);
      let deleting: Promise<boolean> | undefined;
      await db.transaction(async (transaction) => {
        expect((await acceptTurn(transaction as unknown as typeof db, turn(racing.id, "task_racing"))).kind).toBe("accepted");
        deleting = repository.deleteIfEmpty(user.id, racing.id);
        // The delete is waiting on the row lock: it shows in pg_locks as an ungranted lock before this commits.
        await vi.waitFor(async () => {
          const [waiting] = await selectRows<{ n: number }>(db, sql`select count(*)::int as n from pg_locks where not granted`);
          expect(waiting?.n).toBeGreaterThan(0);
        }, { timeout: 5000, interval: 20 });
      });
      expect(await deleting).toBe(false);
      expect(await repository.find(user.id, racing.id)).toBeDefined();
    } finally {
      await database.close();
    }
  });
});
