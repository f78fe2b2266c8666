import { and, eq, sql } from "drizzle-orm";
import type { Db } from "./database.ts";
import { selectRows } from "./database.ts";
import { idempotencyKeys, messages } from "./schema.ts";

export interface StoredResponse {
  requestHash: string;
  response: unknown;
}

export interface IdempotencyRepository {
  find(userId: string, key: string): Promise<StoredResponse | undefined>;
  /** False when the key already exists (a concurrent request won the race). */
  insert(userId: string, key: string, requestHash: string, response: unknown): Promise<boolean>;
  /**
   * Stores the response and ties the key to the conversation of the response's task, so the
   * key (and the message text in its response) is deleted with the conversation (FK cascade).
   */
  saveResponse(userId: string, key: string, response: unknown): Promise<void>;
  /**
   * Deletes up to `batchSize` keys created before `createdBefore` (IDEMPOTENCY_KEY_TTL_HOURS);
   * returns how many. Bounded work, and SKIP LOCKED so several API processes never queue on each other.
   */
  purgeExpired(createdBefore: Date, batchSize: number): Promise<number>;
}

export function createIdempotencyRepository(db: Db): IdempotencyRepository {
  return {
    find: async (userId, key) =>
      (
        await db
          .select({ requestHash: idempotencyKeys.requestHash, response: idempotencyKeys.response })
          .from(idempotencyKeys)
          .where(and(eq(idempotencyKeys.userId, userId), eq(idempotencyKeys.key, key)))
          .limit(1)
      )[0],
    insert: async (userId, key, requestHash, response) => {
      const inserted = await db
        .insert(idempotencyKeys)
        .values({ userId, key, requestHash, response })
        .onConflictDoNothing()
        .returning({ key: idempotencyKeys.key });
      return inserted.length > 0;
    },
    saveResponse: async (userId, key, response) => {
      const taskId = typeof response === "object" && response !== null && "taskId" in response && typeof response.taskId === "string" ? response.taskId : null;
      await db
        .update(idempotencyKeys)
        .set({ response, conversationId: sql`(select ${messages.conversationId} from ${messages} where ${messages.taskId} = ${taskId}::text)` })
        .where(and(eq(idempotencyKeys.userId, userId), eq(idempotencyKeys.key, key)));
    },
    purgeExpired: async (createdBefore, batchSize) => {
      const rows = await selectRows<{ count: number }>(db, sql`
        with doomed as (
          select user_id, key from ${idempotencyKeys} where created_at < ${createdBefore.toISOString()}::timestamptz
          limit ${batchSize} for update skip locked
        ), deleted as (
          delete from ${idempotencyKeys} k using doomed where k.user_id = doomed.user_id and k.key = doomed.key returning 1
        )
        select count(*)::int as count from deleted`);
      return rows[0]?.count ?? 0;
    },
  };
}
