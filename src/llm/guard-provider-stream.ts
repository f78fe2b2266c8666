import type { Clock } from "../time/clock.ts";
import type { ProviderEvent } from "./llm-provider.ts";
import { ProviderError } from "./provider-error.ts";
import { createStorableText } from "./storable-text.ts";
import { withIdleTimeout } from "./with-idle-timeout.ts";

export interface GuardProviderStreamOptions {
  /** The caller's signal; its abort surfaces as `ProviderError("aborted")`. */
  signal: AbortSignal;
  idleTimeoutMs: number;
  clock?: Clock;
  /** Turns an SDK or network error into a ProviderError; `receivedText` says whether text already streamed. */
  classifyError: (error: unknown, receivedText: boolean) => ProviderError;
}

/**
 * The reason of the abort on every exit. `abort()` without one builds a new DOMException with its
 * stack each time: 1 % of the worker's CPU in the burst profile (BENCHMARKS.md, eighth session).
 */
const streamOver = new DOMException("The provider stream is over.", "AbortError");

/**
 * Enforces the `LlmProvider.stream` contract around an adapter's raw events:
 * 1. the adapter gets its own AbortSignal, aborted on every exit (finish,
 *    error, idle timeout, consumer `break`), so no request outlives its stream;
 * 2. idle timeout and caller abort win over whatever the SDK is waiting on;
 * 3. every failure leaves as a ProviderError, the caller's abort always as "aborted";
 * 4. `finish` ends the stream; ending without one is "truncated", never a completed message;
 * 5. text and reasoning are storable: U+0000 and lone surrogates become U+FFFD (storable-text.ts),
 *    so the stream and the saved message carry the same text and the final save cannot fail on it.
 */
export async function* guardProviderStream(
  /** The adapter's raw events, in batches (those of one network read together: fewer async hops per token). */
  open: (signal: AbortSignal) => AsyncIterable<readonly ProviderEvent[]>,
  options: GuardProviderStreamOptions,
): AsyncGenerator<ProviderEvent, void, undefined> {
  const { signal } = options;
  if (signal.aborted) throw new ProviderError("aborted", { message: "The request was aborted.", cause: signal.reason });
  const controller = new AbortController();
  const forwardAbort = (): void => controller.abort(signal.reason);
  signal.addEventListener("abort", forwardAbort, { once: true });
  let receivedText = false;
  // One per part: a surrogate pair held back in the reasoning must not be completed by the answer.
  const storable = { "text-delta": createStorableText(), "reasoning-delta": createStorableText() };
  try {
    for await (const events of withIdleTimeout(open(controller.signal), options.idleTimeoutMs, signal, options.clock)) {
      for (const event of events) {
        if (event.type === "text-delta" || event.type === "reasoning-delta") {
          receivedText = true;
          const delta = storable[event.type].push(event.delta);
          if (delta !== "") yield { type: event.type, delta };
          continue;
        }
        if (event.type === "finish") {
          const reasoningRest = storable["reasoning-delta"].flush();
          if (reasoningRest !== "") yield { type: "reasoning-delta", delta: reasoningRest };
          const rest = storable["text-delta"].flush();
          if (rest !== "") yield { type: "text-delta", delta: rest };
        }
        yield event;
        if (event.type === "finish") return;
      }
    }
    // The SDKs end iteration quietly when their request is aborted.
    if (signal.aborted) throw new ProviderError("aborted", { message: "The request was aborted.", cause: signal.reason });
    throw new ProviderError("truncated", { message: "The provider's stream ended without a finish reason." });
  } catch (error) {
    if (signal.aborted) {
      if (error instanceof ProviderError && error.kind === "aborted") throw error;
      throw new ProviderError("aborted", { message: "The request was aborted.", cause: error });
    }
    if (error instanceof ProviderError) throw error;
    throw options.classifyError(error, receivedText);
  } finally {
    signal.removeEventListener("abort", forwardAbort);
    controller.abort(streamOver);
  }
}
