import type { Span } from "@opentelemetry/api";
import type { Logger } from "pino";
import { SluiceError, isSluiceError, type ErrorCode } from "../errors/catalog.ts";
import type { ChatTurn, LlmProvider } from "../llm/llm-provider.ts";
import { isProviderError } from "../llm/provider-error.ts";
import type { StreamWriter } from "../streaming/index.ts";
import { sleep, type Clock } from "../time/clock.ts";
import { failSpan } from "../tracing/with-span.ts";
import type { GenerationMetrics } from "./generation-metrics.ts";

export interface ProviderResult {
  /** Everything the provider sent, as handed to the writer. */
  text: string;
  /** The reasoning the provider sent ("" for none), as handed to the writer. */
  reasoning: string;
  /** From the first reasoning delta to the answer's first delta (or the last reasoning delta); null without reasoning. */
  reasoningDurationMs: number | null;
  usage: { inputTokens: number; outputTokens: number } | undefined;
  /** Set when the provider failed for good (not when `signal` stopped it). */
  failure: { code: ErrorCode; message: string } | undefined;
  /**
   * With `continueFrom`: the provider refused the continuation request itself (a bad request
   * before anything streamed), as a server without `continue_final_message` does. The reply can
   * still be restarted (`failure` is set too, for a caller that does not).
   */
  continuationRefused?: true;
}

/**
 * Step 2 of an attempt: streams the provider into the writer, reasoning and text
 * each as their own deltas (PROTOCOL.md 3). Transient errors
 * (the catalog's `retryable`) are retried with backoff, only before the first
 * token reaches the writer: after it, a retry would repeat text. Stops quietly
 * when `signal` aborts (cancel, a refused append, shutdown); the caller judges why.
 */
export async function streamProvider(options: {
  provider: LlmProvider;
  model: string;
  turns: ChatTurn[];
  writer: StreamWriter;
  signal: AbortSignal;
  maxRetries: number;
  clock: Clock;
  log: Logger;
  span: Span;
  attempt: number;
  metrics: GenerationMetrics | undefined;
  /** The start of the reply, kept from a crashed attempt: the provider streams only the rest (PROTOCOL.md 4.3). */
  continueFrom?: string;
}): Promise<ProviderResult> {
  const { writer, signal, clock, log, metrics } = options;
  const startedAt = clock.monotonicMs();
  let text = "";
  let reasoning = "";
  let reasoningStartedAt: number | undefined;
  let reasoningEndedAt: number | undefined;
  let usage: ProviderResult["usage"];
  const logFirstChunk = (): void => {
    const providerTimeToFirstTokenMs = clock.monotonicMs() - startedAt;
    metrics?.providerTimeToFirstToken.observe(providerTimeToFirstTokenMs / 1000);
    options.span.addEvent("first chunk", { "sluice.time_to_first_token_ms": providerTimeToFirstTokenMs });
    log.info({ providerTimeToFirstTokenMs, attempt: options.attempt }, "first chunk received");
  };
  const result = (failure: ProviderResult["failure"]): ProviderResult => ({
    text,
    reasoning,
    reasoningDurationMs: reasoningStartedAt === undefined ? null : Math.round((reasoningEndedAt ?? reasoningStartedAt) - reasoningStartedAt),
    usage,
    failure,
  });
  for (let retry = 0; !signal.aborted; retry += 1) {
    try {
      for await (const event of options.provider.stream({ model: options.model, messages: options.turns, ...(options.continueFrom ? { continueFrom: options.continueFrom } : {}) }, signal)) {
        if (event.type === "reasoning-delta") {
          if (text === "" && reasoning === "") logFirstChunk();
          reasoningStartedAt ??= clock.monotonicMs();
          if (text === "") reasoningEndedAt = clock.monotonicMs();
          reasoning += event.delta;
          writer.appendReasoning(event.delta);
          metrics?.chunksWritten.inc();
          metrics?.bytesWritten.inc(Buffer.byteLength(event.delta));
        } else if (event.type === "text-delta") {
          if (text === "" && reasoningStartedAt !== undefined) reasoningEndedAt = clock.monotonicMs();
          if (text === "" && reasoning === "") logFirstChunk();
          text += event.delta;
          writer.appendText(event.delta);
          metrics?.chunksWritten.inc();
          metrics?.bytesWritten.inc(Buffer.byteLength(event.delta));
        } else if (event.type === "usage") {
          usage = { inputTokens: event.inputTokens, outputTokens: event.outputTokens };
          writer.append({ type: "usage", ...usage });
        }
      }
      break;
    } catch (error) {
      if (signal.aborted) break;
      // The catalog's `retryable` (per kind for a ProviderError) decides: a bad request is permanent.
      const retryable = isSluiceError(error) && error.retryable;
      // Reasoning already in the log counts as text: a retry would repeat it.
      if (retryable && text === "" && reasoning === "" && retry < options.maxRetries) {
        const delayMs = (isProviderError(error) ? error.retryAfterMs : undefined) ?? Math.min(250 * 2 ** retry, 8_000);
        log.warn({ err: error, retry: retry + 1, delayMs }, "transient provider error before the first token; retrying");
        await sleep(clock, delayMs, signal).catch(() => undefined);
        continue;
      }
      failSpan(options.span, error);
      const refusedContinuation = options.continueFrom !== undefined && isProviderError(error) && error.kind === "bad-request" && text === "" && reasoning === "";
      return refusedContinuation ? { ...result(errorInfo(error)), continuationRefused: true } : result(errorInfo(error));
    }
  }
  return result(undefined);
}

function errorInfo(error: unknown): { code: ErrorCode; message: string } {
  if (isSluiceError(error)) return { code: error.code, message: error.message };
  return { code: "PROVIDER_ERROR", message: new SluiceError("PROVIDER_ERROR").message };
}
