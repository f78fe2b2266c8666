/**
 * Reasoning end to end (issue 16) on real PostgreSQL and Redis: a model's reasoning streams as
 * `reasoning-delta` before the answer, resumes and replays from the log like text, is saved
 * once with the final save (with its duration and in the usage), is served by the conversation
 * routes, `/api/chat/:id/messages` and `/v1/chat/completions`, and is never sent back to the
 * model: the next turn's prompt holds the answer alone.
 */
import { DefaultChatTransport, readUIMessageStream, type UIMessage } from "ai";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { simulatedReasoningText, simulatedReplyText, thinkingWordCount } from "../../src/llm/simulated-provider.ts";
import { chatConversationId } from "../../src/chat/ui-chats-service.ts";
import { startFakeOpenAiServer } from "../support/providers/fake-openai-server.ts";
import type { FakeProviderServer } from "../support/providers/fake-provider-script.ts";
import { textOf, type SseEvent } from "../support/client/read-sse.ts";
import { expectOneEndLast, registerUser, waitForFinalReply, type ChatUser, type MessageJson } from "../support/client/chat-api.ts";
import { startSluice, type InProcessSluice } from "../support/sluice/start-sluice.ts";

type SavedMessage = MessageJson & { reasoning: { text: string; durationMs: number | null } | null; usage: { inputTokens: number; outputTokens: number } | null };

const reasoningOf = (events: readonly SseEvent[]): string => {
  let reasoning = "";
  for (const event of events) {
    if (event.event === "reset") reasoning = "";
    if (event.event === "reasoning-delta") reasoning += String(event.json.delta);
  }
  return reasoning;
};
const kinds = (events: readonly SseEvent[]): string[] => events.map((event) => event.event).filter((kind, index, all) => kind !== all[index - 1]);

describe("reasoning from an OpenAI-compatible server (reasoning_content), through the real SDK", () => {
  let provider: FakeProviderServer;
  let sluice: InProcessSluice;
  let user: ChatUser;
  beforeAll(async () => {
    provider = await startFakeOpenAiServer({ reasoningField: "reasoning_content", reasoningTokenCount: 15, tokenCount: 20 });
    sluice = await startSluice({ label: "reasoning-openai", env: { LLM_PROVIDER: "openai", OPENAI_BASE_URL: provider.url, OPENAI_API_KEY: "sk-fake", LLM_MODEL: "gpt-fake", COALESCE_WINDOW_MS: "0" } });
    user = await registerUser(sluice.url, "reasoning-openai");
  });
  afterAll(async () => {
    await sluice?.stop();
    await provider?.close();
  });

  it("streams reasoning before the answer, saves both with the duration and usage, and sends only the answer back to the model", async () => {
    const conversation = await user.createConversation();
    const accepted = await user.send(conversation.id, "Why is the sky blue?");
    const stream = await user.stream(accepted.taskId);
    expect(expectOneEndLast(stream)).toMatchObject({ status: "completed" });
    expect(kinds(stream.events)).toEqual(["start", "reasoning-delta", "text-delta", "usage", "end"]);
    expect(reasoningOf(stream.events)).toBe(provider.expectedReasoning());
    expect(textOf(stream.events)).toBe(provider.expectedText());

    const saved = (await waitForFinalReply(user, conversation.id, accepted.taskId)) as SavedMessage;
    expect(saved.content).toBe(provider.expectedText());
    expect(saved.reasoning?.text).toBe(provider.expectedReasoning());
    expect(saved.reasoning?.durationMs).toEqual(expect.any(Number));
    expect(saved.reasoning?.durationMs).toBeGreaterThanOrEqual(0);
    expect(saved.usage?.outputTokens).toBe(15 + 20);

    // The next turn: the model sees the earlier answer as the assistant's turn, without its reasoning.
    const next = await user.send(conversation.id, "And at sunset?");
    expectOneEndLast(await user.stream(next.taskId));
    const sent = provider.requests.at(-1)?.body as { messages: Array<{ role: string; content: string }> };
    expect(sent.messages).toEqual([
      { role: "user", content: "Why is the sky blue?" },
      { role: "assistant", content: provider.expectedText() },
      { role: "user", content: "And at sunset?" },
    ]);
    expect(JSON.stringify(sent)).not.toContain(provider.expectedReasoning().slice(0, 20));
  });
});

describe("reasoning from the simulated model (think:)", () => {
  let sluice: InProcessSluice;
  let user: ChatUser;
  const tokenCount = 30;
  beforeAll(async () => {
    // 200 tokens/s: the 40 words of reasoning take 0.2 s, long enough to resume in the middle.
    sluice = await startSluice({ label: "reasoning-simulated", env: { SIMULATED_TOKENS_PER_SECOND: "200", SIMULATED_TOKEN_COUNT: String(tokenCount), COALESCE_WINDOW_MS: "0" } });
    user = await registerUser(sluice.url, "reasoning-simulated");
  });
  afterAll(async () => {
    await sluice?.stop();
  });
  const prompt = "think:How do streams resume?";
  const request = { model: "sluice-simulated", messages: [{ role: "user" as const, content: prompt }] };

  it("resumes mid-reasoning at the cursor, replays the whole log after the end, and serves the saved reasoning on every route", async () => {
    const conversation = await user.createConversation();
    const accepted = await user.send(conversation.id, prompt);
    // A reader that leaves after its second reasoning delta, then resumes from its cursor.
    const first = await user.stream(accepted.taskId, { stopAfter: (_event, all) => all.filter((event) => event.event === "reasoning-delta").length >= 2 });
    const cursor = first.events.at(-1)?.id;
    expect(first.events.at(-1)?.event).toBe("reasoning-delta");
    const rest = await user.stream(accepted.taskId, { headers: { "last-event-id": cursor ?? "" } });
    expectOneEndLast(rest);
    const resumed = [...first.events, ...rest.events];
    expect(new Set(resumed.map((event) => event.id)).size).toBe(resumed.length);
    expect(reasoningOf(resumed)).toBe(simulatedReasoningText(request));
    expect(textOf(resumed)).toBe(simulatedReplyText(request, tokenCount));

    // After the end, the log replays everything from the start: reasoning first, then the answer.
    const replay = await user.stream(accepted.taskId);
    expect(replay.events.map((event) => event.id)).toEqual(resumed.map((event) => event.id));
    expect(kinds(replay.events)).toEqual(["start", "reasoning-delta", "text-delta", "usage", "end"]);

    const saved = (await waitForFinalReply(user, conversation.id, accepted.taskId)) as SavedMessage;
    expect(saved.reasoning?.text).toBe(simulatedReasoningText(request));
    expect(saved.content).toBe(simulatedReplyText(request, tokenCount));
    expect(saved.usage?.outputTokens).toBe(thinkingWordCount + tokenCount);
    // 40 words at 200/s: about 200 ms from the first reasoning delta to the answer's first.
    expect(saved.reasoning?.durationMs).toBeGreaterThanOrEqual(100);
    // The user's own message has no reasoning; a reply without reasoning says null.
    expect((conversationMessages(await user.conversation(conversation.id))[0] as SavedMessage).reasoning).toBeNull();
    const plain = await user.send(conversation.id, "echo:no thinking");
    expectOneEndLast(await user.stream(plain.taskId));
    expect(((await waitForFinalReply(user, conversation.id, plain.taskId)) as SavedMessage).reasoning).toBeNull();
  });

  it("/api/docs describes a message's reasoning", async () => {
    const document = (await (await fetch(`${sluice.url}/api/docs/json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const detail = JSON.stringify(document.paths["/api/conversations/{id}"]?.get);
    expect(detail).toContain('"reasoning"');
    expect(detail).toContain('"durationMs"');
  });

  it("/api/chat/:id/messages lists the saved reasoning as a reasoning part before the text", async () => {
    const chatId = `reasoning${Date.now().toString(36)}`;
    const transport = new DefaultChatTransport<UIMessage>({ api: `${sluice.url}/api/chat`, headers: { authorization: `Bearer ${user.token}` } });
    const stream = await transport.sendMessages({ chatId, messages: [{ id: "m1", role: "user", parts: [{ type: "text", text: "think:echo:Blue light scatters more." }] }], trigger: "submit-message", messageId: undefined, abortSignal: undefined });
    let streamed: UIMessage | undefined;
    for await (const snapshot of readUIMessageStream({ stream })) streamed = snapshot;
    const partsOf = (message: UIMessage | undefined) => (message?.parts ?? []).filter((part) => part.type === "reasoning" || part.type === "text").map((part) => ({ type: part.type, text: "text" in part ? part.text : "" }));
    const expectedReasoning = simulatedReasoningText({ model: "m", messages: [{ role: "user", content: "think:echo:Blue light scatters more." }] });
    expect(partsOf(streamed)).toEqual([{ type: "reasoning", text: expectedReasoning }, { type: "text", text: "Blue light scatters more." }]);

    const assistant = conversationMessages(await user.conversation(chatConversationId(chatId)))[1];
    await waitForFinalReply(user, chatConversationId(chatId), assistant?.taskId ?? "");
    const history = await user.call<UIMessage[]>("GET", `/api/chat/${chatId}/messages`);
    expect(history.status).toBe(200);
    expect(history.body[1]?.parts).toEqual([{ type: "reasoning", text: expectedReasoning, state: "done" }, { type: "text", text: "Blue light scatters more." }]);
  });

  it("/v1/chat/completions streams reasoning as delta.reasoning_content and answers it as message.reasoning_content", async () => {
    const created = await user.call<{ key: string }>("POST", "/api/me/api-keys", { body: { name: "reasoning" } });
    const client = new OpenAI({ apiKey: created.body.key, baseURL: `${sluice.url}/v1`, maxRetries: 0 });
    const messages = [{ role: "user" as const, content: "think:echo:Because of Rayleigh scattering." }];
    const expectedReasoning = simulatedReasoningText({ model: "m", messages });
    let reasoning = "";
    let text = "";
    for await (const chunk of await client.chat.completions.create({ model: "sluice-simulated", messages, stream: true })) {
      const delta = chunk.choices[0]?.delta as { content?: string | null; reasoning_content?: string } | undefined;
      if (delta?.reasoning_content) {
        expect(text).toBe("");
        reasoning += delta.reasoning_content;
      }
      text += delta?.content ?? "";
    }
    expect(reasoning).toBe(expectedReasoning);
    expect(text).toBe("Because of Rayleigh scattering.");

    const whole = await client.chat.completions.create({ model: "sluice-simulated", messages, store: true });
    expect(whole.choices[0]?.message.content).toBe("Because of Rayleigh scattering.");
    expect((whole.choices[0]?.message as { reasoning_content?: string }).reasoning_content).toBe(expectedReasoning);
    const stored = await client.chat.completions.retrieve(whole.id);
    expect((stored.choices[0]?.message as { reasoning_content?: string }).reasoning_content).toBe(expectedReasoning);
  });
});

function conversationMessages(conversation: { messages: MessageJson[] }): MessageJson[] {
  return conversation.messages;
}
