import { createParser } from "eventsource-parser";
import { APIError } from "openai";
import type { ChatCompletionChunk } from "openai/resources/chat/completions";
import { readBodyBatches } from "./body-batches.ts";
import type { ProviderEvent } from "./llm-provider.ts";
import { ProviderError } from "./provider-error.ts";

/**
 * Reads a Chat Completions stream body (the SDK's raw `Response`, from `.asResponse()`) and yields
 * the provider events of each network read together, in order; `usage` and `finish` come last.
 *
 * Why not the SDK's own `Stream`: on the worker's hottest path it spends about a third of the CPU
 * per token in four nested async generators (body → lines → SSE messages → chunks), a microtask
 * hop each per token. Here one SSE parser (eventsource-parser, as the AI SDK uses) runs in the
 * body's data handler (body-batches.ts), and events are made of the chunks right there
 * (BENCHMARKS.md, "Floors"). The request, its headers, HTTP errors and their classes stay the
 * SDK's; the stream's semantics are the SDK's too:
 * - `[DONE]` ends the stream; anything after it is ignored;
 * - an `error` event, or a chunk with an `error` field, throws the SDK's `APIError` (no status);
 * - data that is not JSON throws a SyntaxError;
 * - an event cut off by the end of the body is dropped (the SSE rule), so the caller sees no finish;
 * - after `signal` aborted, a failing or unfinished body ends the stream quietly.
 * A stream without a finish_reason throws ProviderError "truncated".
 */
export function openAiStreamEvents(response: Response, signal?: AbortSignal): AsyncIterableIterator<ProviderEvent[]> {
  if (response.body === null) throw new SyntaxError("Error reading response: the stream has no body.");
  let into: ProviderEvent[] = [];
  let done = false;
  let finishReason: string | undefined;
  let usage: ProviderEvent | undefined;
  const parser = createParser({
    onEvent: (event) => {
      if (done) return;
      if (event.data === "[DONE]") {
        done = true;
        return;
      }
      let data: unknown;
      try {
        data = JSON.parse(event.data);
      } catch {
        throw new SyntaxError("Error reading response: malformed server-sent event JSON.");
      }
      const error = (data as { error?: object } | null)?.error;
      if (event.event === "error") throw new APIError(undefined, error ?? (data as object | undefined), undefined, response.headers);
      if (error) throw new APIError(undefined, error, undefined, response.headers);
      const chunk = data as ChatCompletionChunk;
      // Compatible servers vary; a chunk without a choices array is not one we can trust.
      if (!Array.isArray(chunk.choices)) throw malformed();
      for (const choice of chunk.choices) {
        if (choice.index !== 0) continue;
        const reasoning = reasoningOf(choice.delta);
        if (reasoning !== undefined) into.push({ type: "reasoning-delta", delta: reasoning });
        const text = choice.delta?.content;
        if (typeof text === "string" && text.length > 0) into.push({ type: "text-delta", delta: text });
        if (typeof choice.finish_reason === "string") finishReason = choice.finish_reason;
      }
      // With include_usage the usage arrives in its own chunk after the finish_reason chunk.
      if (chunk.usage) usage = { type: "usage", inputTokens: chunk.usage.prompt_tokens, outputTokens: chunk.usage.completion_tokens };
    },
  });
  const decoder = new TextDecoder();
  return readBodyBatches<ProviderEvent>(
    response.body,
    {
      read: (bytes, batch) => {
        into = batch;
        parser.feed(typeof bytes === "string" ? bytes : decoder.decode(bytes, { stream: true }));
        return done;
      },
      end: (batch) => {
        into = batch;
        if (!done) parser.feed(decoder.decode());
        if (finishReason === undefined) {
          if (signal?.aborted === true) return;
          throw new ProviderError("truncated", { message: "The OpenAI stream ended without a finish_reason." });
        }
        if (usage) batch.push(usage);
        batch.push({ type: "finish", reason: finishReason });
      },
    },
    signal,
  );
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

function malformed(): ProviderError {
  return new ProviderError("server", { message: "The provider sent a chunk that is not a chat completion chunk." });
}
