// The few Sluice calls around useChat: signing in, the chat's saved history and the stop endpoint.
// Every request goes to the page's own origin; vite.config.ts forwards /api to Sluice.
import { generateId, type UIMessage } from "ai";

/** What Sluice puts in an assistant message's metadata (`start` and `finish` chunks). */
export interface SluiceMetadata {
  conversationId?: string;
  taskId?: string;
  model?: string;
  status?: "pending" | "streaming" | "completed" | "cancelled" | "failed";
}
export type SluiceMessage = UIMessage<SluiceMetadata>;

const tokenKey = "sluice-token";

/** The session token of `POST /api/auth/login`, kept across reloads. */
export function savedToken(): string | undefined {
  return localStorage.getItem(tokenKey) ?? undefined;
}

export async function signIn(email: string, password: string): Promise<string> {
  const response = await fetch("/api/auth/login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email, password }) });
  const body = (await response.json()) as { token?: string; error?: { message: string } };
  if (!response.ok || body.token === undefined) throw new Error(body.error?.message ?? `Sign-in failed (${response.status}).`);
  localStorage.setItem(tokenKey, body.token);
  return body.token;
}

/** The chat id lives in the URL (`?chat=…`), so a reload opens the same chat and resumes its reply. */
export function chatIdFromUrl(): string {
  const url = new URL(location.href);
  let chatId = url.searchParams.get("chat");
  if (!chatId) {
    chatId = generateId();
    url.searchParams.set("chat", chatId);
    history.replaceState(null, "", url);
  }
  return chatId;
}

/** The saved messages; a reply still generating is not among them, useChat's resume rebuilds it. */
export async function loadHistory(chatId: string, token: string): Promise<SluiceMessage[]> {
  const response = await fetch(`/api/chat/${encodeURIComponent(chatId)}/messages`, { headers: { authorization: `Bearer ${token}` } });
  if (!response.ok) throw new Error(`Loading the chat failed (${response.status}).`);
  return (await response.json()) as SluiceMessage[];
}

/** useChat's stop() only closes its connection; this stops the generation itself. */
export async function cancelReply(taskId: string, token: string): Promise<void> {
  await fetch(`/api/stream/${encodeURIComponent(taskId)}/cancel`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
}
