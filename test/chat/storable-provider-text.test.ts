/**
 * Model output PostgreSQL cannot store (U+0000) or UTF-8 cannot carry (lone
 * surrogates) used to fail the final save: the reply that had been streamed was
 * saved `failed` with empty content (issue 12). Through the real OpenAI SDK
 * against a local server of its wire format: such characters arrive as U+FFFD,
 * the same in the stream and in the saved message, and the reply completes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeServer, type FakeExchange, type FakeProviderServer } from "../support/providers/fake-provider-script.ts";
import { textOf } from "../support/client/read-sse.ts";
import { expectOneEndLast, registerUser, waitForFinalReply, type ChatUser } from "../support/client/chat-api.ts";
import { startSluice, type InProcessSluice } from "../support/sluice/start-sluice.ts";

/** The deltas the fake model sends: NUL, a surrogate pair split across two deltas, lone high and low surrogates, a high one last. */
const hostileDeltas = ["Hello", " \u0000", "world ", "\ud83d", "\ude80", " lone\ud800 high", " \udc00low", "\u0000\u0000", " end\ud83d"];
const expectedText = "Hello \uFFFDworld 🚀 lone\uFFFD high \uFFFDlow\uFFFD\uFFFD end\uFFFD";

/** OpenAI's Chat Completions stream (`data: {chunk}` … `data: [DONE]`), with the hostile deltas as content. */
async function respondWithHostileText(exchange: FakeExchange): Promise<void> {
  const chunk = (choices: unknown[], usage: unknown = null): string =>
    `data: ${JSON.stringify({ id: "chatcmpl-nul", object: "chat.completion.chunk", created: 1_700_000_000, model: "gpt-fake", choices, usage })}\n\n`;
  exchange.response.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
  await exchange.write(chunk([{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }]));
  // JSON.stringify writes U+0000 and lone surrogates as \u escapes, as a real server's JSON may.
  for (const delta of hostileDeltas) await exchange.write(chunk([{ index: 0, delta: { content: delta }, finish_reason: null }]));
  await exchange.write(chunk([{ index: 0, delta: {}, finish_reason: "stop" }]));
  await exchange.write(chunk([], { prompt_tokens: 3, completion_tokens: hostileDeltas.length, total_tokens: 3 + hostileDeltas.length }));
  await exchange.write("data: [DONE]\n\n");
  exchange.response.end();
}

let provider: FakeProviderServer;
let sluice: InProcessSluice;
let user: ChatUser;
beforeAll(async () => {
  provider = await startFakeServer({ path: "/v1/chat/completions", basePath: "/v1", respond: respondWithHostileText });
  sluice = await startSluice({ label: "storable-text", env: { LLM_PROVIDER: "openai", OPENAI_BASE_URL: provider.url, OPENAI_API_KEY: "sk-fake", LLM_MODEL: "gpt-fake" } });
  user = await registerUser(sluice.url, "storable-text");
});
afterAll(async () => {
  await sluice?.stop();
  await provider?.close();
});

describe("provider text PostgreSQL cannot store", () => {
  it("completes with U+FFFD in its place, the streamed text equal to the saved text", async () => {
    const conversation = await user.createConversation();
    const accepted = await user.send(conversation.id, "Say something odd");
    const stream = await user.stream(accepted.taskId);
    const end = expectOneEndLast(stream);
    const reply = await waitForFinalReply(user, conversation.id, accepted.taskId);
    expect(end, JSON.stringify(reply)).toMatchObject({ status: "completed" });
    expect(reply.status).toBe("completed");
    expect(textOf(stream.events)).toBe(expectedText);
    expect(reply.content).toBe(expectedText);
    expect(provider.requests).toHaveLength(1);
  });
});
