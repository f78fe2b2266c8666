import { describe, expect, it, onTestFinished } from "vitest";
import { startFakeAnthropicServer } from "../../test/support/providers/fake-anthropic-server.ts";
import { startFakeOpenAiServer } from "../../test/support/providers/fake-openai-server.ts";
import { createLlmProvider } from "./create-llm-provider.ts";
import type { ChatRequest, LlmProvider } from "./llm-provider.ts";
import { simulatedReplyText } from "./simulated-provider.ts";

const request: ChatRequest = { model: "m", messages: [{ role: "user", content: "hi" }] };

async function textOf(provider: LlmProvider): Promise<string> {
  let text = "";
  for await (const event of provider.stream(request, new AbortController().signal)) {
    if (event.type === "text-delta") text += event.delta;
  }
  return text;
}

describe("createLlmProvider", () => {
  it("builds the simulated provider", async () => {
    const provider = await createLlmProvider({ provider: "simulated", simulated: { tokensPerSecond: Number.POSITIVE_INFINITY, tokenCount: 12 }, idleTimeoutMs: 1000 });
    expect(provider.name).toBe("simulated");
    expect(await textOf(provider)).toBe(simulatedReplyText(request, 12));
  });

  it("builds the OpenAI and Anthropic adapters pointed at the configured base URL", async () => {
    const openAiServer = await startFakeOpenAiServer();
    onTestFinished(() => openAiServer.close());
    const openai = await createLlmProvider({ provider: "openai", openai: { apiKey: "k", baseUrl: openAiServer.url }, idleTimeoutMs: 30_000 });
    expect(openai.name).toBe("openai");
    expect(await textOf(openai)).toBe(openAiServer.expectedText());

    const anthropicServer = await startFakeAnthropicServer();
    onTestFinished(() => anthropicServer.close());
    const anthropic = await createLlmProvider({ provider: "anthropic", anthropic: { apiKey: "k", baseUrl: anthropicServer.url }, idleTimeoutMs: 30_000 });
    expect(anthropic.name).toBe("anthropic");
    expect(await textOf(anthropic)).toBe(anthropicServer.expectedText());
  });

  it("fails loudly when the chosen provider has no options", async () => {
    await expect(createLlmProvider({ provider: "openai", idleTimeoutMs: 1000 })).rejects.toThrow(/openai/);
    await expect(createLlmProvider({ provider: "anthropic", idleTimeoutMs: 1000 })).rejects.toThrow(/anthropic/);
    await expect(createLlmProvider({ provider: "simulated", idleTimeoutMs: 1000 })).rejects.toThrow(/simulated/);
  });
});
