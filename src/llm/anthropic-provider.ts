import Anthropic, { APIConnectionError, APIError, APIUserAbortError } from "@anthropic-ai/sdk";
import { classifySdkError, sdkClientOptions } from "./classify-sdk-error.ts";
import type { Clock } from "../time/clock.ts";
import { guardProviderStream } from "./guard-provider-stream.ts";
import type { ChatRequest, LlmProvider, ProviderEvent } from "./llm-provider.ts";
import { ProviderError } from "./provider-error.ts";
import { trimPrefill } from "./trim-prefill.ts";

export interface AnthropicProviderOptions {
  apiKey: string;
  /** Default api.anthropic.com; the SDK appends `/v1/messages`. */
  baseUrl?: string;
  /** Over HTTP/2 (node-http2-fetch.ts) instead of HTTP/1.1. */
  http2?: boolean;
  idleTimeoutMs: number;
  /** The Messages API requires max_tokens; used when the request gives none. */
  defaultMaxOutputTokens?: number;
  /**
   * Continue a crashed reply by prefill (ANTHROPIC_CONTINUE_REPLIES; ChatRequest.continueFrom).
   * Off while thinking is on: the Messages API refuses prefill with extended thinking.
   */
  continueReplies?: boolean;
  /**
   * Extended thinking's budget in tokens (ANTHROPIC_THINKING_BUDGET_TOKENS); 0 or unset sends no
   * `thinking` (the model's default). Thinking counts toward max_tokens, so the budget is added to it.
   */
  thinkingBudgetTokens?: number;
  clock?: Clock;
}

export const defaultAnthropicMaxOutputTokens = 4096;

const sdkErrors = { APIError, APIConnectionError, APIUserAbortError };

/**
 * Messages streaming through the official SDK, retries off (the worker decides).
 * A reply is complete only after `message_stop` following a `message_delta` with a stop_reason.
 */
export function createAnthropicProvider(options: AnthropicProviderOptions): LlmProvider {
  const client = new Anthropic(sdkClientOptions(options));
  const defaultMaxTokens = options.defaultMaxOutputTokens ?? defaultAnthropicMaxOutputTokens;
  const thinkingBudgetTokens = options.thinkingBudgetTokens ?? 0;
  return {
    name: "anthropic",
    continuesReplies: options.continueReplies === true && thinkingBudgetTokens === 0,
    stream: (request, signal) =>
      guardProviderStream((requestSignal) => anthropicEvents(client, request, { defaultMaxTokens, thinkingBudgetTokens }, requestSignal), {
        signal,
        idleTimeoutMs: options.idleTimeoutMs,
        ...(options.clock === undefined ? {} : { clock: options.clock }),
        classifyError: (error, receivedText) => classifySdkError(error, receivedText, sdkErrors),
      }),
  };
}

async function* anthropicEvents(
  client: Anthropic,
  request: ChatRequest,
  limits: { defaultMaxTokens: number; thinkingBudgetTokens: number },
  signal: AbortSignal,
): AsyncGenerator<ProviderEvent[]> {
  const { defaultMaxTokens, thinkingBudgetTokens } = limits;
  // The Messages API takes system instructions as a parameter, not as a turn.
  const system = request.messages
    .filter((turn) => turn.role === "system")
    .map((turn) => turn.content)
    .join("\n\n");
  // A crashed reply continues by prefill: the trailing assistant turn is the text viewers have (trim-prefill.ts).
  const prefilled = request.continueFrom ? trimPrefill(request.continueFrom) : undefined;
  const turns = prefilled?.prefill ? [...request.messages, { role: "assistant" as const, content: prefilled.prefill }] : request.messages;
  const messages = turns.flatMap((turn) =>
    turn.role === "system" ? [] : [{ role: turn.role, content: turn.content }],
  );
  const stream = await client.messages.create(
    {
      model: request.model,
      max_tokens: (request.maxOutputTokens ?? defaultMaxTokens) + thinkingBudgetTokens,
      messages,
      ...(system.length > 0 ? { system } : {}),
      // `display: "summarized"`: newer models omit the thinking text unless asked for it.
      ...(thinkingBudgetTokens > 0 ? { thinking: { type: "enabled" as const, budget_tokens: thinkingBudgetTokens, display: "summarized" as const } } : {}),
      stream: true,
    },
    { signal },
  );
  let inputTokens = 0;
  let outputTokens = 0;
  let stopReason: string | undefined;
  let stopped = false;
  for await (const event of stream) {
    switch (event.type) {
      case "message_start": {
        const usage = event.message.usage;
        inputTokens = usage.input_tokens + (usage.cache_creation_input_tokens ?? 0) + (usage.cache_read_input_tokens ?? 0);
        outputTokens = usage.output_tokens;
        break;
      }
      case "content_block_delta":
        if (event.delta.type === "text_delta" && event.delta.text.length > 0) {
          const text = prefilled ? prefilled.skipShownWhitespace(event.delta.text) : event.delta.text;
          if (text.length > 0) yield [{ type: "text-delta", delta: text }];
        } else if (event.delta.type === "thinking_delta" && event.delta.thinking.length > 0) {
          // Thinking blocks come before the text; their signature_delta (for sending them back
          // in tool use) is not needed: Sluice never sends reasoning back to the model.
          yield [{ type: "reasoning-delta", delta: event.delta.thinking }];
        }
        break;
      case "message_delta":
        if (typeof event.delta.stop_reason === "string") stopReason = event.delta.stop_reason;
        // message_delta usage is cumulative.
        outputTokens = event.usage.output_tokens;
        if (typeof event.usage.input_tokens === "number") {
          inputTokens =
            event.usage.input_tokens + (event.usage.cache_creation_input_tokens ?? 0) + (event.usage.cache_read_input_tokens ?? 0);
        }
        break;
      case "message_stop":
        stopped = true;
        break;
      default:
        break;
    }
  }
  if (!stopped || stopReason === undefined) {
    if (signal.aborted) return;
    throw new ProviderError("truncated", { message: "The Anthropic stream ended without message_stop and a stop_reason." });
  }
  yield [
    { type: "usage", inputTokens, outputTokens },
    { type: "finish", reason: stopReason },
  ];
}
