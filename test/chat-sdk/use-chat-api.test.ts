import { DefaultChatTransport, readUIMessageStream, type UIMessage, type UIMessageChunk } from "ai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chatConversationId } from "../../src/chat/ui-chats-service.ts";
import { expectErrorShape, registerUser, waitForFinalReply, type ChatUser } from "../support/client/chat-api.ts";
import { startSluice, type InProcessSluice } from "../support/sluice/start-sluice.ts";
import { readUntilText } from "../support/client/read-until-text.ts";

let sluice: InProcessSluice;
let alice: ChatUser;
let bob: ChatUser;

beforeAll(async () => {
  // About a second for the simulated model's own reply (long enough to reload, cancel or hit a limit mid-reply); echo replies are short.
  sluice = await startSluice({ label: "use-chat-api", env: { SIMULATED_TOKENS_PER_SECOND: "200", SIMULATED_TOKEN_COUNT: "200", LIMIT_OPEN_STREAMS_PER_USER: "2", LIMIT_MESSAGE_CHARS: "2000" } });
  alice = await registerUser(sluice.url, "alice");
  bob = await registerUser(sluice.url, "bob");
});
afterAll(async () => {
  await sluice.stop();
});

let chatCounter = 0;
const newChatId = (): string => `chat${Date.now().toString(36)}${(chatCounter++).toString(36)}`;
const userMessage = (text: string): UIMessage => ({ id: `m${(chatCounter++).toString(36)}`, role: "user", parts: [{ type: "text", text }] });

/** The AI SDK's own transport, as useChat builds it, with the user's bearer token. */
function transportOf(user: ChatUser): DefaultChatTransport<UIMessage> {
  return new DefaultChatTransport({ api: `${sluice.url}/api/chat`, headers: { authorization: `Bearer ${user.token}` } });
}

async function collect(stream: ReadableStream<UIMessageChunk>): Promise<{ chunks: UIMessageChunk[]; message: UIMessage | undefined }> {
  const chunks: UIMessageChunk[] = [];
  const tee = stream.pipeThrough(new TransformStream<UIMessageChunk, UIMessageChunk>({ transform: (chunk, controller) => (chunks.push(chunk), controller.enqueue(chunk)) }));
  let message: UIMessage | undefined;
  for await (const snapshot of readUIMessageStream({ stream: tee })) message = snapshot;
  return { chunks, message };
}

const textOf = (message: UIMessage | undefined): string => (message?.parts ?? []).map((part) => (part.type === "text" ? part.text : "")).join("");

async function send(user: ChatUser, chatId: string, messages: UIMessage[], trigger: "submit-message" | "regenerate-message" = "submit-message") {
  return collect(await transportOf(user).sendMessages({ chatId, messages, trigger, messageId: undefined, abortSignal: undefined }));
}

describe("POST /api/chat", () => {
  it("answers the UI message stream protocol, and the message is a Sluice generation saved under the chat's conversation", async () => {
    const chatId = newChatId();
    const response = await fetch(`${sluice.url}/api/chat`, {
      method: "POST",
      headers: { authorization: `Bearer ${alice.token}`, "content-type": "application/json" },
      body: JSON.stringify({ id: chatId, messages: [userMessage("echo:hello from useChat")], trigger: "submit-message" }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-vercel-ai-ui-message-stream")).toBe("v1");
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const body = await response.text();
    expect(body.endsWith("data: [DONE]\n\n")).toBe(true);
    const types = body.split("\n\n").filter((frame) => frame.startsWith("data: {")).map((frame) => (JSON.parse(frame.slice(6)) as { type: string }).type);
    expect(types[0]).toBe("start");
    expect(types.slice(1, 3)).toEqual(["start-step", "text-start"]);
    expect(types.slice(-3)).toEqual(["text-end", "finish-step", "finish"]);

    // The chat id names the conversation: a name-based (version 5) UUID, the same whoever computes it.
    expect(chatConversationId(chatId)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(chatConversationId(chatId)).not.toBe(chatConversationId(`${chatId}x`));
    const conversation = await alice.conversation(chatConversationId(chatId));
    expect(conversation.title).toBe("echo:hello from useChat");
    expect(conversation.messages.map((message) => message.role)).toEqual(["user", "assistant"]);
    expect(conversation.messages[0]?.content).toBe("echo:hello from useChat");
    const start = JSON.parse(body.split("\n\n")[0]!.slice(6)) as { messageId: string; messageMetadata: { taskId: string; conversationId: string } };
    expect(start.messageId).toBe(conversation.messages[1]?.id);
    expect(start.messageMetadata.conversationId).toBe(conversation.id);
    expect(start.messageMetadata.taskId).toBe(conversation.messages[1]?.taskId);
  });

  it("keeps the history itself: the next turn takes only the last user message, and regenerate-message puts a new version of the last reply in its place", async () => {
    const chatId = newChatId();
    const first = await send(alice, chatId, [userMessage("echo:one")]);
    expect(textOf(first.message)).toContain("one");
    // A client-edited past is ignored: only the last message is the new turn.
    const edited: UIMessage[] = [userMessage("echo:something else entirely"), { id: "x", role: "assistant", parts: [{ type: "text", text: "made up" }] }, userMessage("echo:two")];
    const second = await send(alice, chatId, edited);
    const conversation = await alice.conversation(chatConversationId(chatId));
    expect(conversation.messages.map((message) => message.content)).toEqual(["echo:one", textOf(first.message), "echo:two", textOf(second.message)]);

    const regenerated = await send(alice, chatId, edited.slice(0, 3), "regenerate-message");
    const after = await alice.conversation(chatConversationId(chatId));
    expect(after.messages).toHaveLength(4);
    expect(after.messages[3]?.id).toBe(regenerated.message?.id);
    expect(after.messages[3]?.id).not.toBe(second.message?.id);
    expect(after.messages[3]?.content).toBe(textOf(regenerated.message));
    // Nothing is lost: the old reply is the other version (issue 16), and the chat's history is the new branch.
    expect((after.messages[3] as unknown as { siblings: { ids: string[] } }).siblings.ids).toEqual([second.message?.id, regenerated.message?.id]);
    const history = await alice.call<Array<{ id: string }>>("GET", `/api/chat/${chatId}/messages`);
    expect(history.body.map((message) => message.id).at(-1)).toBe(regenerated.message?.id);
    expect(history.body).toHaveLength(4);
  });

  it("refuses a bad body with 400 in the error shape, before anything is stored", async () => {
    const chatId = newChatId();
    const post = (body: unknown) => alice.call("POST", "/api/chat", { body });
    const cases: unknown[] = [
      {},
      { id: chatId, messages: [], trigger: "submit-message" },
      { id: chatId, messages: [userMessage("hi")], trigger: "resume-stream" },
      { id: chatId, messages: [userMessage("hi")], trigger: "submit-message", extra: true },
      { id: "", messages: [userMessage("hi")], trigger: "submit-message" },
      { id: chatId, messages: [{ id: "a", role: "assistant", parts: [{ type: "text", text: "hi" }] }], trigger: "submit-message" },
      { id: chatId, messages: [{ id: "a", role: "user", parts: [{ type: "file", mediaType: "image/png", url: "data:," }] }], trigger: "submit-message" },
      { id: chatId, messages: [userMessage("   ")], trigger: "submit-message" },
      { id: chatId, messages: [userMessage("a\u0000b")], trigger: "submit-message" },
      { id: chatId, messages: [userMessage("edited")], trigger: "submit-message", messageId: "m1" },
      { id: chatId, messages: [userMessage("hi")], trigger: "submit-message", model: "no-such-model" },
    ];
    for (const body of cases) {
      const answer = await post(body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expectErrorShape(answer);
    }
    expect((await alice.call("GET", `/api/conversations/${chatConversationId(chatId)}`)).status).toBe(404);
    const unauthenticated = await fetch(`${sluice.url}/api/chat`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id: chatId, messages: [userMessage("hi")], trigger: "submit-message" }) });
    expect(unauthenticated.status).toBe(401);
  });

  it("takes an Idempotency-Key (README's recipe): a retried send or a keyed regenerate streams the same generation from its start and stores nothing new; the key with another message is 422", async () => {
    const chatId = newChatId();
    const message = userMessage("echo:sent once");
    // README "Use Sluice from useChat": a send's key is its chat and its new message's id; a regenerate has none.
    const transport = new DefaultChatTransport<UIMessage>({
      api: `${sluice.url}/api/chat`,
      headers: { authorization: `Bearer ${alice.token}` },
      prepareSendMessagesRequest: ({ id, messages, trigger, messageId, body, headers }) => ({
        body: { ...body, id, messages, trigger, messageId },
        headers: { ...(headers as Record<string, string>), ...(trigger === "submit-message" ? { "idempotency-key": `${id}:${messages.at(-1)?.id ?? ""}` } : {}) },
      }),
    });
    // What useChat sends: a regenerate drops the reply being replaced, so the history ends with the question.
    const post = async (trigger: "submit-message" | "regenerate-message", headers?: Record<string, string>) =>
      collect(await transport.sendMessages({ chatId, messages: [message], trigger, messageId: undefined, abortSignal: undefined, ...(headers ? { headers } : {}) }));
    const taskOf = (reply: { message: UIMessage | undefined }) => (reply.message?.metadata as { taskId?: string } | undefined)?.taskId;
    const assistantsNow = async () => (await alice.conversation(chatConversationId(chatId))).messages.filter((row) => row.role === "assistant");

    const first = await post("submit-message");
    const retried = await post("submit-message");
    expect(textOf(first.message)).toContain("sent once");
    expect(retried.message?.id).toBe(first.message?.id);
    expect(taskOf(retried)).toBe(taskOf(first));
    expect(textOf(retried.message)).toBe(textOf(first.message));
    expect((await alice.conversation(chatConversationId(chatId))).messages.map((row) => row.role)).toEqual(["user", "assistant"]);

    const reused = await alice.call("POST", "/api/chat", {
      body: { id: chatId, messages: [{ ...message, parts: [{ type: "text", text: "echo:another" }] }], trigger: "submit-message" },
      headers: { "idempotency-key": `${chatId}:${message.id}` },
    });
    expect(reused.status).toBe(422);
    expectErrorShape(reused, "IDEMPOTENCY_KEY_REUSED");

    // A regenerate with a key of its own (one per click) is replayed on retry.
    const regenerated = await post("regenerate-message", { "idempotency-key": `regenerate-${chatId}-1` });
    const regeneratedAgain = await post("regenerate-message", { "idempotency-key": `regenerate-${chatId}-1` });
    expect(regeneratedAgain.message?.id).toBe(regenerated.message?.id);
    expect(regenerated.message?.id).not.toBe(first.message?.id);
    expect((await assistantsNow()).map((row) => [row.id, row.siblings.count])).toEqual([[regenerated.message?.id, 2]]);

    // The recipe gives a regenerate no key, so a second click makes a new version.
    const clickedAgain = await post("regenerate-message");
    expect(clickedAgain.message?.id).not.toBe(regenerated.message?.id);
    expect((await assistantsNow()).map((row) => [row.id, row.siblings.count])).toEqual([[clickedAgain.message?.id, 3]]);
  });

  it("answers another user's chat id with 404 on POST, and as an unknown chat (204, []) on its reads", async () => {
    const chatId = newChatId();
    await send(alice, chatId, [userMessage("echo:alice's")]);
    for (const trigger of ["submit-message", "regenerate-message"] as const) {
      const answer = await bob.call("POST", "/api/chat", { body: { id: chatId, messages: [userMessage("echo:bob's")], trigger } });
      expect(answer.status, trigger).toBe(404);
      expectErrorShape(answer, "NOT_FOUND");
    }
    expect((await bob.call("GET", `/api/chat/${chatId}/stream`)).status).toBe(204);
    expect((await bob.call("GET", `/api/chat/${chatId}/messages`)).body).toEqual([]);
    expect((await alice.call<unknown[]>("GET", `/api/chat/${chatId}/messages`)).body).toHaveLength(2);
    expect((await alice.conversation(chatConversationId(chatId))).messages).toHaveLength(2);
    // Regenerating a chat that does not exist is not a way to create one.
    expect((await alice.call("POST", "/api/chat", { body: { id: newChatId(), messages: [userMessage("x")], trigger: "regenerate-message" } })).status).toBe(404);
  });

  it("applies the user's limits: a second reply in a generating chat is 409, open streams over the limit 429 with nothing started", async () => {
    const carol = await registerUser(sluice.url, "carol");
    const controller = new AbortController();
    /** Starts a long reply (the simulated model's text, about a second) and holds its stream open. */
    const open = (chatId: string) =>
      fetch(`${sluice.url}/api/chat`, {
        method: "POST",
        signal: controller.signal,
        headers: { authorization: `Bearer ${carol.token}`, "content-type": "application/json" },
        body: JSON.stringify({ id: chatId, messages: [userMessage("tell me a long story")], trigger: "submit-message" }),
      });
    try {
      const [first, second] = [newChatId(), newChatId()];
      const tooLong = await carol.call("POST", "/api/chat", { body: { id: first, messages: [userMessage("x".repeat(2001))], trigger: "submit-message" } });
      expect(tooLong.status).toBe(413);
      expectErrorShape(tooLong, "MESSAGE_TOO_LONG");
      // Refused before any turn: the chat id is still new, and the next message creates its conversation.
      expect((await carol.call("GET", `/api/conversations/${chatConversationId(first)}`)).status).toBe(404);
      expect((await open(first)).status).toBe(200);
      // The answer's headers come after the turn was accepted, so the reply is still generating.
      const inProgress = await carol.call("POST", "/api/chat", { body: { id: first, messages: [userMessage("and another")], trigger: "submit-message" } });
      expect(inProgress.status).toBe(409);
      expectErrorShape(inProgress, "GENERATION_IN_PROGRESS");
      expect((await open(second)).status).toBe(200);
      const third = newChatId();
      const overLimit = await carol.call("POST", "/api/chat", { body: { id: third, messages: [userMessage("one more")], trigger: "submit-message" } });
      expect(overLimit.status).toBe(429);
      expectErrorShape(overLimit, "TOO_MANY_OPEN_STREAMS");
      expect((await carol.call("GET", `/api/conversations/${chatConversationId(third)}`)).status).toBe(404);
      const resumeOverLimit = await carol.call("GET", `/api/chat/${first}/stream`);
      expect(resumeOverLimit.status).toBe(429);
      expectErrorShape(resumeOverLimit, "TOO_MANY_OPEN_STREAMS");
    } finally {
      controller.abort();
    }
  });
});

describe("GET /api/chat/:id/stream", () => {
  it("answers 204 for a chat without an active generation, and the active one from its start, rebuilt into the saved message", async () => {
    const chatId = newChatId();
    expect((await alice.call("GET", `/api/chat/${chatId}/stream`)).status).toBe(204);
    const controller = new AbortController();
    const transport = transportOf(alice);
    // Send, read a little, drop the connection (a reload), then reconnect as useChat's resume does.
    const stream = await transport.sendMessages({ chatId, messages: [userMessage("tell me a long story")], trigger: "submit-message", messageId: undefined, abortSignal: controller.signal });
    const { reader, seen } = await readUntilText(stream);
    controller.abort();
    await reader.cancel().catch(() => undefined);
    const resumed = await transport.reconnectToStream({ chatId });
    expect(resumed).not.toBeNull();
    const { chunks, message } = await collect(resumed!);
    expect(chunks[0]?.type).toBe("start");
    expect(chunks.filter((chunk) => chunk.type === "text-start")).toHaveLength(1);
    const start = seen[0] as { type: "start"; messageId: string; messageMetadata: { taskId: string; conversationId: string } };
    const saved = await waitForFinalReply(alice, start.messageMetadata.conversationId, start.messageMetadata.taskId);
    expect(message?.id).toBe(saved.id);
    expect(textOf(message)).toBe(saved.content);
    expect(saved.status).toBe("completed");
    expect((await alice.call("GET", `/api/chat/${chatId}/stream`)).status).toBe(204);
  });

  it("is cancelled by the stop endpoint: the stream ends with abort and finish, the reply is saved as cancelled", async () => {
    const chatId = newChatId();
    const stream = await transportOf(alice).sendMessages({ chatId, messages: [userMessage("tell me a long story")], trigger: "submit-message", messageId: undefined, abortSignal: undefined });
    const chunks: UIMessageChunk[] = [];
    let cancelled = false;
    for await (const chunk of stream) {
      chunks.push(chunk);
      if (!cancelled && chunk.type === "text-delta") {
        cancelled = true;
        const taskId = (chunks[0] as { messageMetadata: { taskId: string } }).messageMetadata.taskId;
        expect((await alice.call("POST", `/api/stream/${taskId}/cancel`)).status).toBe(202);
      }
    }
    expect(chunks.map((chunk) => chunk.type).slice(-2)).toEqual(["abort", "finish"]);
    const conversation = await alice.conversation(chatConversationId(chatId));
    expect(conversation.messages[1]?.status).toBe("cancelled");
  });
});
