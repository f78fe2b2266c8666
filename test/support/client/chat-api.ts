import { randomBytes } from "node:crypto";
import { expect, vi } from "vitest";
import type { z } from "zod";
import type { conversationDetail, conversationView, generationAccepted, messageView, userView } from "../../../src/api/schemas.ts";
import { readSse, type SseResponse } from "./read-sse.ts";

/** The public JSON shapes, from the server's own response schemas (src/api/schemas.ts). */
export type MessageJson = z.infer<typeof messageView>;
export type AcceptedJson = z.infer<typeof generationAccepted>;
/** GET /api/conversations/:id and POST …/branch. */
export type ConversationJson = z.infer<typeof conversationDetail>;
type SessionJson = { user: z.infer<typeof userView>; token: string };

export interface ApiAnswer<T = unknown> {
  status: number;
  body: T;
  text: string;
  headers: Headers;
}

/** An answer with another status than the caller expected; carries the answer so a test can assert on it. */
export class ApiError extends Error {
  readonly status: number;
  readonly body: string;
  readonly headers: Headers;
  constructor(answer: ApiAnswer, expected: number) {
    super(`expected HTTP ${expected}, got ${answer.status}: ${answer.text}`);
    this.status = answer.status;
    this.body = answer.text;
    this.headers = answer.headers;
  }
}

/** `answer.body` when the status is `expected`; otherwise throws ApiError naming the answer. */
export function expectStatus<T>(answer: ApiAnswer<T>, expected: number): T {
  if (answer.status !== expected) throw new ApiError(answer, expected);
  return answer.body;
}

export interface CallOptions {
  body?: unknown;
  headers?: Record<string, string>;
  token?: string;
  signal?: AbortSignal;
}

/** One HTTP request as any client would make it; never throws on an error status (see `expectStatus`). */
export async function call<T = unknown>(baseUrl: string, method: string, path: string, options: CallOptions = {}): Promise<ApiAnswer<T>> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers["content-type"] ??= "application/json";
  }
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text === "" ? null : JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, body: parsed as T, text, headers: response.headers };
}

/**
 * A signed-in user of one Sluice API (base URL), speaking plain HTTP like any
 * client would. `call` never throws on an error status; the helpers that
 * expect success throw ApiError (status, body) when the answer is another.
 */
export interface ChatUser {
  readonly token: string;
  readonly email: string;
  readonly userId: string;
  readonly baseUrl: string;
  call<T = unknown>(method: string, path: string, options?: Omit<CallOptions, "token"> & { baseUrl?: string }): Promise<ApiAnswer<T>>;
  createConversation(title?: string): Promise<z.infer<typeof conversationView>>;
  send(conversationId: string, content: string, options?: { model?: string; idempotencyKey?: string; baseUrl?: string }): Promise<AcceptedJson>;
  conversation(conversationId: string, baseUrl?: string): Promise<ConversationJson>;
  /** Reads the task's SSE stream with the bearer token (to its `end`, or until `stopAfter`). */
  stream(taskId: string, options?: Parameters<typeof readSse>[1] & { baseUrl?: string; query?: string }): Promise<SseResponse>;
}

export const testPassword = "correct horse battery";

/** Registers a fresh account on `baseUrl` and returns a client for it. */
export async function registerUser(baseUrl: string, label = "user", password = testPassword): Promise<ChatUser> {
  const email = `${label}-${randomBytes(5).toString("hex")}@example.test`;
  const session = expectStatus(await call<SessionJson>(baseUrl, "POST", "/api/auth/register", { body: { email, password } }), 201);
  const token = session.token;
  const user: ChatUser = {
    token,
    email,
    userId: session.user.id,
    baseUrl,
    call: (method, path, options = {}) => {
      const { baseUrl: otherBase, ...rest } = options;
      return call(otherBase ?? baseUrl, method, path, { ...rest, token });
    },
    createConversation: async (title) =>
      expectStatus(await user.call<z.infer<typeof conversationView>>("POST", "/api/conversations", title === undefined ? {} : { body: { title } }), 201),
    send: async (conversationId, content, options = {}) =>
      expectStatus(
        await user.call<AcceptedJson>("POST", `/api/conversations/${conversationId}/messages`, {
          body: { content, ...(options.model === undefined ? {} : { model: options.model }) },
          ...(options.idempotencyKey === undefined ? {} : { headers: { "idempotency-key": options.idempotencyKey } }),
          ...(options.baseUrl === undefined ? {} : { baseUrl: options.baseUrl }),
        }),
        202,
      ),
    conversation: async (conversationId, otherBase) =>
      expectStatus(await user.call<ConversationJson>("GET", `/api/conversations/${conversationId}`, otherBase === undefined ? {} : { baseUrl: otherBase }), 200),
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

/** Polls the conversation until the task's reply is final: the saved message has no push channel a client sees. */
export async function waitForFinalReply(user: ChatUser, conversationId: string, taskId: string, timeoutMs = 30_000): Promise<MessageJson> {
  return await vi.waitFor(
    async () => {
      const reply = replyOf(await user.conversation(conversationId), taskId);
      if (reply.status === "pending" || reply.status === "streaming") throw new Error(`the reply of ${taskId} is still ${reply.status}`);
      return reply;
    },
    { timeout: timeoutMs, interval: 50 },
  );
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
