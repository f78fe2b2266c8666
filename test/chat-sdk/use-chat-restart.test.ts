import { DefaultChatTransport, readUIMessageStream, type UIMessage } from "ai";
import { beforeAll, expect, it } from "vitest";
import { registerUser, replyOf, type ChatUser } from "../support/client/chat-api.ts";
import type { InProcessInstance } from "../support/sluice/start-sluice.ts";
import { useSluice } from "../support/sluice/use-sluice.ts";
import { readUntilText } from "../support/client/read-until-text.ts";

// An API process and a worker on one database, Redis prefix and AUTH_SECRET; the API is
// restarted mid-reply. A default reply is 120 words at 40 words/s (~3 s).
let apiA: InProcessInstance;
let user: ChatUser;

const sluice = useSluice({ label: "use-chat-restart", topology: { apis: 1, workers: 1 }, env: { SIMULATED_TOKENS_PER_SECOND: "40", SIMULATED_TOKEN_COUNT: "120" } });
beforeAll(async () => {
  apiA = sluice.apis[0]!;
  user = await registerUser(sluice.url, "restart");
});

const transportOn = (baseUrl: string) => new DefaultChatTransport<UIMessage>({ api: `${baseUrl}/api/chat`, headers: { authorization: `Bearer ${user.token}` } });

it("a useChat reply survives its API process: the stream closes with an error chunk, and the resume on the next process rebuilds the saved message", async () => {
  const chatId = "restart-chat";
  const stream = await transportOn(sluice.url).sendMessages({
    chatId,
    messages: [{ id: "u1", role: "user", parts: [{ type: "text", text: "tell me a long story" }] }],
    trigger: "submit-message",
    messageId: undefined,
    abortSignal: undefined,
  });
  const { reader, seen } = await readUntilText(stream);
  // The API shuts down gracefully: its open stream ends with an error chunk, the generation goes on in the worker.
  const stopped = apiA.stop();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    seen.push(value);
  }
  await stopped;
  expect(seen.at(-1)).toEqual({ type: "error", errorText: expect.stringMatching(/^SERVICE_UNAVAILABLE: /) as unknown });
  expect(seen.some((chunk) => chunk.type === "finish")).toBe(false);

  const apiB = await sluice.startApi();
  const resumed = await transportOn(apiB.url!).reconnectToStream({ chatId });
  expect(resumed).not.toBeNull();
  let message: UIMessage | undefined;
  for await (const snapshot of readUIMessageStream({ stream: resumed! })) message = snapshot;
  const start = seen[0] as { messageId: string; messageMetadata: { conversationId: string; taskId: string } };
  // `finish` comes from the log's `end`, which is written only after the final save: one read suffices.
  const saved = replyOf(await user.conversation(start.messageMetadata.conversationId, apiB.url), start.messageMetadata.taskId);
  expect(saved.status).toBe("completed");
  expect(message?.id).toBe(start.messageId);
  expect(message?.parts.filter((part) => part.type === "text")).toHaveLength(1);
  expect(message?.parts.map((part) => (part.type === "text" ? part.text : "")).join("")).toBe(saved.content);
});
