import { and, asc, eq, inArray, isNotNull, lt, sql } from "drizzle-orm";
import { acceptTurn, type TurnInput, type TurnOutcome } from "./accept-turn.ts";
import type { Db } from "./database.ts";
import { messages, users, type MessageStatus } from "./schema.ts";

export type MessageRow = typeof messages.$inferSelect;
export type { TurnInput, TurnOutcome };
/** A reply still queued or being generated: the one definition of "active" outside SQL migrations. */
export const activeStatuses = ["pending", "streaming"] as const satisfies readonly MessageStatus[];
export type ActiveStatus = (typeof activeStatuses)[number];

export function isActiveStatus(status: string): status is ActiveStatus {
  return (activeStatuses as readonly string[]).includes(status);
}
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
  /** The reasoning before the answer (schema.ts); "" when absent. */
  reasoning?: string;
  reasoningDurationMs?: number | null;
  lastSeq: number | null;
  inputTokens: number | null;
  outputTokens: number | null;
  errorCode: string | null;
  errorMessage: string | null;
}

export type FinishOutcome = "saved" | "already-final" | "stale" | "missing";

/** An earlier turn of the conversation, for the prompt. */
export type HistoryTurn = Pick<MessageRow, "role" | "content">;

/** How much history a generation reads at most: turns, and UTF-8 bytes of content (the turn that passes it still counts). */
export interface HistoryLoadLimit {
  maxTurns: number;
  maxBytes: number;
}

/** No cap: a PostgreSQL int's largest value. */
const unlimited: HistoryLoadLimit = { maxTurns: 2_147_483_647, maxBytes: 2_147_483_647 };

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
   * The whole POST path in ONE statement (no transaction needed: a statement is atomic):
   * checks that the conversation is the user's, counts the user's active replies,
   * picks the model, places the turn in the conversation's tree (after the active leaf, or as a
   * new version of an edited message or a regenerated reply), inserts it and moves the active leaf to it. A second active reply in the conversation still violates
   * `messages_one_active_per_conversation`.
   */
  acceptTurn(input: TurnInput): Promise<TurnOutcome>;
  listForConversation(conversationId: string): Promise<MessageRow[]>;
  findTask(taskId: string): Promise<TaskRecord | undefined>;
  taskIdsOfConversation(conversationId: string): Promise<string[]>;
  /**
   * Fences PostgreSQL like the log: only a newer attempt may take over. Undefined when the task is final, missing or newer already.
   * Returns the prompt's history with it (the reply's ancestors: its branch only, oldest first, without failed or empty replies), so a job costs one statement to begin.
   */
  /**
   * Takes the row for `attempt` (fenced: only a newer attempt of an active reply) and returns the
   * prompt's history: the reply's ancestors, within `limit` (src/worker/context-budget.ts
   * historyLoadLimit; unset reads them all), and how many older turns were past it.
   */
  beginAttempt(taskId: string, attempt: number, limit?: HistoryLoadLimit): Promise<(TaskRecord & { history: HistoryTurn[]; historyTurnsNotLoaded: number }) | undefined>;
  /** One idempotent UPDATE; a retry or a zombie attempt never writes a second or stale result. */
  finish(taskId: string, attempt: number, result: FinalResult): Promise<FinishOutcome>;
  /** Unfenced failure for the sweeper and the retry-limit path; no-op when already final. */
  forceFinish(taskId: string, result: FinalResult): Promise<boolean>;
  /** Unfinished generations not updated since `olderThan`. */
  staleActive(olderThan: Date, limit: number): Promise<Array<TaskRecord & { taskId: string }>>;
}

/** A message that is part of the prompt's history (inside the recursive walk, `h` is the row). */
const isTurn = sql.raw(`(case when h.status in ('completed', 'cancelled') and octet_length(h.content) > 0 then 1 else 0 end)`);
/** The walk is still under the cap after the rows read before this one (`path`, its child). */
const withinCap = sql`(path.turns < ${sql.placeholder("maxTurns")}::int and path.bytes <= ${sql.placeholder("maxBytes")}::int)`;

export function createMessagesRepository(db: Db): MessagesRepository {
  const finalSet = (result: FinalResult) => ({
    status: result.status,
    content: result.content,
    reasoning: result.reasoning ?? "",
    reasoningDurationMs: result.reasoningDurationMs ?? null,
    lastSeq: result.lastSeq,
    inputTokens: result.inputTokens,
    outputTokens: result.outputTokens,
    errorCode: result.errorCode,
    errorMessage: result.errorMessage,
    updatedAt: sql`now()`,
    completedAt: sql`now()`,
  });
  // Prepared once per repository (a named statement on PostgreSQL): the worker runs it once per
  // generation, and building it with drizzle each time was a tenth of the worker's CPU in a burst of
  // starts (BENCHMARKS.md, issue 13).
  const beginAttemptStatement = db
    .update(messages)
    .set({ attempt: sql`${sql.placeholder("attempt")}::int`, status: "streaming", updatedAt: sql`now()` })
    .where(and(eq(messages.taskId, sql.placeholder("taskId")), inArray(messages.status, [...activeStatuses]), lt(messages.attempt, sql.placeholder("attempt"))))
    .returning({
      ...taskColumns,
      systemPrompt: sql<string | null>`(select ${users.systemPrompt} from ${users} where ${users.id} = ${messages.userId})`,
      // The active path the reply hangs from: its ancestors (parent_id), oldest first, so other
      // branches are never in the prompt. Capped (historyLoadLimit, src/worker/context-budget.ts):
      // the newest turn is always read, older ones while fewer than maxTurns turns and at most
      // maxBytes of content were read; past the cap the walk carries no content, only counts the
      // turns it passes (historyTurnsNotLoaded), so what is read and sent stays bounded. A turn is a
      // completed or cancelled message with content. Qualified by hand: drizzle renders RETURNING
      // columns unqualified, which inside this subquery would mean h's.
      history: sql<{ turns: HistoryTurn[]; notLoaded: number }>`(
        with recursive path as (
          select h.parent_id, h.role, h.content, 1 as depth, ${isTurn} as is_turn, ${isTurn} as turns,
            case when ${isTurn} = 1 then octet_length(h.content) else 0 end as bytes
          from ${messages} h where h.id = "messages".parent_id
          union all
          select h.parent_id, h.role, case when ${withinCap} then h.content end, path.depth + 1, ${isTurn}, path.turns + ${isTurn},
            path.bytes + case when ${withinCap} and ${isTurn} = 1 then octet_length(h.content) else 0 end
          from ${messages} h join path on h.id = path.parent_id
        )
        select json_build_object(
          'turns', coalesce(json_agg(json_build_object('role', path.role, 'content', path.content) order by path.depth desc)
            filter (where path.is_turn = 1 and path.content is not null), '[]'::json),
          'notLoaded', count(*) filter (where path.is_turn = 1 and path.content is null))
        from path)`,
    })
    .prepare("sluice_begin_attempt");
  const finishStatement = db
    .update(messages)
    .set({
      status: sql`${sql.placeholder("status")}::text`,
      content: sql`${sql.placeholder("content")}::text`,
      reasoning: sql`${sql.placeholder("reasoning")}::text`,
      reasoningDurationMs: sql`${sql.placeholder("reasoningDurationMs")}::int`,
      lastSeq: sql`${sql.placeholder("lastSeq")}::int`,
      inputTokens: sql`${sql.placeholder("inputTokens")}::int`,
      outputTokens: sql`${sql.placeholder("outputTokens")}::int`,
      errorCode: sql`${sql.placeholder("errorCode")}::text`,
      errorMessage: sql`${sql.placeholder("errorMessage")}::text`,
      updatedAt: sql`now()`,
      completedAt: sql`now()`,
    })
    .where(and(eq(messages.taskId, sql.placeholder("taskId")), eq(messages.attempt, sql.placeholder("attempt")), inArray(messages.status, [...activeStatuses])))
    .returning({ id: messages.id })
    .prepare("sluice_finish");
  return {
    acceptTurn: async (input) => acceptTurn(db, input),
    listForConversation: async (conversationId) =>
      db.select().from(messages).where(eq(messages.conversationId, conversationId)).orderBy(asc(messages.createdAt), asc(messages.id)),
    findTask: async (taskId) => (await db.select(taskColumns).from(messages).where(eq(messages.taskId, taskId)).limit(1))[0],
    taskIdsOfConversation: async (conversationId) => {
      const rows = await db
        .select({ taskId: messages.taskId })
        .from(messages)
        .where(and(eq(messages.conversationId, conversationId), isNotNull(messages.taskId)));
      return rows.flatMap((row) => (row.taskId ? [row.taskId] : []));
    },
    beginAttempt: async (taskId, attempt, limit = unlimited) => {
      const [row] = await beginAttemptStatement.execute({ taskId, attempt, maxTurns: limit.maxTurns, maxBytes: limit.maxBytes });
      if (!row) return undefined;
      const { history, ...task } = row;
      return { ...task, history: history.turns, historyTurnsNotLoaded: Number(history.notLoaded) };
    },
    finish: async (taskId, attempt, result) => {
      const updated = await finishStatement.execute({ taskId, attempt, ...result, reasoning: result.reasoning ?? "", reasoningDurationMs: result.reasoningDurationMs ?? null });
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
