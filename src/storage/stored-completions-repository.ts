import { and, eq } from "drizzle-orm";
import type { Db } from "./database.ts";
import { messages, storedCompletions } from "./schema.ts";

export interface StoredCompletion {
  taskId: string;
  createdAt: Date;
  status: (typeof messages.$inferSelect)["status"];
  content: string;
  reasoning: string;
  model: string | null;
  inputTokens: number | null;
  outputTokens: number | null;
  errorCode: string | null;
}

export interface StoredCompletionsRepository {
  /** Marks a `/v1/chat/completions` call made with `store: true` as retrievable. */
  /** Returns the row's creation time, the `created` of the call's answers. */
  insert(input: { taskId: string; userId: string; conversationId: string }): Promise<Date>;
  /** The call's reply for its owner; undefined for a missing, unstored or foreign one (404 for all). */
  find(userId: string, taskId: string): Promise<StoredCompletion | undefined>;
}

export function createStoredCompletionsRepository(db: Db): StoredCompletionsRepository {
  return {
    insert: async (input) => {
      const [row] = await db.insert(storedCompletions).values(input).returning({ createdAt: storedCompletions.createdAt });
      return row ? new Date(row.createdAt) : new Date();
    },
    find: async (userId, taskId) => {
      const [row] = await db
        .select({
          taskId: storedCompletions.taskId,
          createdAt: storedCompletions.createdAt,
          status: messages.status,
          content: messages.content,
          reasoning: messages.reasoning,
          model: messages.model,
          inputTokens: messages.inputTokens,
          outputTokens: messages.outputTokens,
          errorCode: messages.errorCode,
        })
        .from(storedCompletions)
        .innerJoin(messages, eq(messages.taskId, storedCompletions.taskId))
        .where(and(eq(storedCompletions.taskId, taskId), eq(storedCompletions.userId, userId)))
        .limit(1);
      return row && { ...row, createdAt: new Date(row.createdAt) };
    },
  };
}
