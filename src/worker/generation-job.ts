import { SpanKind } from "@opentelemetry/api";
import type { Logger } from "pino";
import { SluiceError, isSluiceError } from "../errors/catalog.ts";
import { redisFailure } from "../errors/dependency-failure.ts";
import type { LlmProvider } from "../llm/llm-provider.ts";
import type { GenerationJobData } from "../queue/generation-queue.ts";
import type { MessagesRepository } from "../storage/messages-repository.ts";
import { createStreamWriter, type StreamLog } from "../streaming/index.ts";
import type { Clock } from "../time/clock.ts";
import { contextFromTraceparent } from "../tracing/traceparent.ts";
import { startSpan, withSpan } from "../tracing/with-span.ts";
import { beginFencedAttempt } from "./begin-fenced-attempt.ts";
import type { ContextBudget } from "./context-budget.ts";
import type { CancelWatcher } from "./cancel-watcher.ts";
import type { GenerationMetrics } from "./generation-metrics.ts";
import { saveAndEnd, type Outcome } from "./save-and-end.ts";
import { loggedReply } from "./saved-text.ts";
import { promptForAttempt } from "./prompt-for-attempt.ts";
import { streamProvider, type ProviderResult } from "./stream-provider.ts";

export type { GenerationMetrics } from "./generation-metrics.ts";

export interface GenerationJobDependencies {
  streamLog: StreamLog;
  messages: MessagesRepository;
  provider: LlmProvider;
  cancels: CancelWatcher;
  logger: Logger;
  /** Fixed, or the process's load-adaptive window (src/streaming/load-adaptive-window.ts). */
  coalesceWindowMs: number | (() => number);
  coalesceMaxBytes: number;
  /** Provider retries for transient errors, only before the first token reaches the log. */
  providerMaxRetries: number;
  /** How long the final save is retried while PostgreSQL is unavailable (ms). */
  finalSaveRetryMs: number;
  /** Durations (time to first token) on its monotonic scale; backoff sleeps on it. */
  clock: Clock;
  metrics?: GenerationMetrics;
  /** Each model's context budget (src/config `context`); unset sends the whole history. */
  context?: ContextBudget;
}

/** "handed-back": shutdown stopped the attempt unsaved; the caller returns the job to the queue for another worker. */
export type GenerationJobResult = "done" | "handed-back";

/**
 * Begin again above `attempt`: the log vanished under it (Redis restarted without persistence), or
 * the provider refused to continue the reply it took over (then the next attempt restarts it).
 */
type BeginAgain = { lostAttempt: number } | { continuationRefused: number };

/** An attempt that fails before the provider is called (the prompt cannot fit): saved and ended like a provider failure. */
const failedBeforeProvider = (failure: ProviderResult["failure"]): ProviderResult => ({ text: "", reasoning: "", reasoningDurationMs: null, usage: undefined, failure });

/** Log losses one job survives before it gives up (the job is then retried or failed, generation-retries.ts). */
const maxLogLosses = 3;

/**
 * One generation job (docs: ARCHITECTURE.md "A generation"), attempt by attempt:
 * 1. begin a fenced attempt in the log and PostgreSQL (begin-fenced-attempt.ts);
 * 2. stream the provider through the coalescing writer (stream-provider.ts);
 * 3. judge the attempt (below): superseded, log lost, cancelled, handed back, failed or completed;
 * 4. save the final message, then write `end` (save-and-end.ts).
 * A zombie whose attempt was superseded is refused by both the log and the UPDATE.
 */
export function createGenerationJob(
  dependencies: GenerationJobDependencies,
): (data: GenerationJobData, shutdown?: AbortSignal) => Promise<GenerationJobResult> {
  const { streamLog, logger, clock } = dependencies;

  const runAttempt = async (
    data: GenerationJobData,
    shutdown: AbortSignal,
    minAttempt: number | undefined,
    mayContinue: boolean,
    cancel: AbortController,
    cancelledBeforeStart: Promise<boolean>,
  ): Promise<GenerationJobResult | BeginAgain> => {
    const { taskId } = data;
    const log = logger.child({ taskId });
    const fenced = await beginFencedAttempt(dependencies, data, minAttempt, log, mayContinue);
    if (!fenced) return "done";
    const { started, task, kept } = fenced;
    // The system prompt and the newest turns within the model's context budget (prompt-for-attempt.ts).
    const prompt = promptForAttempt({ systemPrompt: task.systemPrompt, history: task.history, olderTurnsNotLoaded: task.historyTurnsNotLoaded, model: data.model, continueFrom: kept?.text, context: dependencies.context, log, metrics: dependencies.metrics });
    const writer = createStreamWriter({
      log: streamLog,
      taskId,
      attempt: started.attempt,
      startSeq: started.seq,
      coalesceWindowMs: dependencies.coalesceWindowMs,
      coalesceMaxBytes: dependencies.coalesceMaxBytes,
    });
    const startedAt = clock.monotonicMs();
    const providerSpan = startSpan("provider call", { kind: SpanKind.CLIENT, attributes: { "gen_ai.request.model": data.model, "sluice.attempt": started.attempt } });
    let text: string;
    let reasoning: { text: string; durationMs: number | null };
    let usage: { inputTokens: number; outputTokens: number } | undefined;
    let outcome: Outcome;
    try {
      if (await cancelledBeforeStart) cancel.abort(new Error("cancelled"));
      const provided = "failure" in prompt ? failedBeforeProvider(prompt.failure) : await streamProvider({
        provider: dependencies.provider,
        model: data.model,
        turns: prompt.turns,
        writer,
        signal: AbortSignal.any([cancel.signal, writer.signal, shutdown]),
        maxRetries: dependencies.providerMaxRetries,
        clock,
        log,
        span: providerSpan,
        attempt: started.attempt,
        metrics: dependencies.metrics,
        ...(kept?.text ? { continueFrom: kept.text } : {}),
      });
      if (provided.continuationRefused && !cancel.signal.aborted && !shutdown.aborted) {
        log.warn({ attempt: started.attempt, error: provided.failure }, "the provider refused to continue the reply; restarting it");
        return { continuationRefused: started.attempt };
      }
      ({ text, usage } = provided);
      reasoning = { text: provided.reasoning, durationMs: provided.reasoningDurationMs };
      outcome = provided.failure ? { status: "failed", error: provided.failure } : { status: "completed" };
      // Judge the attempt. A failed flush is recorded in writer.failure.
      if (!shutdown.aborted) await writer.flush().catch(() => undefined);
      if (writer.failure) {
        if (writer.failure.code === "STALE_ATTEMPT") {
          log.warn({ attempt: started.attempt }, "attempt superseded; stopping without saving");
          return "done";
        }
        if (writer.failure.code === "STREAM_NOT_FOUND") return { lostAttempt: started.attempt };
        // Redis out of memory surfaces as STORE_FULL (errors/dependency-failure.ts).
        const failure = redisFailure(writer.failure);
        outcome = { status: "failed", error: { code: failure.code, message: failure.message } };
        // Save what clients saw, not deltas the log refused (reads still work when Redis is full).
        const seen = { text, reasoning: reasoning.text };
        const logged = await loggedReply(streamLog, taskId, started.seq).catch(() => seen);
        text = logged.text;
        reasoning = { ...reasoning, text: logged.reasoning };
      } else if (cancel.signal.aborted) {
        outcome = { status: "cancelled" };
      } else if (shutdown.aborted) {
        // Past the shutdown grace period: no save, no end. The next worker's attempt continues the
        // reply from what this one flushed (`continue`) or, where the provider cannot, starts with
        // `reset`, so clients drop this attempt's text: either way nothing is shown twice (PROTOCOL.md 4.3).
        await writer.flush().catch(() => undefined);
        log.warn({ attempt: started.attempt }, "shutdown: handing the generation back to the queue");
        return "handed-back";
      }
    } catch (error) {
      if (isSluiceError(error) && error.code === "STALE_ATTEMPT") return "done";
      throw error;
    } finally {
      providerSpan.end();
    }

    if (kept) {
      // A continued attempt saves the whole reply: what it kept (viewers have it) and its own part.
      text = kept.text + text;
      reasoning = { ...reasoning, text: kept.reasoning + reasoning.text };
    }
    const { ended, lastSeq } = await saveAndEnd(dependencies, { taskId, model: data.model, messageId: task.messageId, started, writer, log, shutdown }, { outcome, text, reasoning, usage });
    if (!ended) return "done";
    dependencies.metrics?.generations.inc({ status: outcome.status });
    log.info({ status: outcome.status, chunks: lastSeq, characters: text.length, durationMs: clock.monotonicMs() - startedAt, errorCode: outcome.error?.code }, "stream completed");
    return "done";
  };

  const attemptOnce = async (data: GenerationJobData, shutdown: AbortSignal, minAttempt: number | undefined, mayContinue: boolean): Promise<GenerationJobResult | BeginAgain> => {
    // Watched first, then the durable marker read (beside beginAttempt, on another connection,
    // so the start path pays one round trip for both): a cancel is caught by one or the other.
    const cancel = new AbortController();
    const unwatch = dependencies.cancels.watch(data.taskId, cancel);
    const cancelledBeforeStart = dependencies.cancels.isCancelled(data.taskId);
    cancelledBeforeStart.catch(() => undefined);
    try {
      return await runAttempt(data, shutdown, minAttempt, mayContinue, cancel, cancelledBeforeStart);
    } finally {
      unwatch();
    }
  };

  // Spans (docs/operations.md "Tracing"): job > provider call (event "first chunk") and final save,
  // continuing the enqueueing request's trace. Off, they are non-recording: a few allocations per job.
  const jobSpan = (data: GenerationJobData) => ({
    parent: contextFromTraceparent(data.traceparent),
    kind: SpanKind.CONSUMER,
    attributes: { "sluice.task_id": data.taskId, "gen_ai.request.model": data.model },
  });
  return (data, shutdown = new AbortController().signal) => withSpan("job", jobSpan(data), async () => {
    let minAttempt: number | undefined;
    let mayContinue = true;
    let losses = 0;
    for (;;) {
      const result = await attemptOnce(data, shutdown, minAttempt, mayContinue);
      if (typeof result === "string") return result;
      if ("continuationRefused" in result) {
        // Once: the next attempt restarts the reply (`reset`), so it cannot be refused the same way.
        minAttempt = result.continuationRefused + 1;
        mayContinue = false;
        continue;
      }
      losses += 1;
      // Thrown, the job is retried as a dependency failure or failed (generation-retries.ts).
      if (losses > maxLogLosses) throw new SluiceError("SERVICE_UNAVAILABLE", "The stream log was lost again and again.");
      logger.warn({ taskId: data.taskId, attempt: result.lostAttempt }, "the stream log was lost (Redis restarted empty); beginning again");
      minAttempt = result.lostAttempt + 1;
    }
  });
}
