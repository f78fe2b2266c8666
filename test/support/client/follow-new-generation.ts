import { expect } from "vitest";
import { echoPrompt, seededRandom } from "../chaos.ts";
import { registerUser, type AcceptedJson, type ChatUser } from "./chat-api.ts";
import { createStreamRecorder, type StreamRecorder, type TaskReport } from "./stream-recorder.ts";

export interface FollowedGeneration {
  session: ChatUser;
  conversationId: string;
  accepted: AcceptedJson;
  /** The reply the simulated model gives an `echo:` prompt; "" for other content. */
  expected: string;
  recorder: StreamRecorder;
  /** The recorder following the stream to its `end`, resuming after every drop. */
  following: Promise<TaskReport>;
}

/**
 * A new user sends one message, `words` seeded words behind `echo:` (or `content`), and a stream
 * recorder follows the reply; resolves once the client has been shown more than `shownLength` characters.
 */
export async function followNewGeneration(
  baseUrl: string,
  label: string,
  message: { seed: number; words: number } | { content: string },
  options: { idleTimeoutMs?: number; deadlineMs?: number; shownLength?: number; startTimeoutMs?: number } = {},
): Promise<FollowedGeneration> {
  const session = await registerUser(baseUrl, label);
  const conversationId = (await session.createConversation()).id;
  const echo = "seed" in message ? echoPrompt(seededRandom(message.seed), message.words) : undefined;
  const accepted = await session.send(conversationId, echo?.prompt ?? ("content" in message ? message.content : ""));
  const recorder = createStreamRecorder(session);
  const following = recorder.follow(accepted.taskId, () => ({ idleTimeoutMs: options.idleTimeoutMs ?? 60_000 }), { deadlineMs: options.deadlineMs ?? 90_000 });
  // Rejections are the caller's, once it awaits `following`; until then this keeps one from going unhandled.
  following.catch(() => undefined);
  await expect
    .poll(() => recorder.report(accepted.taskId).text.length, { timeout: options.startTimeoutMs ?? 30_000, interval: 50, message: "the stream to show text" })
    .toBeGreaterThan(options.shownLength ?? 0);
  return { session, conversationId, accepted, expected: echo?.expected ?? "", recorder, following };
}
