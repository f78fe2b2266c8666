import type { ConversationRow } from "../storage/conversations-repository.ts";
import type { MessageRow } from "../storage/messages-repository.ts";

/** The public JSON shapes of the HTTP API (documented in OpenAPI at /api/docs). */
export interface ConversationView {
  id: string;
  title: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface MessageView {
  id: string;
  role: "user" | "assistant";
  content: string;
  status: MessageRow["status"];
  createdAt: string;
  completedAt: string | null;
  model: string | null;
  taskId: string | null;
  usage: { inputTokens: number; outputTokens: number } | null;
  error: { code: string; message: string } | null;
}

export function presentConversation(row: ConversationRow): ConversationView {
  return { id: row.id, title: row.title, createdAt: row.createdAt.toISOString(), updatedAt: row.updatedAt.toISOString() };
}

export function presentMessage(row: MessageRow): MessageView {
  return {
    id: row.id,
    role: row.role,
    content: row.content,
    status: row.status,
    createdAt: row.createdAt.toISOString(),
    completedAt: row.completedAt?.toISOString() ?? null,
    model: row.model,
    taskId: row.taskId,
    usage: row.inputTokens === null || row.outputTokens === null ? null : { inputTokens: row.inputTokens, outputTokens: row.outputTokens },
    error: row.errorCode ? { code: row.errorCode, message: row.errorMessage ?? "" } : null,
  };
}
