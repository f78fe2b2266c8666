import { randomBytes } from "node:crypto";
import { expect } from "vitest";
import { readSse, type SseResponse } from "./read-sse.ts";

/** The public JSON shapes the tests read (src/chat/present.ts). */
export interface MessageJson {
  id: string;
  role: "user" | "assistant";
  content: string;
  status: "pending" | "streaming" | "completed" | "cancelled" | "failed";
  model: string | null;
  taskId: string | null;
  usage: { inputTokens: number; outputTokens: number } | null;
  error: { code: string; message: string } | null;
}
export interface ConversationJson {
  id: string;
  title: string | null;
  createdAt: string;
  updatedAt: string;
  messages: MessageJson[];
  activeGeneration: { taskId: string; messageId: string; streamUrl: string } | null;
}
export interface AcceptedJson {
  userMessage?: MessageJson;
  assistantMessage: { id: string; status: string };
  taskId: string;
  streamUrl: string;
}

export interface ApiAnswer<T = unknown> {
  status: number;
  body: T;
  text: string;
  headers: Headers;
}

/**
 * A signed-in user of one Sluice API (base URL), speaking plain HTTP like any
 * client would. `call` never throws on an error status; the helpers that
 * expect success assert the status so a failure names the answer.
 */
export interface ChatUser {
  readonly token: string;
  readonly email: string;
  readonly baseUrl: string;
  call<T = unknown>(method: string, path: string, options?: { body?: unknown; headers?: Record<string, string>; baseUrl?: string }): Promise<ApiAnswer<T>>;
  createConversation(title?: string): Promise<{ id: string; title: string | null }>;
  send(conversationId: string, content: string, options?: { model?: string; idempotencyKey?: string; baseUrl?: string }): Promise<AcceptedJson>;
  conversation(conversationId: string, baseUrl?: string): Promise<ConversationJson>;
  /** Reads the task's SSE stream with the bearer token (to its `end`, or until `stopAfter`). */
  stream(taskId: string, options?: Parameters<typeof readSse>[1] & { baseUrl?: string; query?: string }): Promise<SseResponse>;
}

export async function call<T = unknown>(
  baseUrl: string,
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string>; token?: string } = {},
): Promise<ApiAnswer<T>> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers["content-type"] ??= "application/json";
  }
  const response = await fetch(`${baseUrl}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text === "" ? null : JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, body: parsed as T, text, headers: response.headers };
}

/** Registers a fresh account on `baseUrl` and returns a client for it. */
export async function registerUser(baseUrl: string, label = "user"): Promise<ChatUser> {
  const email = `${label}-${randomBytes(5).toString("hex")}@example.test`;
  const registered = await call<{ token: string }>(baseUrl, "POST", "/api/auth/register", { body: { email, password: "correct horse battery" } });
  expect(registered.status, registered.text).toBe(201);
  const token = registered.body.token;
  const user: ChatUser = {
    token,
    email,
    baseUrl,
    call: (method, path, options = {}) =>
      call(options.baseUrl ?? baseUrl, method, path, { token, ...(options.body === undefined ? {} : { body: options.body }), ...(options.headers ? { headers: options.headers } : {}) }),
    createConversation: async (title) => {
      const created = await user.call<{ id: string; title: string | null }>("POST", "/api/conversations", title === undefined ? {} : { body: { title } });
      expect(created.status, created.text).toBe(201);
      return created.body;
    },
    send: async (conversationId, content, options = {}) => {
      const sent = await user.call<AcceptedJson>("POST", `/api/conversations/${conversationId}/messages`, {
        body: { content, ...(options.model === undefined ? {} : { model: options.model }) },
        ...(options.idempotencyKey === undefined ? {} : { headers: { "idempotency-key": options.idempotencyKey } }),
        ...(options.baseUrl === undefined ? {} : { baseUrl: options.baseUrl }),
      });
      expect(sent.status, sent.text).toBe(202);
      return sent.body;
    },
    conversation: async (conversationId, otherBase) => {
      const got = await user.call<ConversationJson>("GET", `/api/conversations/${conversationId}`, otherBase === undefined ? {} : { baseUrl: otherBase });
      expect(got.status, got.text).toBe(200);
      return got.body;
    },
    stream: (taskId, options = {}) => {
      const { baseUrl: otherBase, query, headers, ...rest } = options;
      return readSse(`${otherBase ?? baseUrl}/api/stream/${encodeURIComponent(taskId)}${query ?? ""}`, {
        ...rest,
        headers: { authorization: `Bearer ${token}`, ...(headers ?? {}) },
      });
    },
  };
  return user;
}

/** The assistant reply of a task, as GET /api/conversations/:id shows it. */
export function replyOf(conversation: ConversationJson, taskId: string): MessageJson {
  const reply = conversation.messages.find((message) => message.role === "assistant" && message.taskId === taskId);
  if (!reply) throw new Error(`no assistant message for task ${taskId} in ${JSON.stringify(conversation.messages)}`);
  return reply;
}

/**
 * Polls the conversation until the task's reply is final. The saved message has
 * no push channel, so this is a poll with a deadline (10 ms steps).
 */
export async function waitForFinalReply(user: ChatUser, conversationId: string, taskId: string, deadlineMs = 20_000): Promise<MessageJson> {
  return waitFor(async () => {
    const reply = replyOf(await user.conversation(conversationId), taskId);
    return reply.status === "pending" || reply.status === "streaming" ? undefined : reply;
  }, deadlineMs, `the reply of ${taskId} to become final`);
}

/** Polls `probe` every 20 ms until it returns a value, or fails after the deadline. */
export async function waitFor<T>(probe: () => Promise<T | undefined>, deadlineMs: number, what: string): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Every `end` event of a stream, and that there is exactly one and it is last. */
export function expectOneEndLast(stream: SseResponse): { status: string; error?: { code: string; message: string }; messageId?: string } {
  const ends = stream.events.filter((event) => event.event === "end");
  expect(ends, JSON.stringify(stream.events.map((event) => event.event))).toHaveLength(1);
  expect(stream.events.at(-1)?.event).toBe("end");
  return ends[0]?.json as unknown as { status: string; error?: { code: string; message: string }; messageId?: string };
}

/** The error shape every API error has (PROTOCOL.md 2.3, STYLE.md "Errors"). */
export function expectErrorShape(answer: ApiAnswer, code?: string): void {
  const body = answer.body as { error?: { code?: unknown; message?: unknown } } | null;
  expect(typeof body?.error?.code, `${answer.status} ${answer.text}`).toBe("string");
  expect(typeof body?.error?.message).toBe("string");
  if (code !== undefined) expect(body?.error?.code, answer.text).toBe(code);
  expect(answer.text).not.toMatch(/\n\s+at |node_modules|\.ts:\d+/);
}
