import { afterEach, describe, expect, it } from "vitest";
import { startFakeAnthropicServer } from "../../test/support/providers/fake-anthropic-server.ts";
import { startFakeOpenAiServer } from "../../test/support/providers/fake-openai-server.ts";
import type { FakeProviderServer } from "../../test/support/providers/fake-provider-script.ts";
import { createAnthropicProvider } from "./anthropic-provider.ts";
import type { ChatRequest, LlmProvider, ProviderEvent } from "./llm-provider.ts";
import { createOpenAiProvider } from "./openai-provider.ts";
import { createSimulatedProvider, simulatedReplyText } from "./simulated-provider.ts";
import { trimPrefill } from "./trim-prefill.ts";

// ChatRequest.continueFrom (PROTOCOL.md 4.3): a provider that continues a crashed reply streams
// only its rest, so the kept text plus the stream is the whole reply, once.

const request: ChatRequest = { model: "fake-model", messages: [{ role: "user", content: "Tell me more" }] };

async function streamedText(provider: LlmProvider, continued: ChatRequest): Promise<{ text: string; events: ProviderEvent[] }> {
  const events: ProviderEvent[] = [];
  for await (const event of provider.stream(continued, new AbortController().signal)) events.push(event);
  return { text: events.map((event) => (event.type === "text-delta" ? event.delta : "")).join(""), events };
}

/** A cut inside a word and one right after a space (which Anthropic's prefill cannot end with). */
const cutPoints = (whole: string): string[] => {
  const space = whole.indexOf(" ", whole.length / 3);
  return [whole.slice(0, Math.floor(whole.length / 2) + 1), whole.slice(0, space + 1)];
};

/**
 * Continues the server's reply from each cut point, checking that the kept text plus the stream is
 * the whole reply; returns, for each kept text, the last request body the provider sent for it.
 */
async function continueFromEachCut(provider: LlmProvider, server: FakeProviderServer): Promise<Array<{ kept: string; sent: unknown }>> {
  expect(provider.continuesReplies).toBe(true);
  const whole = server.expectedText();
  const continued: Array<{ kept: string; sent: unknown }> = [];
  for (const kept of cutPoints(whole)) {
    expect(kept + (await streamedText(provider, { ...request, continueFrom: kept })).text).toBe(whole);
    continued.push({ kept, sent: server.requests.at(-1)?.body });
  }
  return continued;
}

describe("continuing a reply", () => {
  let server: FakeProviderServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("simulated: streams exactly the rest of the reply after the kept text, and thinks no more", async () => {
    const provider = createSimulatedProvider({ tokensPerSecond: Number.POSITIVE_INFINITY, tokenCount: 40 });
    expect(provider.continuesReplies).toBe(true);
    const whole = simulatedReplyText(request, 40);
    for (const kept of cutPoints(whole)) expect(kept + (await streamedText(provider, { ...request, continueFrom: kept })).text).toBe(whole);
    const thinking: ChatRequest = { model: "m", messages: [{ role: "user", content: "think:why?" }] };
    const { events } = await streamedText(provider, { ...thinking, continueFrom: "Some" });
    expect(events.some((event) => event.type === "reasoning-delta")).toBe(false);
  });

  it("anthropic: prefills the kept text without its trailing whitespace and drops the whitespace viewers already have", async () => {
    server = await startFakeAnthropicServer();
    const provider = createAnthropicProvider({ apiKey: "k", baseUrl: server.url, idleTimeoutMs: 30_000, continueReplies: true });
    for (const { kept, sent } of await continueFromEachCut(provider, server)) {
      expect((sent as { messages: unknown[] }).messages.at(-1)).toEqual({ role: "assistant", content: kept.trimEnd() });
    }
    // Extended thinking refuses prefill, and the switch turns it off.
    expect(createAnthropicProvider({ apiKey: "k", baseUrl: server.url, idleTimeoutMs: 1_000, continueReplies: true, thinkingBudgetTokens: 2048 }).continuesReplies).toBe(false);
    expect(createAnthropicProvider({ apiKey: "k", baseUrl: server.url, idleTimeoutMs: 1_000 }).continuesReplies).toBe(false);
  });

  it("openai-compatible: sends a trailing assistant turn with continue_final_message, and streams the rest", async () => {
    server = await startFakeOpenAiServer();
    const provider = createOpenAiProvider({ apiKey: "k", baseUrl: server.url, idleTimeoutMs: 30_000, continueReplies: true });
    for (const { kept, sent } of await continueFromEachCut(provider, server)) {
      expect((sent as { messages: unknown[] }).messages.at(-1)).toEqual({ role: "assistant", content: kept });
      expect(sent).toMatchObject({ continue_final_message: true, add_generation_prompt: false });
    }
    // Without continueFrom the request is unchanged: no switches, no assistant turn.
    await streamedText(provider, request);
    expect(server.requests.at(-1)?.body).not.toHaveProperty("continue_final_message");
    expect(createOpenAiProvider({ apiKey: "k", baseUrl: server.url, idleTimeoutMs: 1_000 }).continuesReplies).toBe(false);
  });
});

describe("trimPrefill", () => {
  it("drops at most the kept whitespace from the continuation's start, across deltas, and nothing after a visible character", () => {
    const trimmed = trimPrefill("Hello,\n\n");
    expect(trimmed.prefill).toBe("Hello,");
    expect(trimmed.skipShownWhitespace("\n")).toBe("");
    expect(trimmed.skipShownWhitespace("\n\nWorld ")).toBe("\nWorld ");
    expect(trimmed.skipShownWhitespace(" again")).toBe(" again");
    const unspaced = trimPrefill("Hello");
    expect(unspaced.skipShownWhitespace(" world")).toBe(" world");
  });
});
