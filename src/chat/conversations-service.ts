import { SluiceError } from "../errors/catalog.ts";
import type { ConversationsRepository, PageCursor } from "../storage/conversations-repository.ts";
import { decodePageCursor } from "../storage/conversations-repository.ts";
import { decodePathCursor, encodePathCursor, type PathPage, type Siblings } from "../storage/conversation-path.ts";
import { isActiveStatus, type MessagesRepository } from "../storage/messages-repository.ts";
import { presentConversation, presentMessage, presentSearchHit, type ConversationView, type MessageView, type SearchResultView } from "./present.ts";

export interface ActiveGeneration {
  taskId: string;
  messageId: string;
  streamUrl: string;
}

export interface ConversationDetail extends ConversationView {
  /** A page of the active path, oldest first (its newest messages unless `cursor` asked for older ones). */
  messages: Array<MessageView & { siblings: Siblings }>;
  activeGeneration: ActiveGeneration | null;
  /** Older messages exist on the active path: ask with `cursor` = nextCursor. */
  hasMore: boolean;
  nextCursor: string | null;
}

export interface ConversationsService {
  create(userId: string, title: string | null): Promise<ConversationView>;
  list(userId: string, options: { limit: number; cursor: string | undefined }): Promise<{ items: ConversationView[]; nextCursor: string | null }>;
  /** The conversation with one page of its active path, newest first (keyset cursor, PROTOCOL.md 13.2). */
  get(userId: string, id: string, page: { limit: number; cursor: string | undefined }): Promise<ConversationDetail>;
  /**
   * Shows the branch through `messageId` (one of its versions; the newest message under it becomes the
   * active leaf) and answers the conversation as `get` does. 409 GENERATION_IN_PROGRESS while a reply generates.
   */
  chooseBranch(userId: string, id: string, messageId: string, page: { limit: number }): Promise<ConversationDetail>;
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
  const presentDetail = (page: PathPage, userId: string): ConversationDetail => {
    const { activeGeneration: active } = page;
    const oldest = page.messages[0];
    return {
      ...presentConversation(page.conversation),
      messages: page.messages.map((row) => ({ ...presentMessage(row), siblings: row.siblings })),
      activeGeneration: active ? { ...active, streamUrl: dependencies.streamUrl(active.taskId, userId) } : null,
      hasMore: page.hasMore,
      nextCursor: page.hasMore && oldest ? encodePathCursor(oldest.id) : null,
    };
  };
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
    get: async (userId, id, { limit, cursor }) => {
      const before = cursor === undefined ? undefined : decodePathCursor(cursor);
      if (cursor !== undefined && before === undefined) throw new SluiceError("VALIDATION_FAILED", "The page cursor is not valid.");
      const page = await conversations.pathPage(userId, id, { limit, before });
      if (page === undefined) throw notFound();
      if (page === "before-unknown") throw new SluiceError("VALIDATION_FAILED", "The page cursor is not valid for this conversation.");
      return presentDetail(page, userId);
    },
    chooseBranch: async (userId, id, messageId, { limit }) => {
      const outcome = await conversations.chooseBranch(userId, id, messageId);
      if (outcome === "conversation-missing") throw notFound();
      if (outcome === "message-missing") throw new SluiceError("NOT_FOUND", "No such message in this conversation.");
      if (outcome === "generating") throw new SluiceError("GENERATION_IN_PROGRESS", "A reply is still being generated on this branch; switch once it ends.");
      const page = await conversations.pathPage(userId, id, { limit, before: undefined });
      if (page === undefined || page === "before-unknown") throw notFound(); // deleted meanwhile
      return presentDetail(page, userId);
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
