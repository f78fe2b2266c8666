import { and, asc, count, eq, inArray, isNotNull, lt, sql } from "drizzle-orm";
import type { Db } from "./database.ts";
import { conversations, messages, users, type MessageStatus } from "./schema.ts";

export type MessageRow = typeof messages.$inferSelect;
export const activeStatuses = ["pending", "streaming"] as const satisfies readonly MessageStatus[];
export type FinalStatus = "completed" | "cancelled" | "failed";

export interface TaskRecord {
  messageId: string;
  /** The owner's system prompt, read with the task so a generation costs no extra statement. */
  systemPrompt?: string | null;
  conversationId: string;
  userId: string;
  status: MessageStatus;
  attempt: number;
  model: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface FinalResult {
  status: FinalStatus;
  content: string;
  lastSeq: number | null;
  inputTokens: number | null;
  outputTokens: number | null;
  errorCode: string | null;
  errorMessage: string | null;
}

export type FinishOutcome = "saved" | "already-final" | "stale" | "missing";

const taskColumns = {
  messageId: messages.id,
  conversationId: messages.conversationId,
  userId: messages.userId,
  status: messages.status,
  attempt: messages.attempt,
  model: messages.model,
  createdAt: messages.createdAt,
  updatedAt: messages.updatedAt,
};

export interface MessagesRepository {
  /**
   * Inserts the user's message (when given) and the assistant placeholder (`streaming`)
   * in one statement, with clock_timestamp() so they order correctly, and bumps
   * the conversation. A second active reply in the conversation violates
   * `messages_one_active_per_conversation`.
   */
  insertTurn(input: { conversationId: string; userId: string; userContent: string | undefined; taskId: string; model: string }): Promise<{ user: MessageRow | undefined; assistant: MessageRow }>;
  listForConversation(conversationId: string): Promise<MessageRow[]>;
  findTask(taskId: string): Promise<TaskRecord | undefined>;
  countActiveForUser(userId: string): Promise<number>;
  taskIdsOfConversation(conversationId: string): Promise<string[]>;
  /** Deletes the conversation's last assistant message if it is final (regenerate replaces it). */
  deleteLastFinalReply(conversationId: string): Promise<void>;
  /** Fences PostgreSQL like the log: only a newer attempt may take over. Undefined when the task is final, missing or newer already. */
  beginAttempt(taskId: string, attempt: number): Promise<TaskRecord | undefined>;
  /** The prompt: earlier turns of the conversation, oldest first, without failed or empty replies. */
  history(conversationId: string, beforeMessageId: string): Promise<Array<Pick<MessageRow, "role" | "content">>>;
  /** One idempotent UPDATE; a retry or a zombie attempt never writes a second or stale result. */
  finish(taskId: string, attempt: number, result: FinalResult): Promise<FinishOutcome>;
  /** Unfenced failure for the sweeper and the retry-limit path; no-op when already final. */
  forceFinish(taskId: string, result: FinalResult): Promise<boolean>;
  /** Unfinished generations not updated since `olderThan`. */
  staleActive(olderThan: Date, limit: number): Promise<Array<TaskRecord & { taskId: string }>>;
}

export function createMessagesRepository(db: Db): MessagesRepository {
  const finalSet = (result: FinalResult) => ({
    status: result.status,
    content: result.content,
    lastSeq: result.lastSeq,
    inputTokens: result.inputTokens,
    outputTokens: result.outputTokens,
    errorCode: result.errorCode,
    errorMessage: result.errorMessage,
    updatedAt: sql`now()`,
    completedAt: sql`now()`,
  });
  return {
    insertTurn: async ({ conversationId, userId, userContent, taskId, model }) => {
      const rows = [
        ...(userContent === undefined ? [] : [{ conversationId, userId, role: "user" as const, content: userContent, status: "completed" as const, createdAt: sql`clock_timestamp()` }]),
        { conversationId, userId, role: "assistant" as const, content: "", status: "streaming" as const, taskId, model, createdAt: sql`clock_timestamp()` },
      ];
      const inserted = await db.insert(messages).values(rows).returning();
      const assistant = inserted.find((row) => row.role === "assistant");
      if (!assistant) throw new Error("insert returned no assistant row");
      const titleFromMessage = userContent?.replace(/\s+/g, " ").trim().slice(0, 80) || null;
      await db
        .update(conversations)
        .set({ updatedAt: sql`now()`, title: sql`coalesce(${conversations.title}, ${titleFromMessage})` })
        .where(eq(conversations.id, conversationId));
      return { user: inserted.find((row) => row.role === "user"), assistant };
    },
    listForConversation: async (conversationId) =>
      db.select().from(messages).where(eq(messages.conversationId, conversationId)).orderBy(asc(messages.createdAt), asc(messages.id)),
    findTask: async (taskId) => (await db.select(taskColumns).from(messages).where(eq(messages.taskId, taskId)).limit(1))[0],
    countActiveForUser: async (userId) => {
      const [row] = await db
        .select({ value: count() })
        .from(messages)
        .where(and(eq(messages.userId, userId), inArray(messages.status, [...activeStatuses])));
      return row?.value ?? 0;
    },
    taskIdsOfConversation: async (conversationId) => {
      const rows = await db
        .select({ taskId: messages.taskId })
        .from(messages)
        .where(and(eq(messages.conversationId, conversationId), isNotNull(messages.taskId)));
      return rows.flatMap((row) => (row.taskId ? [row.taskId] : []));
    },
    deleteLastFinalReply: async (conversationId) => {
      await db.execute(sql`
        delete from ${messages} where ${messages.id} = (
          select id from ${messages} where ${messages.conversationId} = ${conversationId}
          order by ${messages.createdAt} desc, ${messages.id} desc limit 1)
        and ${messages.role} = 'assistant' and ${messages.status} not in ('pending', 'streaming')`);
    },
    beginAttempt: async (taskId, attempt) =>
      (
        await db
          .update(messages)
          .set({ attempt, status: "streaming", updatedAt: sql`now()` })
          .where(and(eq(messages.taskId, taskId), inArray(messages.status, [...activeStatuses]), lt(messages.attempt, attempt)))
          .returning({ ...taskColumns, systemPrompt: sql<string | null>`(select ${users.systemPrompt} from ${users} where ${users.id} = ${messages.userId})` })
      )[0],
    // Compared in SQL: created_at has microseconds, a JS Date only milliseconds.
    history: async (conversationId, beforeMessageId) =>
      db
        .select({ role: messages.role, content: messages.content })
        .from(messages)
        .where(
          and(
            eq(messages.conversationId, conversationId),
            sql`${messages.createdAt} < (select m.created_at from ${messages} m where m.id = ${beforeMessageId})`,
            inArray(messages.status, ["completed", "cancelled"]),
            sql`${messages.content} <> ''`,
          ),
        )
        .orderBy(asc(messages.createdAt), asc(messages.id)),
    finish: async (taskId, attempt, result) => {
      const updated = await db
        .update(messages)
        .set(finalSet(result))
        .where(and(eq(messages.taskId, taskId), eq(messages.attempt, attempt), inArray(messages.status, [...activeStatuses])))
        .returning({ id: messages.id });
      if (updated.length > 0) return "saved";
      const [existing] = await db.select({ status: messages.status, attempt: messages.attempt }).from(messages).where(eq(messages.taskId, taskId));
      if (!existing) return "missing";
      if (existing.attempt !== attempt) return "stale";
      return "already-final";
    },
    forceFinish: async (taskId, result) => {
      const updated = await db
        .update(messages)
        .set(finalSet(result))
        .where(and(eq(messages.taskId, taskId), inArray(messages.status, [...activeStatuses])))
        .returning({ id: messages.id });
      return updated.length > 0;
    },
    staleActive: async (olderThan, limit) =>
      (
        await db
          .select({ ...taskColumns, taskId: messages.taskId })
          .from(messages)
          .where(and(inArray(messages.status, [...activeStatuses]), lt(messages.updatedAt, olderThan)))
          .limit(limit)
      ).flatMap((row) => (row.taskId ? [{ ...row, taskId: row.taskId }] : [])),
  };
}
