import { and, eq } from "drizzle-orm";
import type { Db } from "./database.ts";
import { idempotencyKeys } from "./schema.ts";

export interface StoredResponse {
  requestHash: string;
  response: unknown;
}

export interface IdempotencyRepository {
  find(userId: string, key: string): Promise<StoredResponse | undefined>;
  /** False when the key already exists (a concurrent request won the race). */
  insert(userId: string, key: string, requestHash: string, response: unknown): Promise<boolean>;
  saveResponse(userId: string, key: string, response: unknown): Promise<void>;
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
      await db
        .update(idempotencyKeys)
        .set({ response })
        .where(and(eq(idempotencyKeys.userId, userId), eq(idempotencyKeys.key, key)));
    },
  };
}
