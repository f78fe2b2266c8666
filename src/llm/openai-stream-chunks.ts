import { createParser } from "eventsource-parser";
import { APIError } from "openai";
import type { ChatCompletionChunk } from "openai/resources/chat/completions";

/**
 * Reads a Chat Completions stream body (the SDK's raw `Response`, from `.asResponse()`) and yields
 * the parsed chunks of each network read together, in order.
 *
 * Why not the SDK's own `Stream`: on the worker's hottest path it spends about a third of the CPU
 * per token in four nested async generators (body → lines → SSE messages → chunks), a microtask
 * hop each per token. Here one SSE parser (eventsource-parser, as the AI SDK uses) is fed each read,
 * and a read that holds several tokens (a lagging worker) costs one iteration, not several
 * (BENCHMARKS.md, "Floors"). The request, its headers, HTTP errors and their classes stay the
 * SDK's; the stream's semantics are the SDK's too:
 * - `[DONE]` ends the stream; anything after it is ignored;
 * - an `error` event, or a chunk with an `error` field, throws the SDK's `APIError` (no status);
 * - data that is not JSON throws a SyntaxError;
 * - an event cut off by the end of the body is dropped (the SSE rule), so the caller sees no finish.
 */
export async function* openAiStreamChunks(response: Response): AsyncGenerator<ChatCompletionChunk[]> {
  const body = response.body as AsyncIterable<Uint8Array | string> | null;
  if (body === null) throw new SyntaxError("Error reading response: the stream has no body.");
  let batch: ChatCompletionChunk[] = [];
  let done = false;
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
      batch.push(data as ChatCompletionChunk);
    },
  });
  const decoder = new TextDecoder();
  for await (const bytes of body) {
    if (done) continue;
    parser.feed(typeof bytes === "string" ? bytes : decoder.decode(bytes, { stream: true }));
    if (batch.length > 0) {
      const chunks = batch;
      batch = [];
      yield chunks;
    }
    // After [DONE], a body whose last byte has arrived (node:http's `complete`) is read to its end,
    // which returns the connection to the keep-alive pool: the next request skips a TCP handshake.
    // Any other body is dropped at once (its connection closed), as the SDK does: a server that
    // keeps the response open after [DONE] must not hold the reply.
    if (done && (body as { complete?: boolean }).complete !== true) return;
  }
  parser.feed(decoder.decode());
  if (batch.length > 0) yield batch;
}
