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
  usage: { inputTokens: number; outputTokens: number } | undefined;
  /** Set when the provider failed for good (not when `signal` stopped it). */
  failure: { code: ErrorCode; message: string } | undefined;
}

/**
 * Step 2 of an attempt: streams the provider into the writer. Transient errors
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
}): Promise<ProviderResult> {
  const { writer, signal, clock, log, metrics } = options;
  const startedAt = clock.monotonicMs();
  let text = "";
  let usage: ProviderResult["usage"];
  for (let retry = 0; !signal.aborted; retry += 1) {
    try {
      for await (const event of options.provider.stream({ model: options.model, messages: options.turns }, signal)) {
        if (event.type === "text-delta") {
          if (text === "") {
            const providerTimeToFirstTokenMs = clock.monotonicMs() - startedAt;
            metrics?.providerTimeToFirstToken.observe(providerTimeToFirstTokenMs / 1000);
            options.span.addEvent("first chunk", { "sluice.time_to_first_token_ms": providerTimeToFirstTokenMs });
            log.info({ providerTimeToFirstTokenMs, attempt: options.attempt }, "first chunk received");
          }
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
      if (retryable && text === "" && retry < options.maxRetries) {
        const delayMs = (isProviderError(error) ? error.retryAfterMs : undefined) ?? Math.min(250 * 2 ** retry, 8_000);
        log.warn({ err: error, retry: retry + 1, delayMs }, "transient provider error before the first token; retrying");
        await sleep(clock, delayMs, signal).catch(() => undefined);
        continue;
      }
      failSpan(options.span, error);
      return { text, usage, failure: errorInfo(error) };
    }
  }
  return { text, usage, failure: undefined };
}

function errorInfo(error: unknown): { code: ErrorCode; message: string } {
  if (isSluiceError(error)) return { code: error.code, message: error.message };
  return { code: "PROVIDER_ERROR", message: new SluiceError("PROVIDER_ERROR").message };
}
