import type { ConversationRow } from "../storage/conversations-repository.ts";
import type { MessageRow } from "../storage/messages-repository.ts";
import { highlightStart, highlightStop, type SearchHit } from "../storage/search-conversations.ts";
import type { ConversationView, SearchResultView } from "./views.ts";

export type { ConversationView, SearchResultView } from "./views.ts";

/** The public JSON shapes of the HTTP API (documented in OpenAPI at /api/docs); the web UI's share is in views.ts. */
export interface MessageView {
  id: string;
  /** The message this one follows in the conversation's tree; null for a first message. */
  parentId: string | null;
  role: "user" | "assistant";
  content: string;
  status: MessageRow["status"];
  createdAt: string;
  completedAt: string | null;
  model: string | null;
  taskId: string | null;
  usage: { inputTokens: number; outputTokens: number } | null;
  error: { code: string; message: string } | null;
  /** The reasoning before `content` (PROTOCOL.md 3, `reasoning-delta`); null when there was none. */
  reasoning: { text: string; durationMs: number | null } | null;
}

export function presentConversation(row: Omit<ConversationRow, "activeLeafId">): ConversationView {
  return { id: row.id, title: row.title, createdAt: row.createdAt.toISOString(), updatedAt: row.updatedAt.toISOString() };
}

export function presentMessage(row: MessageRow): MessageView {
  return {
    id: row.id,
    parentId: row.parentId,
    role: row.role,
    content: row.content,
    status: row.status,
    createdAt: row.createdAt.toISOString(),
    completedAt: row.completedAt?.toISOString() ?? null,
    model: row.model,
    taskId: row.taskId,
    usage: row.inputTokens === null || row.outputTokens === null ? null : { inputTokens: row.inputTokens, outputTokens: row.outputTokens },
    error: row.errorCode ? { code: row.errorCode, message: row.errorMessage ?? "" } : null,
    reasoning: row.reasoning === "" ? null : { text: row.reasoning, durationMs: row.reasoningDurationMs },
  };
}

export function presentSearchHit(hit: SearchHit): SearchResultView {
  const { message } = hit;
  return {
    conversation: presentConversation(hit.conversation),
    message: message ? { id: message.id, role: message.role, createdAt: message.createdAt.toISOString(), ...splitHighlights(message.snippet) } : null,
  };
}

/** ts_headline's marked text → plain text and offsets; a marker the text itself held is dropped. */
function splitHighlights(marked: string): { snippet: string; highlights: Array<{ start: number; end: number }> } {
  let snippet = "";
  let openedAt: number | null = null;
  const highlights: Array<{ start: number; end: number }> = [];
  for (const character of marked) {
    if (character === highlightStart) openedAt = snippet.length;
    else if (character === highlightStop) {
      if (openedAt !== null && snippet.length > openedAt) highlights.push({ start: openedAt, end: snippet.length });
      openedAt = null;
    } else snippet += character;
  }
  return { snippet, highlights };
}
