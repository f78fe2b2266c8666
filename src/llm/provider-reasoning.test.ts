// Reasoning streams (issue 16): each provider's wire format turned into `reasoning-delta`
// events, before the answer, through the real SDKs against the fake servers.
import { afterEach, describe, expect, it } from "vitest";
import { startFakeAnthropicServer } from "../../test/support/providers/fake-anthropic-server.ts";
import { startFakeOpenAiServer } from "../../test/support/providers/fake-openai-server.ts";
import { countPromptCharacters, type FakeProviderServer } from "../../test/support/providers/fake-provider-script.ts";
import { conversation } from "../../test/support/providers/vendor-provider-suite.ts";
import { createAnthropicProvider, defaultAnthropicMaxOutputTokens } from "./anthropic-provider.ts";
import { guardProviderStream } from "./guard-provider-stream.ts";
import type { LlmProvider, ProviderEvent } from "./llm-provider.ts";
import { createOpenAiProvider } from "./openai-provider.ts";
import { ProviderError } from "./provider-error.ts";
import { createSimulatedProvider, simulatedReasoningText, simulatedReplyText, thinkingWordCount } from "./simulated-provider.ts";

interface Collected {
  events: ProviderEvent[];
  text: string;
  reasoning: string;
  /** The part of each delta in order, runs merged: ["reasoning", "text"] when reasoning came first. */
  order: string[];
}

async function collect(provider: LlmProvider, request = conversation): Promise<Collected> {
  const events: ProviderEvent[] = [];
  for await (const event of provider.stream(request, new AbortController().signal)) events.push(event);
  const parts = (type: string) => events.flatMap((event) => (event.type === type && "delta" in event ? [event.delta] : [])).join("");
  const order: string[] = [];
  for (const event of events) {
    const part = event.type === "reasoning-delta" ? "reasoning" : event.type === "text-delta" ? "text" : undefined;
    if (part && order.at(-1) !== part) order.push(part);
  }
  return { events, text: parts("text-delta"), reasoning: parts("reasoning-delta"), order };
}

let server: FakeProviderServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("OpenAI-compatible reasoning", () => {
  for (const field of ["reasoning_content", "reasoning"] as const) {
    it(`streams delta.${field} as reasoning-delta before the answer, counted in the usage`, async () => {
      server = await startFakeOpenAiServer({ reasoningField: field, reasoningTokenCount: 9 });
      const provider = createOpenAiProvider({ apiKey: "sk-test", baseUrl: server.url, idleTimeoutMs: 30_000 });
      const { events, text, reasoning, order } = await collect(provider);
      expect(reasoning).toBe(server.expectedReasoning());
      expect(reasoning.length).toBeGreaterThan(0);
      expect(text).toBe(server.expectedText());
      expect(order).toEqual(["reasoning", "text"]);
      const request = server.requests[0];
      expect(events.at(-2)).toEqual({ type: "usage", inputTokens: countPromptCharacters(request?.body), outputTokens: 9 + 40 });
    });
  }

  it("sends no reasoning when the server sends none", async () => {
    server = await startFakeOpenAiServer();
    const { reasoning, order } = await collect(createOpenAiProvider({ apiKey: "sk-test", baseUrl: server.url, idleTimeoutMs: 30_000 }));
    expect(reasoning).toBe("");
    expect(order).toEqual(["text"]);
  });
});

describe("Anthropic thinking", () => {
  it("asks for no thinking by default and streams none", async () => {
    server = await startFakeAnthropicServer();
    const { reasoning, text } = await collect(createAnthropicProvider({ apiKey: "sk-test", baseUrl: server.url, idleTimeoutMs: 30_000 }));
    expect(reasoning).toBe("");
    expect(text).toBe(server.expectedText());
    expect(server.requests[0]?.body).not.toHaveProperty("thinking");
  });

  it("with a budget, asks for summarized extended thinking (max_tokens grown by the budget) and streams thinking_delta as reasoning-delta", async () => {
    server = await startFakeAnthropicServer({ reasoningTokenCount: 7 });
    const provider = createAnthropicProvider({ apiKey: "sk-test", baseUrl: server.url, idleTimeoutMs: 30_000, thinkingBudgetTokens: 2048 });
    const { events, text, reasoning, order } = await collect(provider);
    expect(server.requests[0]?.body).toMatchObject({
      max_tokens: defaultAnthropicMaxOutputTokens + 2048,
      thinking: { type: "enabled", budget_tokens: 2048, display: "summarized" },
    });
    expect(reasoning).toBe(server.expectedReasoning());
    expect(reasoning.length).toBeGreaterThan(0);
    expect(text).toBe(server.expectedText());
    expect(order).toEqual(["reasoning", "text"]);
    expect(events.at(-2)).toMatchObject({ type: "usage", outputTokens: 7 + 40 });
  });
});

describe("simulated reasoning", () => {
  const provider = createSimulatedProvider({ tokensPerSecond: Number.POSITIVE_INFINITY, tokenCount: 30 });
  const ask = (content: string) => ({ model: "simulated", messages: [{ role: "user" as const, content }] });

  it("think: reasons first, deterministically, then replies as without it; usage counts both", async () => {
    const request = ask("think:How do streams resume?");
    const { events, text, reasoning, order } = await collect(provider, request);
    expect(order).toEqual(["reasoning", "text"]);
    expect(reasoning).toBe(simulatedReasoningText(request));
    expect(reasoning.split(" ")).toHaveLength(thinkingWordCount);
    expect(text).toBe(simulatedReplyText(request, 30));
    expect(text.split(" ")).toHaveLength(30);
    expect(events.at(-2)).toMatchObject({ type: "usage", outputTokens: thinkingWordCount + 30 });
    expect((await collect(provider, request)).reasoning).toBe(reasoning);
  });

  it("think:echo: reasons, then echoes exactly; without think: there is no reasoning", async () => {
    const thought = await collect(provider, ask("think:echo:Exactly this."));
    expect(thought.reasoning.length).toBeGreaterThan(0);
    expect(thought.text).toBe("Exactly this.");
    const plain = await collect(provider, ask("echo:Exactly this."));
    expect(plain.reasoning).toBe("");
    expect(plain.order).toEqual(["text"]);
    expect(simulatedReasoningText(ask("echo:Exactly this."))).toBe("");
  });
});

describe("storable reasoning", () => {
  it("replaces U+0000 and lone surrogates in reasoning as in text, keeping a pair split across deltas", async () => {
    const raw: ProviderEvent[] = [
      { type: "reasoning-delta", delta: "a\u0000b\ud83d" },
      { type: "reasoning-delta", delta: "\ude80 \udc00" },
      { type: "reasoning-delta", delta: "end\ud83d" },
      { type: "text-delta", delta: "answer" },
      { type: "finish", reason: "stop" },
    ];
    const events: ProviderEvent[] = [];
    async function* replay(): AsyncGenerator<ProviderEvent[]> {
      for (const event of raw) yield await Promise.resolve([event]);
    }
    const guarded = guardProviderStream(replay, {
      signal: new AbortController().signal,
      idleTimeoutMs: 30_000,
      classifyError: () => new ProviderError("server", { message: "unexpected" }),
    });
    for await (const event of guarded) events.push(event);
    const reasoning = events.flatMap((event) => (event.type === "reasoning-delta" ? [event.delta] : [])).join("");
    expect(reasoning).toBe("a\uFFFDb🚀 \uFFFDend\uFFFD");
    expect(events.filter((event) => event.type === "text-delta")).toEqual([{ type: "text-delta", delta: "answer" }]);
  });
});
