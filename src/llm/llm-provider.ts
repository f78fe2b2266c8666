/**
 * The port the worker generates replies through. One adapter per vendor
 * (openai-provider.ts, anthropic-provider.ts) plus the simulated model; the
 * worker never sees an SDK type.
 */
export interface ChatTurn {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface ChatRequest {
  model: string;
  messages: ChatTurn[];
  maxOutputTokens?: number;
}

/**
 * What a provider stream yields. `finish` comes exactly once, last, and only
 * when the provider gave a real finish reason; a stream that ends without one
 * throws a `ProviderError` of kind "truncated" instead. `reasoning-delta` is the
 * model's visible thinking (OpenAI-compatible `reasoning_content` / `reasoning`,
 * Anthropic thinking blocks), streamed and saved apart from the answer and never
 * sent back to the model as the assistant's turn.
 */
export type ProviderEvent =
  | { type: "text-delta"; delta: string }
  | { type: "reasoning-delta"; delta: string }
  | { type: "usage"; inputTokens: number; outputTokens: number }
  | { type: "finish"; reason: string };

/** The providers Sluice ships (LLM_PROVIDER). */
export const providerNames = ["simulated", "openai", "anthropic"] as const;
export type ProviderName = (typeof providerNames)[number];

export interface LlmProvider {
  readonly name: ProviderName;
  /** Throws `ProviderError` for every failure, including the caller's abort (kind "aborted"). */
  stream(request: ChatRequest, signal: AbortSignal): AsyncIterable<ProviderEvent>;
}
