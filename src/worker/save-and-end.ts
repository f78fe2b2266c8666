import type { Logger } from "pino";
import { SluiceError, isSluiceError, type ErrorCode } from "../errors/catalog.ts";
import { redisFailure } from "../errors/dependency-failure.ts";
import type { FinalResult, MessagesRepository } from "../storage/messages-repository.ts";
import type { AttemptStarted, StreamLog, StreamWriter } from "../streaming/index.ts";
import type { Clock } from "../time/clock.ts";
import { withSpan } from "../tracing/with-span.ts";
import { retryDatabase, retryWithinBudget } from "./retry-within-budget.ts";
import { appendSavedText } from "./saved-text.ts";

export interface Outcome {
  status: FinalResult["status"];
  error?: { code: ErrorCode; message: string };
}

/** How long `end` is retried while Redis refuses it (out of memory, restarting), in ms. */
const endRetryBudgetMs = 60_000;

/**
 * Step 3 of an attempt: the final message in one idempotent UPDATE (retried
 * while PostgreSQL is unavailable, for `finalSaveRetryMs`), and only after its
 * commit the `end` entry (PROTOCOL.md: `end` follows the save). A save refused
 * as stale (a newer attempt owns the task) writes no `end`; a task whose row is
 * gone gets a `cancelled`/CONVERSATION_DELETED `end`. Both answer ended: false.
 * A log lost after the save is recreated with the saved text and the end.
 */
export async function saveAndEnd(
  dependencies: { streamLog: StreamLog; messages: MessagesRepository; clock: Clock; finalSaveRetryMs: number },
  attempt: { taskId: string; model: string; messageId: string; started: AttemptStarted; writer: StreamWriter; log: Logger; shutdown: AbortSignal },
  result: { outcome: Outcome; text: string; reasoning?: { text: string; durationMs: number | null }; usage: { inputTokens: number; outputTokens: number } | undefined },
): Promise<{ ended: boolean; lastSeq: number | null }> {
  const { streamLog, messages, clock } = dependencies;
  const { taskId, started, writer, log } = attempt;
  const { outcome, text, usage } = result;
  // The writer, flushed and fenced, knows the log's last seq; only after a refused append (the log
  // may hold less, or be gone) is the log asked.
  const flushedSeq = writer.failure === undefined ? writer.lastSeq : undefined;
  const lastSeq = flushedSeq ?? (await streamLog.inspect(taskId))?.lastSeq ?? null;
  const saved = await withSpan("final save", { attributes: { "sluice.status": outcome.status } }, () => retryDatabase(
    () =>
      messages.finish(taskId, started.attempt, {
        status: outcome.status,
        content: text,
        reasoning: result.reasoning?.text ?? "",
        reasoningDurationMs: result.reasoning?.durationMs ?? null,
        lastSeq,
        inputTokens: usage?.inputTokens ?? null,
        outputTokens: usage?.outputTokens ?? null,
        errorCode: outcome.error?.code ?? null,
        errorMessage: outcome.error?.message ?? null,
      }),
    { budgetMs: dependencies.finalSaveRetryMs, baseDelayMs: 200, maxDelayMs: 2_000, clock, onRetry: (error, retry) => log.warn({ err: error, attempt: retry }, "final save failed; retrying") },
  ));
  if (saved === "stale") {
    // A newer attempt owns the task and will end the log.
    log.warn({ saved }, "final save refused; not ending the stream");
    return { ended: false, lastSeq };
  }
  if (saved === "missing") {
    // The row is gone (its conversation or user was deleted under the generation): nothing to
    // save, but the log must still end, or its viewers would wait on heartbeats for ever.
    // One try, no retry budget: a conversation deleted through the API has already ended the log
    // with its tombstone (this end is then refused, harmlessly); this covers rows deleted behind the API.
    log.warn({ saved }, "the task's row is gone; ending the stream as deleted");
    await writer.end({ status: "cancelled", error: { code: "CONVERSATION_DELETED", message: new SluiceError("CONVERSATION_DELETED").message } }).catch(() => undefined);
    return { ended: false, lastSeq };
  }
  const endOutcome = { status: outcome.status, messageId: attempt.messageId, ...(outcome.error ? { error: outcome.error } : {}) };
  let logLost = false;
  await endAfterSave(clock, log, attempt.shutdown, async () => {
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
    const again = await streamLog.beginAttempt(taskId, { model: attempt.model, minAttempt: started.attempt + 1 });
    await appendSavedText(streamLog, taskId, again.attempt, text, result.reasoning?.text);
    await streamLog.end(taskId, again.attempt, endOutcome);
  });
  return { ended: true, lastSeq };
}

/**
 * Writes `end`, retrying while Redis refuses it (out of memory, restarting) for up to
 * `endRetryBudgetMs`: the message is saved, and a client sees the outcome only through `end`.
 * STALE_ATTEMPT (a newer attempt owns the log and will end it) is success.
 */
async function endAfterSave(clock: Clock, log: Logger, shutdown: AbortSignal, writeEnd: () => Promise<void>): Promise<void> {
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
      clock,
      onRetry: (error, attempt) => log.warn({ err: error, code: redisFailure(error).code, retry: attempt }, "could not write end; retrying"),
    });
  } catch (error) {
    // Redis's refusal as the client-facing error (STORE_FULL / SERVICE_UNAVAILABLE); other SluiceErrors pass unchanged.
    throw redisFailure(error);
  }
}
