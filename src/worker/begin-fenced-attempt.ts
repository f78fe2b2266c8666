import type { Logger } from "pino";
import { isSluiceError } from "../errors/catalog.ts";
import type { GenerationJobData } from "../queue/generation-queue.ts";
import { isActiveStatus, type FinalResult, type HistoryTurn, type MessagesRepository, type TaskRecord } from "../storage/messages-repository.ts";
import type { LlmProvider } from "../llm/llm-provider.ts";
import type { AttemptStarted, StreamLog } from "../streaming/index.ts";
import { historyLoadLimit, type ContextBudget } from "./context-budget.ts";
import { replyBefore, type KeptReply } from "./reply-so-far.ts";
import { appendSavedText } from "./saved-text.ts";

export interface FencedAttempt {
  started: AttemptStarted;
  task: TaskRecord & { history: HistoryTurn[]; historyTurnsNotLoaded: number };
  /** Set when the attempt continues the reply (`continue`): what the log already holds of it. */
  kept: KeptReply | undefined;
}

type Dependencies = { streamLog: StreamLog; messages: MessagesRepository; provider: Pick<LlmProvider, "continuesReplies">; context?: ContextBudget | undefined };

/**
 * Step 1 of an attempt: begin it in the log (the fencing epoch; clients see `start`,
 * `reset`, or `continue` when the provider can continue the reply, PROTOCOL.md 4.3),
 * and take the PostgreSQL row for the same attempt, which returns the prompt's history
 * (on a job's first run, attempt 1 is claimed beside the begin).
 * Undefined when there is nothing to run: the log already ended, or the row is final,
 * gone or a newer attempt's (the log is then made to agree).
 */
export async function beginFencedAttempt(
  dependencies: Dependencies,
  data: GenerationJobData,
  minAttempt: number | undefined,
  log: Logger,
  /** false after the provider refused a continuation: this attempt restarts the reply. */
  mayContinue = true,
): Promise<FencedAttempt | undefined> {
  const { streamLog, messages } = dependencies;
  const { taskId } = data;
  // The history read stops where no more could fit the model's budget: a turn's cost does not grow
  // with the conversation (context-budget.ts). Without a budget (unit tests) it is read whole.
  const limit = dependencies.context === undefined ? undefined : historyLoadLimit(dependencies.context, data.model);
  // A job's first run is attempt 1 unless an earlier run began it in the log, so attempt 1 is
  // claimed beside the begin instead of after it: one round trip less before the provider call.
  // When the begin answers another attempt, this claim's result is dropped and that attempt is
  // claimed: the early claim either changed nothing (the row was at 1 or past it) or moved an
  // unclaimed row to 1, which the second claim moves past. Fencing holds either way: a row only
  // moves up, and the save needs the attempt the log and the row agree on. Costs: a re-run of a
  // job (retry, stalled takeover) sends one claim of 1 that matches nothing; and when Redis refused
  // the begin after the early claim went through, the retry finds the row above its new log and
  // begins again over it, as after a Redis restart (`start`, then `reset`, with no text between).
  const early = minAttempt === undefined ? settle(messages.beginAttempt(taskId, 1, limit)) : undefined;
  let started;
  let kept: KeptReply | undefined;
  try {
    started = await streamLog.beginAttempt(taskId, {
      model: data.model,
      ...(minAttempt === undefined ? {} : { minAttempt }),
      ...(dependencies.provider.continuesReplies === true && mayContinue ? { continueReply: true } : {}),
    });
    if (started.continued) {
      // Fenced by the begin: no older attempt can add to what is read here.
      kept = await replyBefore(streamLog, taskId, started.seq);
      if (kept.text === "" && kept.reasoning !== "") {
        // It died while thinking: there is no answer to continue, and a second line of thought
        // after a cut-off first reads as nonsense. Restart it (`reset`, another attempt).
        started = await streamLog.beginAttempt(taskId, { model: data.model });
        kept = undefined;
      } else {
        log.info({ attempt: started.attempt, keptCharacters: kept.text.length }, "continuing the reply of an attempt that died");
      }
    }
  } catch (error) {
    await early;
    if (isSluiceError(error) && error.code === "STALE_ATTEMPT") return undefined; // the log already ended
    throw error;
  }
  const earlyClaim = await early;
  let task = earlyClaim && started.attempt === 1 ? claimed(earlyClaim) : await messages.beginAttempt(taskId, started.attempt, limit);
  if (!task) {
    // Redis lost the log (restart without persistence) and counted attempts from 1 again,
    // below what PostgreSQL has seen: begin once more above it, so fencing never goes backwards.
    const current = await messages.findTask(taskId);
    if (started.created && current && isActiveStatus(current.status) && current.attempt >= started.attempt) {
      started = await streamLog.beginAttempt(taskId, { model: data.model, minAttempt: current.attempt + 1 });
      task = await messages.beginAttempt(taskId, started.attempt, limit);
    }
  }
  if (!task) {
    await settleWithoutRunning(dependencies, taskId, started, log);
    return undefined;
  }
  return { started, task, kept: started.continued ? kept : undefined };
}

/** The PostgreSQL row is final, gone, or owned by a newer attempt: make sure the log agrees and stop. */
async function settleWithoutRunning(dependencies: Dependencies, taskId: string, started: AttemptStarted, log: Logger): Promise<void> {
  const { attempt } = started;
  const task = await dependencies.messages.findTask(taskId);
  if (task && isActiveStatus(task.status)) {
    log.warn({ attempt: task.attempt }, "a newer attempt owns this task; stopping");
    return;
  }
  const status = task ? (task.status as FinalResult["status"]) : "cancelled";
  // This attempt's `reset` told every client to drop the text of the attempt that saved the message
  // (it lost its lock between the save and `end`); send the saved text again, so that the text after
  // the last reset is the saved message (PROTOCOL.md 3.2). Chunks stay under the event size limit.
  // After a `continue` nothing was dropped: the log holds the saved reply already.
  const saved = task && attempt > 1 && !started.continued ? (await dependencies.messages.listForConversation(task.conversationId)).find((row) => row.id === task.messageId) : undefined;
  if (saved) {
    try {
      await appendSavedText(dependencies.streamLog, taskId, attempt, saved.content, saved.reasoning);
    } catch (error) {
      if (isSluiceError(error) && error.code === "STALE_ATTEMPT") return;
      throw error;
    }
  }
  await dependencies.streamLog.forceEnd(taskId, { status, ...(task ? { messageId: task.messageId } : {}) });
}

type Settled<T> = { value: T } | { error: unknown };

/** A promise that never rejects, so a claim whose answer may be dropped is never an unhandled rejection. */
function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then((value) => ({ value }), (error: unknown) => ({ error }));
}

/** The early claim's answer, or its failure (PostgreSQL down), thrown as the claim after the begin would throw it. */
function claimed<T>(result: Settled<T>): T {
  if ("error" in result) throw result.error;
  return result.value;
}
