import { SluiceError } from "../errors/catalog.ts";
import type { ConversationsRepository, PageCursor } from "../storage/conversations-repository.ts";
import { decodePageCursor } from "../storage/conversations-repository.ts";
import { isActiveStatus, type MessagesRepository } from "../storage/messages-repository.ts";
import { presentConversation, presentMessage, presentSearchHit, type ConversationView, type MessageView, type SearchResultView } from "./present.ts";

export interface ActiveGeneration {
  taskId: string;
  messageId: string;
  streamUrl: string;
}

export interface ConversationDetail extends ConversationView {
  messages: MessageView[];
  activeGeneration: ActiveGeneration | null;
}

export interface ConversationsService {
  create(userId: string, title: string | null): Promise<ConversationView>;
  list(userId: string, options: { limit: number; cursor: string | undefined }): Promise<{ items: ConversationView[]; nextCursor: string | null }>;
  get(userId: string, id: string): Promise<ConversationDetail>;
  rename(userId: string, id: string, title: string): Promise<ConversationView>;
  /**
   * Deletes it with its messages, then ends its running generation's stream (`end` cancelled,
   * CONVERSATION_DELETED), cancels it and drops the finished streams' logs.
   */
  delete(userId: string, id: string): Promise<void>;
  /** Title and message-text search, newest activity first; the cursor is the listing's. */
  search(userId: string, options: { query: string; limit: number; cursor: string | undefined }): Promise<{ items: SearchResultView[]; nextCursor: string | null }>;
  /** Tokens in and out over all the user's replies (GET /api/me). */
  usageTotals(userId: string): Promise<{ inputTokens: number; outputTokens: number; messages: number }>;
}

export function createConversationsService(dependencies: {
  conversations: ConversationsRepository;
  messages: MessagesRepository;
  streamUrl: (taskId: string, userId: string) => string;
  /**
   * The Redis side of a deleted conversation's tasks: an active one (pending or streaming when
   * the conversation was deleted) is ended for its viewers and cancelled, the others' logs dropped.
   */
  discardStreams: (tasks: ReadonlyArray<{ taskId: string; active: boolean }>) => Promise<void>;
}): ConversationsService {
  const { conversations, messages } = dependencies;
  const notFound = (): SluiceError => new SluiceError("NOT_FOUND", "No such conversation.");
  return {
    create: async (userId, title) => presentConversation(await conversations.create(userId, title)),
    list: async (userId, { limit, cursor }) => {
      const page = await conversations.list(userId, { limit, cursor: decodeCursor(cursor) });
      return { items: page.items.map(presentConversation), nextCursor: page.nextCursor };
    },
    search: async (userId, { query, limit, cursor }) => {
      const page = await conversations.search(userId, query, { limit, cursor: decodeCursor(cursor) });
      return { items: page.items.map(presentSearchHit), nextCursor: page.nextCursor };
    },
    usageTotals: (userId) => conversations.usageTotals(userId),
    get: async (userId, id) => {
      const conversation = await conversations.find(userId, id);
      if (!conversation) throw notFound();
      const rows = await messages.listForConversation(id);
      const active = rows.find((row) => row.role === "assistant" && isActiveStatus(row.status));
      return {
        ...presentConversation(conversation),
        messages: rows.map(presentMessage),
        activeGeneration:
          active?.taskId ? { taskId: active.taskId, messageId: active.id, streamUrl: dependencies.streamUrl(active.taskId, userId) } : null,
      };
    },
    rename: async (userId, id, title) => {
      const row = await conversations.rename(userId, id, title);
      if (!row) throw notFound();
      return presentConversation(row);
    },
    delete: async (userId, id) => {
      if (!(await conversations.find(userId, id))) throw notFound();
      const tasks = (await messages.listForConversation(id)).flatMap((row) =>
        row.taskId ? [{ taskId: row.taskId, active: isActiveStatus(row.status) }] : [],
      );
      if (!(await conversations.delete(userId, id))) throw notFound();
      await dependencies.discardStreams(tasks);
    },
  };
}

function decodeCursor(cursor: string | undefined): PageCursor | undefined {
  if (cursor === undefined) return undefined;
  const decoded = decodePageCursor(cursor);
  if (!decoded) throw new SluiceError("VALIDATION_FAILED", "The page cursor is not valid.");
  return decoded;
}
