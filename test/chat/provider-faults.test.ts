import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeAnthropicServer } from "../support/providers/fake-anthropic-server.ts";
import { startFakeOpenAiServer } from "../support/providers/fake-openai-server.ts";
import type { FakeProviderServer } from "../support/providers/fake-provider-script.ts";
import { textOf } from "../support/client/read-sse.ts";
import { expectOneEndLast, registerUser, waitForFinalReply, type ChatUser } from "../support/client/chat-api.ts";
import { startSluice, type InProcessSluice } from "../support/sluice/start-sluice.ts";

const maxRetries = 2;
const faultModels = ["fake-normal", "fake-cut", "fake-rate-limit", "fake-server-error", "fake-stall", "fake-malformed"];

let openAi: FakeProviderServer;
let sluice: InProcessSluice;
let user: ChatUser;
beforeAll(async () => {
  // Retry-After: 0 keeps the 429 retries fast; the worker still goes through its retry path.
  openAi = await startFakeOpenAiServer({ mode: "normal", seed: 7, tokenCount: 20, tokensBeforeFault: 3, retryAfterSeconds: 0 });
  sluice = await startSluice({ label: "faults", env: {
    LLM_PROVIDER: "openai",
    OPENAI_BASE_URL: openAi.url,
    OPENAI_API_KEY: "sk-fake",
    LLM_MODEL: "gpt-fake",
    LLM_MODELS: faultModels.join(","),
    PROVIDER_MAX_RETRIES: String(maxRetries),
    PROVIDER_IDLE_TIMEOUT_MS: "800",
  } });
  user = await registerUser(sluice.url, "faults");
});
afterAll(async () => {
  await sluice.stop();
  await openAi.close();
});

/** Sends one message (optionally with a model), reads its stream to the end, returns what the user sees and what was saved. */
async function generate(model: string | undefined): Promise<{ end: ReturnType<typeof expectOneEndLast>; streamed: string; reply: Awaited<ReturnType<typeof waitForFinalReply>>; providerRequests: number }> {
  const before = openAi.requests.length;
  const conversation = await user.createConversation();
  const accepted = await user.send(conversation.id, "Tell me something", model === undefined ? {} : { model });
  const stream = await user.stream(accepted.taskId);
  const end = expectOneEndLast(stream);
  const reply = await waitForFinalReply(user, conversation.id, accepted.taskId);
  expect(reply.model).toBe(model ?? "gpt-fake");
  return { end, streamed: textOf(stream.events), reply, providerRequests: openAi.requests.length - before };
}

describe("provider faults through the real OpenAI SDK", () => {
  it("a normal reply is saved exactly as the provider sent it, with usage", async () => {
    const { end, streamed, reply, providerRequests } = await generate("fake-normal");
    expect(end.status).toBe("completed");
    expect(streamed).toBe(openAi.expectedText());
    expect(reply.content).toBe(streamed);
    expect(reply.status).toBe("completed");
    expect(reply.usage).toMatchObject({ outputTokens: 20 });
    expect(providerRequests).toBe(1);
  });

  it("a stream cut without a finish reason fails PROVIDER_TRUNCATED and keeps the partial text, never completed", async () => {
    const { end, streamed, reply, providerRequests } = await generate("fake-cut");
    expect(end).toMatchObject({ status: "failed", error: { code: "PROVIDER_TRUNCATED" } });
    expect(streamed.length).toBeGreaterThan(0);
    expect(openAi.expectedText().startsWith(streamed)).toBe(true);
    expect(streamed).not.toBe(openAi.expectedText());
    expect(reply.status).toBe("failed");
    expect(reply.content).toBe(streamed);
    expect(reply.error?.code).toBe("PROVIDER_TRUNCATED");
    // Text already reached the client, so the reply is not retried (that would repeat it).
    expect(providerRequests).toBe(1);
  });

  it("429 before the first token is retried and completes once the provider recovers", async () => {
    // The server's default mode applies to requests without a fake-<mode> model: rate limit the
    // first request and recover from the second on, switched as the first request arrives.
    openAi.setMode("rate-limit");
    const push = openAi.requests.push.bind(openAi.requests);
    openAi.requests.push = (...items) => {
      openAi.setMode("normal");
      return push(...items);
    };
    try {
      const { end, streamed, reply, providerRequests } = await generate(undefined);
      expect(providerRequests).toBe(2);
      expect(end.status).toBe("completed");
      expect(streamed).toBe(openAi.expectedText());
      expect(reply.content).toBe(streamed);
      expect(reply.status).toBe("completed");
    } finally {
      openAi.requests.push = push;
      openAi.setMode("normal");
    }
  });

  it("429 that never ends fails PROVIDER_RATE_LIMITED after PROVIDER_MAX_RETRIES retries", async () => {
    const { end, reply, providerRequests } = await generate("fake-rate-limit");
    expect(providerRequests).toBe(1 + maxRetries);
    expect(end).toMatchObject({ status: "failed", error: { code: "PROVIDER_RATE_LIMITED" } });
    expect(reply).toMatchObject({ status: "failed", content: "", error: { code: "PROVIDER_RATE_LIMITED" } });
  });

  it("500 is retried, then fails PROVIDER_ERROR", async () => {
    const { end, reply, providerRequests } = await generate("fake-server-error");
    expect(providerRequests).toBe(1 + maxRetries);
    expect(end).toMatchObject({ status: "failed", error: { code: "PROVIDER_ERROR" } });
    expect(reply).toMatchObject({ status: "failed", content: "", error: { code: "PROVIDER_ERROR" } });
  });

  it("a provider that stalls mid-reply fails PROVIDER_TIMEOUT after the idle timeout, keeping the partial text", async () => {
    const startedAt = Date.now();
    const { end, streamed, reply } = await generate("fake-stall");
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(800);
    expect(end).toMatchObject({ status: "failed", error: { code: "PROVIDER_TIMEOUT" } });
    expect(streamed.length).toBeGreaterThan(0);
    expect(reply).toMatchObject({ status: "failed", content: streamed, error: { code: "PROVIDER_TIMEOUT" } });
  });

  it("malformed stream data fails the reply, keeping the text received before it", async () => {
    const { end, streamed, reply } = await generate("fake-malformed");
    expect(end.status).toBe("failed");
    expect(end.error?.code).toMatch(/^PROVIDER_/);
    expect(streamed).not.toContain("oops");
    expect(reply.status).toBe("failed");
    expect(reply.content).toBe(streamed);
    expect(reply.error?.code).toBe(end.error?.code);
  });
});

describe("the Anthropic provider", () => {
  it("streams and saves a reply through the real Anthropic SDK", async () => {
    const anthropic = await startFakeAnthropicServer({ mode: "normal", seed: 11, tokenCount: 15 });
    const claude = await startSluice({ label: "anthropic", env: { LLM_PROVIDER: "anthropic", ANTHROPIC_BASE_URL: anthropic.url, ANTHROPIC_API_KEY: "sk-ant-fake" } });
    try {
      const claudeUser = await registerUser(claude.url, "claude");
      const conversation = await claudeUser.createConversation();
      const accepted = await claudeUser.send(conversation.id, "Hello Claude");
      const stream = await claudeUser.stream(accepted.taskId);
      expect(expectOneEndLast(stream).status).toBe("completed");
      expect(textOf(stream.events)).toBe(anthropic.expectedText());
      const reply = await waitForFinalReply(claudeUser, conversation.id, accepted.taskId);
      expect(reply).toMatchObject({ status: "completed", content: anthropic.expectedText() });
      expect(reply.usage?.outputTokens).toBeGreaterThan(0);
      expect(anthropic.requests).toHaveLength(1);
    } finally {
      await claude.stop();
      await anthropic.close();
    }
  });
});
