import { SpanKind } from "@opentelemetry/api";
import type { Logger } from "pino";
import { SluiceError, isSluiceError, type ErrorCode } from "../errors/catalog.ts";
import { redisFailure } from "../errors/dependency-failure.ts";
import type { ChatTurn, LlmProvider } from "../llm/llm-provider.ts";
import { isProviderError } from "../llm/provider-error.ts";
import type { GenerationJobData } from "../queue/generation-queue.ts";
import { isActiveStatus, type FinalResult, type MessagesRepository } from "../storage/messages-repository.ts";
import { createStreamWriter, type StreamLog } from "../streaming/index.ts";
import { contextFromTraceparent } from "../tracing/traceparent.ts";
import { sleep, type Clock } from "../time/clock.ts";
import { failSpan, startSpan, withSpan } from "../tracing/with-span.ts";
import type { CancelWatcher } from "./cancel-watcher.ts";
import { retryDatabase, retryWithinBudget } from "./retry-within-budget.ts";

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
}

/** The worker's counters (src/metrics); optional so tests can leave them out. */
export interface GenerationMetrics {
  providerTimeToFirstToken: { observe(seconds: number): void };
  chunksWritten: { inc(value?: number): void };
  bytesWritten: { inc(value?: number): void };
  generations: { inc(labels: { status: string }): void };
  /** Jobs whose lock expired, found by this worker's stalled check. */
  jobsStalled?: { inc(): void };
}

interface Outcome {
  status: FinalResult["status"];
  error?: { code: ErrorCode; message: string };
}

/**
 * One generation attempt (docs: ARCHITECTURE.md "A generation"):
 * 1. Begin an attempt in the log (fencing epoch; clients see `start` or `reset`)
 *    and take the PostgreSQL row for the same attempt.
 * 2. Stream the provider through the coalescing writer.
 * 3. Save the final message in one idempotent UPDATE, then write `end`.
 * A zombie whose attempt was superseded is refused by both the log and the UPDATE.
 */
/** "handed-back": shutdown stopped the attempt unsaved; the caller returns the job to the queue for another worker. */
export type GenerationJobResult = "done" | "handed-back";

/** The log vanished under a running attempt (Redis restarted without persistence); begin again above it. */
interface LogLost {
  lostAttempt: number;
}

/** Log losses one job survives before it gives up (the orphan sweeper then fails the task). */
const maxLogLosses = 3;
/** How long `end` is retried while Redis refuses it (out of memory, restarting), in ms. */
const endRetryBudgetMs = 60_000;

export function createGenerationJob(
  dependencies: GenerationJobDependencies,
): (data: GenerationJobData, shutdown?: AbortSignal) => Promise<GenerationJobResult> {
  const { streamLog, messages, logger } = dependencies;
  const runAttempt = async (
    data: GenerationJobData,
    shutdown: AbortSignal,
    minAttempt: number | undefined,
    cancel: AbortController,
    cancelledBeforeStart: Promise<boolean>,
  ): Promise<GenerationJobResult | LogLost> => {
    const { taskId } = data;
    const log = logger.child({ taskId });
    let started;
    try {
      started = await streamLog.beginAttempt(taskId, { model: data.model, ...(minAttempt === undefined ? {} : { minAttempt }) });
    } catch (error) {
      if (isSluiceError(error) && error.code === "STALE_ATTEMPT") return "done"; // the log already ended
      throw error;
    }
    let task = await messages.beginAttempt(taskId, started.attempt);
    if (!task) {
      // Redis lost the log (restart without persistence) and counted attempts from 1 again,
      // below what PostgreSQL has seen: begin once more above it, so fencing never goes backwards.
      const current = await messages.findTask(taskId);
      if (started.created && current && isActiveStatus(current.status) && current.attempt >= started.attempt) {
        started = await streamLog.beginAttempt(taskId, { model: data.model, minAttempt: current.attempt + 1 });
        task = await messages.beginAttempt(taskId, started.attempt);
      }
    }
    if (!task) {
      await settleWithoutRunning(dependencies, taskId, started.attempt, log);
      return "done";
    }
    const { history } = task;
    const turns: ChatTurn[] = [
      ...(task.systemPrompt ? [{ role: "system" as const, content: task.systemPrompt }] : []),
      ...history.map((turn) => ({ role: turn.role, content: turn.content })),
    ];

    const writer = createStreamWriter({
      log: streamLog,
      taskId,
      attempt: started.attempt,
      startSeq: started.seq,
      coalesceWindowMs: dependencies.coalesceWindowMs,
      coalesceMaxBytes: dependencies.coalesceMaxBytes,
    });
    let text = "";
    let usage: { inputTokens: number; outputTokens: number } | undefined;
    let outcome: Outcome = { status: "completed" };
    const startedAt = dependencies.clock.monotonicMs();
    const providerSpan = startSpan("provider call", { kind: SpanKind.CLIENT, attributes: { "gen_ai.request.model": data.model, "sluice.attempt": started.attempt } });
    try {
      if (await cancelledBeforeStart) cancel.abort(new Error("cancelled"));
      const signal = AbortSignal.any([cancel.signal, writer.signal, shutdown]);
      for (let retry = 0; !signal.aborted; retry += 1) {
        try {
          for await (const event of dependencies.provider.stream({ model: data.model, messages: turns }, signal)) {
            if (event.type === "text-delta") {
              if (text === "") {
                const providerTimeToFirstTokenMs = dependencies.clock.monotonicMs() - startedAt;
                dependencies.metrics?.providerTimeToFirstToken.observe(providerTimeToFirstTokenMs / 1000);
                providerSpan.addEvent("first chunk", { "sluice.time_to_first_token_ms": providerTimeToFirstTokenMs });
                log.info({ providerTimeToFirstTokenMs, attempt: started.attempt }, "first chunk received");
              }
              text += event.delta;
              writer.appendText(event.delta);
              dependencies.metrics?.chunksWritten.inc();
              dependencies.metrics?.bytesWritten.inc(Buffer.byteLength(event.delta));
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
          if (retryable && text === "" && retry < dependencies.providerMaxRetries) {
            const delayMs = (isProviderError(error) ? error.retryAfterMs : undefined) ?? Math.min(250 * 2 ** retry, 8_000);
            log.warn({ err: error, retry: retry + 1, delayMs }, "transient provider error before the first token; retrying");
            await sleep(dependencies.clock, delayMs, signal).catch(() => undefined);
            continue;
          }
          outcome = { status: "failed", error: errorInfo(error) };
          failSpan(providerSpan, error);
          break;
        }
      }
      // A failed flush is recorded in writer.failure, judged next.
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
        text = await loggedText(streamLog, taskId, started.seq).catch(() => text);
      } else if (cancel.signal.aborted) {
        outcome = { status: "cancelled" };
      } else if (shutdown.aborted) {
        // Past the shutdown grace period: no save, no end. The next worker's attempt starts with
        // `reset`, so clients drop this attempt's text and nothing is shown twice.
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

    const lastSeq = (await streamLog.inspect(taskId))?.lastSeq ?? null;
    const saved = await withSpan("final save", { attributes: { "sluice.status": outcome.status } }, () => retryDatabase(
      () =>
        messages.finish(taskId, started.attempt, {
          status: outcome.status,
          content: text,
          lastSeq,
          inputTokens: usage?.inputTokens ?? null,
          outputTokens: usage?.outputTokens ?? null,
          errorCode: outcome.error?.code ?? null,
          errorMessage: outcome.error?.message ?? null,
        }),
      { budgetMs: dependencies.finalSaveRetryMs, baseDelayMs: 200, maxDelayMs: 2_000, clock: dependencies.clock, onRetry: (error, attempt) => log.warn({ err: error, attempt }, "final save failed; retrying") },
    ));
    if (saved === "stale" || saved === "missing") {
      log.warn({ saved }, "final save refused; not ending the stream");
      return "done";
    }
    // PROTOCOL.md: `end` is written only after the final message is committed.
    const endOutcome = { status: outcome.status, messageId: task.messageId, ...(outcome.error ? { error: outcome.error } : {}) };
    let logLost = false;
    await endAfterSave(dependencies, log, shutdown, async () => {
      if (!logLost) {
        try {
          await writer.end(endOutcome);
          return;
        } catch (error) {
          if (!(isSluiceError(error) && error.code === "STREAM_NOT_FOUND")) throw error;
          logLost = true;
        }
      }
      // The log was lost after the save: recreate it (clients get `reset`) with the saved text and the end.
      // A retry begins yet another attempt, whose `reset` drops a half-written replay.
      const again = await streamLog.beginAttempt(taskId, { model: data.model, minAttempt: started.attempt + 1 });
      await appendSavedText(streamLog, taskId, again.attempt, text);
      await streamLog.end(taskId, again.attempt, endOutcome);
    });
    dependencies.metrics?.generations.inc({ status: outcome.status });
    log.info({ status: outcome.status, chunks: lastSeq, characters: text.length, durationMs: dependencies.clock.monotonicMs() - startedAt, errorCode: outcome.error?.code }, "stream completed");
    return "done";
  };
  const attemptOnce = async (data: GenerationJobData, shutdown: AbortSignal, minAttempt: number | undefined): Promise<GenerationJobResult | LogLost> => {
    // Watched first, then the durable marker read (beside beginAttempt, on another connection,
    // so the start path pays one round trip for both): a cancel is caught by one or the other.
    const cancel = new AbortController();
    const unwatch = dependencies.cancels.watch(data.taskId, cancel);
    const cancelledBeforeStart = dependencies.cancels.isCancelled(data.taskId);
    cancelledBeforeStart.catch(() => undefined);
    try {
      return await runAttempt(data, shutdown, minAttempt, cancel, cancelledBeforeStart);
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
    for (let losses = 0; ; losses += 1) {
      const result = await attemptOnce(data, shutdown, minAttempt);
      if (typeof result === "string") return result;
      // Thrown, the job fails and the orphan sweeper fails the message and ends the stream.
      if (losses >= maxLogLosses) throw new SluiceError("SERVICE_UNAVAILABLE", "The stream log was lost again and again.");
      logger.warn({ taskId: data.taskId, attempt: result.lostAttempt }, "the stream log was lost (Redis restarted empty); beginning again");
      minAttempt = result.lostAttempt + 1;
    }
  });
}

/**
 * Writes `end`, retrying while Redis refuses it (out of memory, restarting) for up to
 * `endRetryBudgetMs`: the message is saved, and a client sees the outcome only through `end`.
 * STALE_ATTEMPT (a newer attempt owns the log and will end it) is success.
 */
async function endAfterSave(dependencies: GenerationJobDependencies, log: Logger, shutdown: AbortSignal, writeEnd: () => Promise<void>): Promise<void> {
  const writeEndUnlessSuperseded = async (): Promise<void> => {
    try {
      await writeEnd();
    } catch (error) {
      if (!(isSluiceError(error) && error.code === "STALE_ATTEMPT")) throw error;
    }
  };
  // The catalog decides: Redis full or unavailable is retryable; a log that refuses the end (too large) is not.
  const refusedByRedis = (error: unknown): boolean => redisFailure(error).retryable;
  try {
    await retryWithinBudget(writeEndUnlessSuperseded, {
      budgetMs: endRetryBudgetMs,
      baseDelayMs: 200,
      maxDelayMs: 2_000,
      retryable: refusedByRedis,
      signal: shutdown,
      clock: dependencies.clock,
      onRetry: (error, attempt) => log.warn({ err: error, code: redisFailure(error).code, retry: attempt }, "could not write end; retrying"),
    });
  } catch (error) {
    // Redis's refusal as the client-facing error (STORE_FULL / SERVICE_UNAVAILABLE); other SluiceErrors pass unchanged.
    throw redisFailure(error);
  }
}

/** The text of the attempt that began at `startSeq`, as the log holds it. */
async function loggedText(streamLog: StreamLog, taskId: string, startSeq: number): Promise<string> {
  let text = "";
  for (let afterSeq = startSeq; ; ) {
    const page = await streamLog.read(taskId, afterSeq);
    const last = page?.entries.at(-1);
    if (!page || !last) return text;
    for (const entry of page.entries) if (entry.event.type === "text-delta") text += entry.event.delta;
    afterSeq = last.seq;
  }
}

/** Appends saved text in chunks under the event size limit (a replay after `reset`, PROTOCOL.md 3.2). */
async function appendSavedText(streamLog: StreamLog, taskId: string, attempt: number, content: string): Promise<void> {
  const chunks = content.match(/[\s\S]{1,4096}/gu) ?? [];
  if (chunks.length > 0) await streamLog.append(taskId, attempt, chunks.map((delta) => ({ type: "text-delta" as const, delta })));
}

function errorInfo(error: unknown): { code: ErrorCode; message: string } {
  if (isSluiceError(error)) return { code: error.code, message: error.message };
  return { code: "PROVIDER_ERROR", message: new SluiceError("PROVIDER_ERROR").message };
}

/** The PostgreSQL row is final, gone, or owned by a newer attempt: make sure the log agrees and stop. */
async function settleWithoutRunning(dependencies: GenerationJobDependencies, taskId: string, attempt: number, log: Logger): Promise<void> {
  const task = await dependencies.messages.findTask(taskId);
  if (task && isActiveStatus(task.status)) {
    log.warn({ attempt: task.attempt }, "a newer attempt owns this task; stopping");
    return;
  }
  const status = task ? (task.status as FinalResult["status"]) : "cancelled";
  // This attempt's `reset` told every client to drop the text of the attempt that saved the message
  // (it lost its lock between the save and `end`); send the saved text again, so that the text after
  // the last reset is the saved message (PROTOCOL.md 3.2). Chunks stay under the event size limit.
  const saved = task && attempt > 1 ? (await dependencies.messages.listForConversation(task.conversationId)).find((row) => row.id === task.messageId) : undefined;
  if (saved) {
    try {
      await appendSavedText(dependencies.streamLog, taskId, attempt, saved.content);
    } catch (error) {
      if (isSluiceError(error) && error.code === "STALE_ATTEMPT") return;
      throw error;
    }
  }
  await dependencies.streamLog.forceEnd(taskId, { status, ...(task ? { messageId: task.messageId } : {}) });
}
