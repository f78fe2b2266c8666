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
  /**
   * The start of the assistant's reply, already streamed by an attempt that died (a worker
   * crash): the provider sends it as a trailing assistant turn for the model to continue,
   * and streams only what follows it. Set only when the provider's `continuesReplies` is true.
   */
  continueFrom?: string;
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
  /**
   * True when `stream` honours `ChatRequest.continueFrom` (Anthropic's prefill, an OpenAI-compatible
   * server configured to continue a trailing assistant turn, the simulated model): a worker that
   * takes over a crashed reply then continues it instead of restarting it (PROTOCOL.md 4.3).
   */
  readonly continuesReplies?: boolean;
  /** Throws `ProviderError` for every failure, including the caller's abort (kind "aborted"). */
  stream(request: ChatRequest, signal: AbortSignal): AsyncIterable<ProviderEvent>;
}
