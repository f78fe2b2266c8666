import { randomBytes } from "node:crypto";
import type { SavedMessage, Session } from "./stream-recorder.ts";

/** The HTTP calls a fault test makes, in the user's terms. Errors carry the status and body. */

export class ApiError extends Error {
  readonly status: number;
  readonly body: string;
  readonly headers: Headers;
  constructor(status: number, body: string, headers: Headers) {
    super(`HTTP ${status}: ${body}`);
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

export async function call<T>(baseUrl: string, method: string, path: string, options: { token?: string; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<T> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const text = await response.text();
  if (!response.ok) throw new ApiError(response.status, text, response.headers);
  return (text ? JSON.parse(text) : undefined) as T;
}

export const testPassword = "correct horse battery staple";

export async function signUp(baseUrl: string, label = "fault", password = testPassword): Promise<Session & { email: string }> {
  const email = `${label}-${randomBytes(6).toString("hex")}@example.test`;
  const body = await call<{ user: { id: string }; token: string }>(baseUrl, "POST", "/api/auth/register", { body: { email, password } });
  return { baseUrl, token: body.token, userId: body.user.id, email };
}

export async function createConversation(session: Session): Promise<string> {
  return (await call<{ id: string }>(session.baseUrl, "POST", "/api/conversations", { token: session.token, body: {} })).id;
}

export interface Accepted {
  taskId: string;
  streamUrl: string;
  assistantMessage: { id: string; status: string };
}

export async function sendMessage(session: Session, conversationId: string, content: string): Promise<Accepted> {
  return await call<Accepted>(session.baseUrl, "POST", `/api/conversations/${conversationId}/messages`, { token: session.token, body: { content } });
}

export async function conversationMessages(session: Session, conversationId: string): Promise<SavedMessage[]> {
  return (await call<{ messages: SavedMessage[] }>(session.baseUrl, "GET", `/api/conversations/${conversationId}`, { token: session.token })).messages;
}

/** Polls until the task's saved message is final; there is no event for "the row settled" visible to a client. */
export async function waitForFinalMessage(session: Session, conversationId: string, taskId: string, timeoutMs = 30_000): Promise<SavedMessage> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const message = (await conversationMessages(session, conversationId)).find((candidate) => candidate.taskId === taskId);
    if (message && message.status !== "pending" && message.status !== "streaming") return message;
    if (Date.now() > deadline) throw new Error(`task ${taskId} still ${message?.status ?? "missing"} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A deterministic PRNG (mulberry32) so a failing chaos run can be replayed from its seed. */
export { seededRandom } from "../../../src/llm/simulated-text.ts";

const vocabulary = ["alpha", "beta", "gamma", "délta", "ε", "日本語", "naïve", "—", "line\nbreak", "quote\"d", "tab\there", "emoji🙂", "x"];

/** An `echo:` prompt (the simulated model replies with exactly the text after it) and that text. */
export function echoPrompt(random: () => number, words: number): { prompt: string; expected: string } {
  const parts: string[] = [];
  for (let index = 0; index < words; index += 1) parts.push(vocabulary[Math.floor(random() * vocabulary.length)] ?? "x");
  const expected = parts.join(" ");
  return { prompt: `echo:${expected}`, expected };
}

/** Polls `condition` every 50 ms until it is true or the deadline passes. */
export async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The number of runs: SLUICE_CHAOS_RUNS in `npm run test:chaos`, `fallback` in `npm test`. */
export function chaosRuns(fallback: number): number {
  const value = Number(process.env.SLUICE_CHAOS_RUNS);
  return Number.isInteger(value) && value > 0 ? value : fallback;
}

export function chaosSeed(): number {
  const value = Number(process.env.SLUICE_CHAOS_SEED);
  return Number.isInteger(value) ? value : 20_240_601;
}
