import { and, desc, eq, sql } from "drizzle-orm";
import { chooseBranch, readActivePath, readPathPage, type BranchOutcome, type PathPage } from "./conversation-path.ts";
import type { Db } from "./database.ts";
import { conversations, messages } from "./schema.ts";
import { searchConversations, usageTotals, type SearchHit } from "./search-conversations.ts";

export type ConversationRow = typeof conversations.$inferSelect;
export interface ConversationPage {
  items: ConversationRow[];
  nextCursor: string | null;
}

export interface ConversationsRepository {
  create(userId: string, title: string | null): Promise<ConversationRow>;
  /** Newest activity first; keyset pagination on (updated_at, id) so pages never skip or repeat under inserts. */
  list(userId: string, options: { limit: number; cursor: PageCursor | undefined }): Promise<ConversationPage>;
  /** Undefined for a missing conversation and for another user's: callers answer 404 for both. */
  find(userId: string, id: string): Promise<ConversationRow | undefined>;
  rename(userId: string, id: string, title: string): Promise<ConversationRow | undefined>;
  /** Deletes the conversation and, by cascade, its messages. */
  delete(userId: string, id: string): Promise<boolean>;
  /**
   * Deletes the conversation only while it has no message, waiting for a transaction that is
   * adding one (its row lock) and then looking again: a request that made a conversation and failed
   * never takes away the turn a concurrent request with the same chat id just stored.
   */
  deleteIfEmpty(userId: string, id: string): Promise<boolean>;
  /** Full-text search over titles and message text; only this user's conversations (search-conversations.ts). */
  search(userId: string, query: string, options: { limit: number; cursor: PageCursor | undefined }): Promise<{ items: SearchHit[]; nextCursor: string | null }>;
  usageTotals(userId: string): Promise<{ inputTokens: number; outputTokens: number; messages: number }>;
  /** A page of the active path, newest first (conversation-path.ts `readPathPage`); undefined when missing or another user's. */
  pathPage(userId: string, id: string, options: { limit: number; before: string | undefined }): Promise<PathPage | "before-unknown" | undefined>;
  /** The whole active path, oldest first; the caller has checked the owner. */
  activePath(id: string): ReturnType<typeof readActivePath>;
  /** Shows the branch through `messageId` (conversation-path.ts `chooseBranch`). */
  chooseBranch(userId: string, id: string, messageId: string): Promise<BranchOutcome>;
}

/** Opaque page cursor: the exact PostgreSQL timestamp text (microseconds) and the id. */
export interface PageCursor {
  updatedAt: string;
  id: string;
}

export function encodePageCursor(cursor: PageCursor): string {
  return Buffer.from(JSON.stringify([cursor.updatedAt, cursor.id])).toString("base64url");
}

export function decodePageCursor(text: string): PageCursor | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(text, "base64url").toString("utf8"));
    if (!Array.isArray(value) || value.length !== 2) return undefined;
    const [updatedAt, id] = value as unknown[];
    if (typeof updatedAt !== "string" || typeof id !== "string") return undefined;
    // Exactly what list() writes, so the `::timestamptz` and `::uuid` casts cannot fail (36 dashes used to).
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)) return undefined;
    if (!/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}(:\d{2}){0,2}$/.test(updatedAt) || Number.isNaN(Date.parse(updatedAt))) return undefined;
    return { updatedAt, id };
  } catch {
    return undefined;
  }
}

export function createConversationsRepository(db: Db): ConversationsRepository {
  return {
    create: async (userId, title) => {
      const [row] = await db.insert(conversations).values({ userId, title }).returning();
      if (!row) throw new Error("insert returned no row");
      return row;
    },
    list: async (userId, { limit, cursor }) => {
      const after = cursor
        ? sql`(${conversations.updatedAt}, ${conversations.id}) < (${cursor.updatedAt}::timestamptz, ${cursor.id}::uuid)`
        : undefined;
      const rows = await db
        .select({ conversation: conversations, updatedAtText: sql<string>`${conversations.updatedAt}::text` })
        .from(conversations)
        .where(and(eq(conversations.userId, userId), after))
        .orderBy(desc(conversations.updatedAt), desc(conversations.id))
        .limit(limit + 1);
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        items: page.map((row) => row.conversation),
        nextCursor: rows.length > limit && last ? encodePageCursor({ updatedAt: last.updatedAtText, id: last.conversation.id }) : null,
      };
    },
    find: async (userId, id) =>
      (await db.select().from(conversations).where(and(eq(conversations.id, id), eq(conversations.userId, userId))).limit(1))[0],
    rename: async (userId, id, title) =>
      (
        await db
          .update(conversations)
          .set({ title, updatedAt: sql`now()` })
          .where(and(eq(conversations.id, id), eq(conversations.userId, userId)))
          .returning()
      )[0],
    delete: async (userId, id) => {
      const deleted = await db
        .delete(conversations)
        .where(and(eq(conversations.id, id), eq(conversations.userId, userId)))
        .returning({ id: conversations.id });
      return deleted.length > 0;
    },
    deleteIfEmpty: async (userId, id) =>
      await db.transaction(async (transaction) => {
        // FOR UPDATE waits for a concurrent accept (it updates the row), so the next statement's snapshot sees its messages.
        const locked = await transaction.select({ id: conversations.id }).from(conversations).where(and(eq(conversations.id, id), eq(conversations.userId, userId))).for("update");
        if (locked.length === 0) return false;
        const deleted = await transaction
          .delete(conversations)
          .where(and(eq(conversations.id, id), sql`not exists (select 1 from ${messages} where ${messages.conversationId} = ${id})`))
          .returning({ id: conversations.id });
        return deleted.length > 0;
      }),
    search: async (userId, query, options) => {
      const page = await searchConversations(db, userId, query, options);
      return { items: page.items, nextCursor: page.next ? encodePageCursor(page.next) : null };
    },
    usageTotals: (userId) => usageTotals(db, userId),
    pathPage: (userId, id, options) => readPathPage(db, userId, id, options),
    activePath: (id) => readActivePath(db, id),
    chooseBranch: (userId, id, messageId) => chooseBranch(db, userId, id, messageId),
  };
}
