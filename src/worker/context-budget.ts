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
 * costs the same in the 10th and the 10,000th turn of a conversation. Read the newest turns first
 * and stop after `maxTurns` rows or once their content passes `maxBytes` (UTF-8): no more could fit,
 * since each kept turn costs at least its bytes / 3 plus 4 tokens, and content is never empty
 * (fit-context.ts estimates tokens so).
 * @example historyLoadLimit(config.context, "gpt-4o-mini") // { maxTurns: 11980, maxBytes: 179712 } with the defaults
 */
export function historyLoadLimit(budget: ContextBudget, model: string): { maxTurns: number; maxBytes: number } {
  const tokens = promptBudgetTokens(budget, model);
  return {
    maxTurns: Math.floor(tokens / (overheadTokensPerMessage + 1)),
    maxBytes: tokens * bytesPerEstimatedToken,
  };
}
