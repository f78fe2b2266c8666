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
 * then take the PostgreSQL row for the same attempt, which returns the prompt's history.
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
    if (isSluiceError(error) && error.code === "STALE_ATTEMPT") return undefined; // the log already ended
    throw error;
  }
  let task = await messages.beginAttempt(taskId, started.attempt, limit);
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
