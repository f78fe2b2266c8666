import Anthropic, { APIConnectionError, APIError, APIUserAbortError } from "@anthropic-ai/sdk";
import { classifySdkError, sdkClientOptions } from "./classify-sdk-error.ts";
import type { Clock } from "../time/clock.ts";
import { guardProviderStream } from "./guard-provider-stream.ts";
import type { ChatRequest, LlmProvider, ProviderEvent } from "./llm-provider.ts";
import { ProviderError } from "./provider-error.ts";

export interface AnthropicProviderOptions {
  apiKey: string;
  /** Default api.anthropic.com; the SDK appends `/v1/messages`. */
  baseUrl?: string;
  idleTimeoutMs: number;
  /** The Messages API requires max_tokens; used when the request gives none. */
  defaultMaxOutputTokens?: number;
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
  return {
    name: "anthropic",
    stream: (request, signal) =>
      guardProviderStream((requestSignal) => anthropicEvents(client, request, defaultMaxTokens, requestSignal), {
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
  defaultMaxTokens: number,
  signal: AbortSignal,
): AsyncGenerator<ProviderEvent> {
  // The Messages API takes system instructions as a parameter, not as a turn.
  const system = request.messages
    .filter((turn) => turn.role === "system")
    .map((turn) => turn.content)
    .join("\n\n");
  const messages = request.messages.flatMap((turn) =>
    turn.role === "system" ? [] : [{ role: turn.role, content: turn.content }],
  );
  const stream = await client.messages.create(
    {
      model: request.model,
      max_tokens: request.maxOutputTokens ?? defaultMaxTokens,
      messages,
      ...(system.length > 0 ? { system } : {}),
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
          yield { type: "text-delta", delta: event.delta.text };
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
  yield { type: "usage", inputTokens, outputTokens };
  yield { type: "finish", reason: stopReason };
}
