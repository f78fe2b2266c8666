import { sql } from "drizzle-orm";
import type { Db } from "./database.ts";
import { messages, type MessageRole } from "./schema.ts";

/**
 * Writes the earlier turns of a `/v1/chat/completions` call into its new conversation as final
 * messages, so the worker's prompt (the conversation's history, messages-repository `beginAttempt`)
 * is the client's. They are dated before now(), one microsecond apart in order, so they sort before
 * the turn that acceptTurn inserts next (clock_timestamp(), later) and keep the client's order.
 */
export async function insertHistory(db: Db, input: { conversationId: string; userId: string; turns: ReadonlyArray<{ role: MessageRole; content: string }> }): Promise<void> {
  const count = input.turns.length;
  if (count === 0) return;
  await db.insert(messages).values(
    input.turns.map((turn, index) => ({
      conversationId: input.conversationId,
      userId: input.userId,
      role: turn.role,
      content: turn.content,
      status: "completed" as const,
      createdAt: sql`now() - make_interval(secs => ${(count - index) / 1_000_000})`,
    })),
  );
}
