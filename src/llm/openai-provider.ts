import OpenAI, { APIConnectionError, APIError, APIUserAbortError } from "openai";
import { classifySdkError, sdkClientOptions } from "./classify-sdk-error.ts";
import type { Clock } from "../time/clock.ts";
import { guardProviderStream } from "./guard-provider-stream.ts";
import { openAiStreamEvents } from "./openai-stream-events.ts";
import type { ChatRequest, ChatTurn, LlmProvider, ProviderEvent } from "./llm-provider.ts";

export interface OpenAiProviderOptions {
  apiKey: string;
  /** Any OpenAI-compatible server, e.g. `http://127.0.0.1:8000/v1`; default api.openai.com. */
  baseUrl?: string;
  /** Over HTTP/2 (node-http2-fetch.ts) instead of HTTP/1.1. */
  http2?: boolean;
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

/**
 * The stream's events, read by openAiStreamEvents once the SDK has sent the request and turned an
 * HTTP error into its error classes. Not an async generator: a layer of those between the body and
 * the guard would cost microtask hops on every token (openai-stream-events.ts).
 */
function openAiEvents(client: OpenAI, request: ChatRequest, signal: AbortSignal): AsyncIterable<ProviderEvent[]> {
  return {
    [Symbol.asyncIterator]: () => {
      let events: AsyncIterableIterator<ProviderEvent[]> | undefined;
      const opened = client.chat.completions
        .create(
          {
            model: request.model,
            messages: [...request.messages, ...continuedTurn(request.continueFrom)].map((turn) => ({ role: turn.role, content: turn.content })),
            stream: true,
            stream_options: { include_usage: true },
            ...(request.maxOutputTokens === undefined ? {} : { max_completion_tokens: request.maxOutputTokens }),
            ...(request.continueFrom ? continueSwitches : {}),
          },
          { signal },
        )
        .asResponse()
        .then((response) => (events = openAiStreamEvents(response, signal)));
      // A request that fails while nobody waits on it (the guard already gave up) is not unhandled.
      opened.catch(() => undefined);
      return {
        next: () => (events === undefined ? opened.then((opening) => opening.next()) : events.next()),
        // The guard aborts the request on every exit, which also ends a request still being sent.
        return: () => events?.return?.() ?? Promise.resolve({ done: true, value: undefined }),
      };
    },
  };
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
