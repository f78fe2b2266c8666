import { createHash } from "node:crypto";
import { SluiceError } from "../errors/catalog.ts";
import type { ConversationsRepository } from "../storage/conversations-repository.ts";
import type { Db } from "../storage/database.ts";
import { isActiveStatus, type MessagesRepository } from "../storage/messages-repository.ts";
import { conversations as conversationsTable } from "../storage/schema.ts";
import type { GenerationsService } from "./generations-service.ts";

/** One generation of an AI SDK chat: what the UI message stream names in its `start` chunk. */
export interface UiChatGeneration {
  conversationId: string;
  taskId: string;
  /** The assistant message's id in Sluice, sent as the UI message's id. */
  messageId: string;
}

/** A saved turn, for a page that reloads its history (README "Use Sluice from useChat"). */
export interface UiChatHistoryMessage {
  id: string;
  role: "user" | "assistant";
  content: string;
  /** "" when the reply had none. */
  reasoning: string;
  status: string;
}

export interface UiChatsService {
  /** `trigger: "submit-message"`: the first message of a new chat id creates the user's conversation; another user's chat id is NOT_FOUND. */
  submit(userId: string, chatId: string, input: { content: string; model?: string | undefined }, idempotencyKey?: string): Promise<UiChatGeneration>;
  /** `trigger: "regenerate-message"`: a new version of the last reply, which becomes the active branch (NOT_FOUND for an unknown or foreign chat). */
  regenerate(userId: string, chatId: string, input: { model?: string | undefined }, idempotencyKey?: string): Promise<UiChatGeneration>;
  /** The chat's generation still pending or streaming; undefined when there is none, or the chat is unknown or another user's. */
  activeGeneration(userId: string, chatId: string): Promise<UiChatGeneration | undefined>;
  /** The chat's final messages on its active branch, in order (the active reply is left to the resumed stream); empty for an unknown or foreign chat. */
  history(userId: string, chatId: string): Promise<UiChatHistoryMessage[]>;
}

// Fixed namespace of the name-based UUIDs below; changing it would orphan every AI SDK chat.
const chatIdNamespace = Buffer.from("5d1b6a4e9c3f4f7e8a2d0b6c1e9f3a7d", "hex");

/**
 * The conversation id of an AI SDK chat id: a name-based UUID (RFC 9562 version 5, SHA-1) of
 * the client's id. The mapping is thus stored in the conversations table's primary key, with no
 * table of its own: the same chat id always names the same conversation, whoever asks, so a
 * second user's first POST with it finds the conversation taken (404) instead of making one.
 *
 * @example chatConversationId("kZ3vQ9xY1aBcDeFg") // → "…-5…-…" (stable)
 */
export function chatConversationId(chatId: string): string {
  const bytes = createHash("sha1").update(chatIdNamespace).update(chatId, "utf8").digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A new conversation's title: the first line of its first message, as the web UI shows it. */
function titleOf(content: string): string | null {
  const firstLine = content.trim().split("\n", 1)[0]?.trim() ?? "";
  return firstLine === "" ? null : firstLine.slice(0, 100);
}

export function createUiChatsService(dependencies: {
  db: Db;
  conversations: ConversationsRepository;
  messages: MessagesRepository;
  generations: GenerationsService;
}): UiChatsService {
  const { db, conversations, messages, generations } = dependencies;
  const notFound = (): SluiceError => new SluiceError("NOT_FOUND", "No such chat.");

  /** The user's conversation of this chat id, created when no one has it; NOT_FOUND when another user does. */
  const claimConversation = async (userId: string, chatId: string, content: string): Promise<{ id: string; created: boolean }> => {
    const id = chatConversationId(chatId);
    if (await conversations.find(userId, id)) return { id, created: false };
    const inserted = await db.insert(conversationsTable).values({ id, userId, title: titleOf(content) }).onConflictDoNothing({ target: conversationsTable.id }).returning({ id: conversationsTable.id });
    if (inserted.length > 0) return { id, created: true };
    // Taken meanwhile: by this user's concurrent first message (use it), or by another user (404).
    if (!(await conversations.find(userId, id))) throw notFound();
    return { id, created: false };
  };

  const started = (conversationId: string, accepted: { taskId: string; assistantMessage: { id: string } }): UiChatGeneration => ({
    conversationId,
    taskId: accepted.taskId,
    messageId: accepted.assistantMessage.id,
  });

  return {
    submit: async (userId, chatId, input, idempotencyKey) => {
      const conversation = await claimConversation(userId, chatId, input.content);
      try {
        return started(conversation.id, await generations.sendMessage(userId, conversation.id, input, idempotencyKey));
      } catch (error) {
        // A refused first message (model, rate or generation limit) leaves no empty chat behind,
        // so the same chat id can be sent again as new; a turn a concurrent send (a retry with the
        // same Idempotency-Key) stored meanwhile is kept with its chat.
        if (conversation.created) await conversations.deleteIfEmpty(userId, conversation.id).catch(() => undefined);
        throw error;
      }
    },
    regenerate: async (userId, chatId, input, idempotencyKey) => {
      const conversationId = chatConversationId(chatId);
      if (!(await conversations.find(userId, conversationId))) throw notFound();
      return started(conversationId, await generations.regenerate(userId, conversationId, input, idempotencyKey));
    },
    activeGeneration: async (userId, chatId) => {
      const conversationId = chatConversationId(chatId);
      if (!(await conversations.find(userId, conversationId))) return undefined;
      const active = (await messages.listForConversation(conversationId)).find((row) => row.role === "assistant" && isActiveStatus(row.status));
      return active?.taskId ? { conversationId, taskId: active.taskId, messageId: active.id } : undefined;
    },
    history: async (userId, chatId) => {
      const conversationId = chatConversationId(chatId);
      if (!(await conversations.find(userId, conversationId))) return [];
      // The branch the user is on: a regenerate keeps the old reply one branch over, not in the history.
      const rows = await conversations.activePath(conversationId);
      return rows
        .filter((row) => row.role === "user" || !isActiveStatus(row.status))
        .map((row) => ({ id: row.id, role: row.role, content: row.content, reasoning: row.reasoning, status: row.status }));
    },
  };
}
