import OpenAI, { APIConnectionError, APIError, APIUserAbortError } from "openai";
import { classifySdkError, sdkClientOptions } from "./classify-sdk-error.ts";
import type { Clock } from "../time/clock.ts";
import { guardProviderStream } from "./guard-provider-stream.ts";
import { openAiStreamChunks } from "./openai-stream-chunks.ts";
import type { ChatRequest, ChatTurn, LlmProvider, ProviderEvent } from "./llm-provider.ts";
import { ProviderError } from "./provider-error.ts";

export interface OpenAiProviderOptions {
  apiKey: string;
  /** Any OpenAI-compatible server, e.g. `http://127.0.0.1:8000/v1`; default api.openai.com. */
  baseUrl?: string;
  idleTimeoutMs: number;
  /**
   * The server continues a trailing assistant turn (OPENAI_CONTINUE_REPLIES: vLLM, SGLang,
   * llama.cpp), so a crashed reply is continued (ChatRequest.continueFrom). api.openai.com does not.
   */
  continueReplies?: boolean;
  clock?: Clock;
}

const sdkErrors = { APIError, APIConnectionError, APIUserAbortError };

/**
 * Chat Completions streaming through the official SDK. SDK retries are off:
 * the worker decides retries, and only before the first token.
 */
export function createOpenAiProvider(options: OpenAiProviderOptions): LlmProvider {
  const client = new OpenAI(sdkClientOptions(options));
  return {
    name: "openai",
    continuesReplies: options.continueReplies === true,
    stream: (request, signal) =>
      guardProviderStream((requestSignal) => openAiEvents(client, request, requestSignal), {
        signal,
        idleTimeoutMs: options.idleTimeoutMs,
        ...(options.clock === undefined ? {} : { clock: options.clock }),
        classifyError: (error, receivedText) => classifySdkError(error, receivedText, sdkErrors),
      }),
  };
}

async function* openAiEvents(client: OpenAI, request: ChatRequest, signal: AbortSignal): AsyncGenerator<ProviderEvent> {
  // The SDK sends the request and turns an HTTP error into its error classes; the body is read by
  // openAiStreamChunks, which costs a third less CPU per token than the SDK's Stream (its comment).
  const response = await client.chat.completions.create(
    {
      model: request.model,
      messages: [...request.messages, ...continuedTurn(request.continueFrom)].map((turn) => ({ role: turn.role, content: turn.content })),
      stream: true,
      stream_options: { include_usage: true },
      ...(request.maxOutputTokens === undefined ? {} : { max_completion_tokens: request.maxOutputTokens }),
      ...(request.continueFrom ? continueSwitches : {}),
    },
    { signal },
  ).asResponse();
  let finishReason: string | undefined;
  let usage: ProviderEvent | undefined;
  try {
    for await (const chunks of openAiStreamChunks(response)) {
      for (const chunk of chunks) {
        // Compatible servers vary; a chunk without a choices array is not one we can trust.
        if (!Array.isArray(chunk.choices)) throw malformed();
        for (const choice of chunk.choices) {
          if (choice.index !== 0) continue;
          const reasoning = reasoningOf(choice.delta);
          if (reasoning !== undefined) yield { type: "reasoning-delta", delta: reasoning };
          const text = choice.delta?.content;
          if (typeof text === "string" && text.length > 0) yield { type: "text-delta", delta: text };
          if (typeof choice.finish_reason === "string") finishReason = choice.finish_reason;
        }
        // With include_usage the usage arrives in its own chunk after the finish_reason chunk.
        if (chunk.usage) {
          usage = { type: "usage", inputTokens: chunk.usage.prompt_tokens, outputTokens: chunk.usage.completion_tokens };
        }
      }
    }
  } catch (error) {
    // As the SDK's Stream does: reading a body whose request was aborted ends the stream quietly.
    if (signal.aborted) return;
    throw error;
  }
  if (finishReason === undefined) {
    if (signal.aborted) return;
    throw new ProviderError("truncated", { message: "The OpenAI stream ended without a finish_reason." });
  }
  if (usage) yield usage;
  yield { type: "finish", reason: finishReason };
}

/**
 * A chunk's reasoning text: `reasoning_content` as vLLM, DeepSeek and llama.cpp send it, or
 * `reasoning` as Ollama and OpenRouter do (neither is in OpenAI's types). A server that sends
 * both carries the same text twice, so the first one present wins.
 */
function reasoningOf(delta: object | undefined): string | undefined {
  const fields = delta as { reasoning_content?: unknown; reasoning?: unknown } | undefined;
  for (const value of [fields?.reasoning_content, fields?.reasoning]) {
    if (typeof value === "string" && value.length > 0) return value;
  }
  return undefined;
}

/**
 * A crashed reply goes back as a trailing assistant turn; vLLM and SGLang continue it (instead of
 * answering it) only with these switches, which are not in OpenAI's types and travel as extra body
 * fields; llama.cpp continues a trailing assistant turn by itself. The server then streams only the rest.
 */
const continueSwitches = { continue_final_message: true, add_generation_prompt: false };

function continuedTurn(continueFrom: string | undefined): ChatTurn[] {
  return continueFrom ? [{ role: "assistant", content: continueFrom }] : [];
}

function malformed(): ProviderError {
  return new ProviderError("server", { message: "The provider sent a chunk that is not a chat completion chunk." });
}
