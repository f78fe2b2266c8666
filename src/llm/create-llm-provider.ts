import type { Clock } from "../time/clock.ts";
import type { LlmProvider, ProviderName } from "./llm-provider.ts";

export interface LlmProviderOptions {
  provider: ProviderName;
  openai?: { apiKey: string; baseUrl?: string };
  anthropic?: { apiKey: string; baseUrl?: string; defaultMaxOutputTokens?: number; thinkingBudgetTokens?: number };
  simulated?: { tokensPerSecond: number; tokenCount: number; stampTokens?: boolean };
  /** Reach the OpenAI or Anthropic server over HTTP/2 (PROVIDER_HTTP2; node-http2-fetch.ts); default HTTP/1.1. */
  http2?: boolean;
  /** A vendor stream that sends nothing for this long fails with PROVIDER_TIMEOUT. */
  idleTimeoutMs: number;
  /** Continue a crashed reply with this vendor (ChatRequest.continueFrom); default off. The simulated model always can. */
  continueReplies?: { openai?: boolean; anthropic?: boolean };
  clock?: Clock;
}

/**
 * Builds the configured provider from plain options (src/config reads the
 * environment; nothing here does). Rejects when the chosen provider's section is missing.
 * Only the chosen adapter's SDK is loaded (a worker's start-up time).
 *
 * @example await createLlmProvider({ provider: "simulated", simulated: { tokensPerSecond: 50, tokenCount: 200 }, idleTimeoutMs: 30_000 })
 */
export async function createLlmProvider(options: LlmProviderOptions): Promise<LlmProvider> {
  const clock = options.clock === undefined ? {} : { clock: options.clock };
  switch (options.provider) {
    case "openai": {
      if (!options.openai) throw new Error('createLlmProvider: provider "openai" needs the `openai` options');
      const { createOpenAiProvider } = await import("./openai-provider.ts");
      return createOpenAiProvider({ ...options.openai, http2: options.http2 === true, idleTimeoutMs: options.idleTimeoutMs, continueReplies: options.continueReplies?.openai ?? false, ...clock });
    }
    case "anthropic": {
      if (!options.anthropic) throw new Error('createLlmProvider: provider "anthropic" needs the `anthropic` options');
      const { createAnthropicProvider } = await import("./anthropic-provider.ts");
      return createAnthropicProvider({ ...options.anthropic, http2: options.http2 === true, idleTimeoutMs: options.idleTimeoutMs, continueReplies: options.continueReplies?.anthropic ?? false, ...clock });
    }
    case "simulated": {
      if (!options.simulated) throw new Error('createLlmProvider: provider "simulated" needs the `simulated` options');
      const { createSimulatedProvider } = await import("./simulated-provider.ts");
      return createSimulatedProvider({ ...options.simulated, ...clock });
    }
  }
}
