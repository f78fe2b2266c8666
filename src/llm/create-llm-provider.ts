import { createAnthropicProvider } from "./anthropic-provider.ts";
import type { Clock } from "./clock.ts";
import type { LlmProvider, ProviderName } from "./llm-provider.ts";
import { createOpenAiProvider } from "./openai-provider.ts";
import { createSimulatedProvider } from "./simulated-provider.ts";

export interface LlmProviderOptions {
  provider: ProviderName;
  openai?: { apiKey: string; baseUrl?: string };
  anthropic?: { apiKey: string; baseUrl?: string; defaultMaxOutputTokens?: number };
  simulated?: { tokensPerSecond: number; tokenCount: number; stampTokens?: boolean };
  /** A vendor stream that sends nothing for this long fails with PROVIDER_TIMEOUT. */
  idleTimeoutMs: number;
  clock?: Clock;
}

/**
 * Builds the configured provider from plain options (src/config reads the
 * environment; nothing here does). Throws when the chosen provider's section is missing.
 *
 * @example createLlmProvider({ provider: "simulated", simulated: { tokensPerSecond: 50, tokenCount: 200 }, idleTimeoutMs: 30_000 })
 */
export function createLlmProvider(options: LlmProviderOptions): LlmProvider {
  const clock = options.clock === undefined ? {} : { clock: options.clock };
  switch (options.provider) {
    case "openai": {
      if (!options.openai) throw new Error('createLlmProvider: provider "openai" needs the `openai` options');
      return createOpenAiProvider({ ...options.openai, idleTimeoutMs: options.idleTimeoutMs, ...clock });
    }
    case "anthropic": {
      if (!options.anthropic) throw new Error('createLlmProvider: provider "anthropic" needs the `anthropic` options');
      return createAnthropicProvider({ ...options.anthropic, idleTimeoutMs: options.idleTimeoutMs, ...clock });
    }
    case "simulated": {
      if (!options.simulated) throw new Error('createLlmProvider: provider "simulated" needs the `simulated` options');
      return createSimulatedProvider({ ...options.simulated, ...clock });
    }
  }
}
