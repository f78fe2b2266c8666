import type { Page } from "playwright-core";
import { call, expectStatus, testPassword, type ConversationJson, type MessageJson } from "../client/chat-api.ts";
import { readSse, textOf } from "../client/read-sse.ts";

/** Page actions and reads shared by the browser tests, in the user's terms. */

export function uniqueEmail(label: string): string {
  return `${label}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}@example.test`;
}

export async function register(page: Page, baseUrl: string, email: string): Promise<void> {
  await page.goto(`${baseUrl}/`);
  await page.getByTestId("auth-switch").click();
  await page.getByTestId("auth-email").fill(email);
  await page.getByTestId("auth-password").fill(testPassword);
  await page.getByTestId("auth-submit").click();
  await page.getByTestId("composer-input").waitFor();
}

/** Types a message and presses Enter (the composer sends on Enter). */
export async function sendMessage(page: Page, text: string): Promise<void> {
  const input = page.getByTestId("composer-input");
  await input.fill(text);
  await input.press("Enter");
}

export function lastAssistant(page: Page) {
  return page.getByTestId("message-assistant").last();
}

/** Waits until the last assistant message has this data-status. */
export async function waitForStatus(page: Page, status: string, timeoutMs = 30_000): Promise<void> {
  await page.waitForFunction(
    (expected) => {
      const messages = document.querySelectorAll('[data-testid="message-assistant"]');
      return messages[messages.length - 1]?.getAttribute("data-status") === expected;
    },
    status,
    { timeout: timeoutMs },
  );
}

/** Waits until the streaming reply shows at least `minimumLength` characters; returns its text. */
export async function waitForStreamedText(page: Page, minimumLength: number): Promise<string> {
  const handle = await page.waitForFunction(
    (minimum) => {
      const messages = document.querySelectorAll('[data-testid="message-assistant"]');
      const last = messages[messages.length - 1];
      const text = last?.querySelector(".markdown")?.textContent ?? "";
      return last?.getAttribute("data-status") === "streaming" && text.trim().length >= minimum ? text : false;
    },
    minimumLength,
    { timeout: 30_000 },
  );
  return (await handle.jsonValue()) as string;
}

export async function assistantText(page: Page): Promise<string> {
  return (await lastAssistant(page).locator(".markdown").textContent()) ?? "";
}

export function normalizeWhitespace(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

export function conversationIdFromUrl(page: Page): string {
  const match = /\/c\/([^/?#]+)/.exec(page.url());
  if (!match?.[1]) throw new Error(`not on a conversation page: ${page.url()}`);
  return decodeURIComponent(match[1]);
}

/** Reads the conversation as saved on the server, with the token the page holds. */
export async function fetchSavedConversation(page: Page, baseUrl: string, conversationId: string): Promise<ConversationJson> {
  const token = await page.evaluate(() => (JSON.parse(localStorage.getItem("sluice.session") ?? "{}") as { token?: string }).token ?? "");
  return expectStatus(await call<ConversationJson>(baseUrl, "GET", `/api/conversations/${conversationId}`, { token }), 200);
}

export async function savedLastAssistant(page: Page, baseUrl: string): Promise<MessageJson> {
  const conversation = await fetchSavedConversation(page, baseUrl, conversationIdFromUrl(page));
  const message = conversation.messages.filter((candidate) => candidate.role === "assistant").at(-1);
  if (!message) throw new Error("no saved assistant message");
  return message;
}

/**
 * Reads the open conversation's active stream from Node (not the browser) until
 * it has delivered at least `minimumLength` characters of text, or the reply ends.
 */
export async function waitUntilServerStreamed(page: Page, baseUrl: string, minimumLength: number): Promise<void> {
  const conversation = await fetchSavedConversation(page, baseUrl, conversationIdFromUrl(page));
  if (!conversation.activeGeneration) throw new Error("the reply ended before the test could break the network");
  const stream = await readSse(new URL(conversation.activeGeneration.streamUrl, baseUrl).toString(), {
    headers: { accept: "text/event-stream" },
    stopAfter: (event, all) => event.event === "end" || textOf(all).length >= minimumLength,
  });
  if (stream.status !== 200) throw new Error(`stream: ${stream.status} ${stream.body}`);
  if (stream.events.at(-1)?.event === "end") throw new Error("the reply ended before the test could break the network");
}

/** Sends `echo:<reply>` and waits for the saved reply, so each turn adds one user and one assistant message. */
export async function echoTurn(page: Page, reply: string): Promise<void> {
  const before = await page.getByTestId("message-assistant").count();
  await sendMessage(page, `echo:${reply}`);
  await page.waitForFunction((count) => document.querySelectorAll('[data-testid="message-assistant"]').length > count, before);
  await waitForStatus(page, "completed");
}

/**
 * From now on, every answer the page gets that starts or streams a generation: the POSTs
 * that start one (`/messages`, `/edit`, `/regenerate`) and the `GET`s of a `streamUrl`, with
 * the answer's content type (PROTOCOL.md 2.4: a POST that asked for its stream gets it).
 */
export function recordGenerationRequests(page: Page): { method: string; path: string; contentType: string }[] {
  const seen: { method: string; path: string; contentType: string }[] = [];
  page.on("response", (response) => {
    const path = new URL(response.url()).pathname;
    if (!/\/(messages|edit|regenerate)$/.test(path) && !path.startsWith("/api/stream/")) return;
    seen.push({ method: response.request().method(), path, contentType: (response.headers()["content-type"] ?? "").split(";")[0] ?? "" });
  });
  return seen;
}
