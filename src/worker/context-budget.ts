import { bytesPerEstimatedToken, overheadTokensPerMessage } from "./fit-context.ts";

/** Each model's context budget (src/config `context`; env-schema.ts CONTEXT_*). */
export interface ContextBudget {
  /** A model's window, prompt and reply, when `budgetByModel` does not name it. */
  readonly defaultBudgetTokens: number;
  readonly budgetByModel: ReadonlyMap<string, number>;
  /** Kept free of every budget for the reply (its max output tokens). */
  readonly reservedOutputTokens: number;
}

/** Tokens the prompt (system prompt, history, a continued reply) may take for `model`. */
export function promptBudgetTokens(budget: ContextBudget, model: string): number {
  return (budget.budgetByModel.get(model) ?? budget.defaultBudgetTokens) - budget.reservedOutputTokens;
}

/**
 * The most history a generation for `model` can use, so the history load can stop there and a turn
 * costs the same in the 10th and the 10,000th turn of a conversation. Read the newest turn, then
 * older ones while fewer than `maxTurns` were read and the content read so far is at most `maxBytes`
 * (UTF-8; so the turn that passes the cap is still read): no more could fit, since each kept turn
 * costs at least its bytes / 3 plus 4 tokens, and content is never empty (fit-context.ts estimates
 * tokens so). Report the earlier turns not read as fitContext's `olderTurnsNotLoaded`, so they are
 * counted as left out. context-budget.test.ts checks that such a load gives the same prompt.
 * @example historyLoadLimit(config.context, "gpt-4o-mini") // { maxTurns: 11980, maxBytes: 179712 } with the defaults
 */
export function historyLoadLimit(budget: ContextBudget, model: string): { maxTurns: number; maxBytes: number } {
  const tokens = promptBudgetTokens(budget, model);
  return {
    maxTurns: Math.floor(tokens / (overheadTokensPerMessage + 1)),
    maxBytes: tokens * bytesPerEstimatedToken,
  };
}
