// Response shapes of the Sluice HTTP API (see PROTOCOL.md and the OpenAPI docs at /docs).
// The conversation and search-hit shapes are the server's own (src/chat/views.ts), imported as
// types only (erased from the bundle), so the UI cannot drift from what the API sends.
import type { ConversationView, SearchResultView } from "../../../src/chat/views.ts";

export interface User {
  id: string;
  email: string;
}

export interface AuthResponse {
  user: User;
  token: string;
}

export interface MeResponse {
  user: User;
  settings: { defaultModel: string | null; systemPrompt: string | null };
  models: string[];
  /** Tokens over all the user's replies that recorded usage. */
  usage?: { inputTokens: number; outputTokens: number; messages: number };
}

export type ConversationSummary = ConversationView;

export interface ConversationPage {
  items: ConversationSummary[];
  nextCursor: string | null;
}

export type MessageStatus = "pending" | "streaming" | "completed" | "cancelled" | "failed";

export interface ErrorInfo {
  code: string;
  message: string;
}

/** A message's versions (edits, regenerates): messages with the same parent, oldest first. */
export interface Siblings {
  index: number;
  count: number;
  ids: string[];
}

export interface Message {
  id: string;
  /** The message this one follows in the conversation's tree; null for a first message. */
  parentId?: string | null;
  /** Its versions; count 1 when it has none. On messages read with the conversation. */
  siblings?: Siblings;
  role: "user" | "assistant";
  content: string;
  status: MessageStatus;
  createdAt: string;
  model: string | null;
  taskId: string | null;
  error: ErrorInfo | null;
  /** Tokens in (the prompt) and out (the reply), on finished assistant messages. */
  usage?: { inputTokens: number; outputTokens: number } | null;
  /** The model's reasoning before `content`, on saved replies that had some. */
  reasoning?: { text: string; durationMs: number | null } | null;
}

export interface ActiveGeneration {
  taskId: string;
  streamUrl: string;
  messageId: string;
}

export interface Conversation extends ConversationSummary {
  /** Part of the active path, oldest first: the newest page, plus older pages loaded on scroll. */
  messages: Message[];
  activeGeneration: ActiveGeneration | null;
  /** Older messages exist before `messages[0]`: fetch them with `nextCursor`. */
  hasMore: boolean;
  nextCursor: string | null;
}

export interface SendMessageResponse {
  userMessage: Message;
  assistantMessage: { id: string; status: MessageStatus } & Partial<Message>;
  taskId: string;
  streamUrl: string;
}

export interface RegenerateResponse {
  assistantMessage: { id: string; status: MessageStatus } & Partial<Message>;
  taskId: string;
  streamUrl: string;
}

/** One search hit, exactly as the server presents it. */
export type SearchResult = SearchResultView;

export interface SearchPage {
  items: SearchResult[];
  nextCursor: string | null;
}
