import type { Logger } from "pino";
import type { ErrorCode } from "../errors/catalog.ts";
import type { ChatTurn } from "../llm/llm-provider.ts";
import { promptBudgetTokens, type ContextBudget } from "./context-budget.ts";
import { fitContext, type HistoryTurnInput } from "./fit-context.ts";
import type { GenerationMetrics } from "./generation-metrics.ts";

/**
 * The turns an attempt sends: the system prompt and the newest history within the model's context
 * budget (fit-context.ts). What was left out is logged (`contextTurnsLeftOut`) and counted
 * (sluice_context_turns_left_out_total, sluice_context_trimmed_total), per attempt. Without a budget (unit tests of other
 * behaviour) the whole history is sent. A newest message that cannot fit is a failure for good:
 * CONTEXT_TOO_LONG, before any provider call.
 */
export function promptForAttempt(options: {
  systemPrompt: string | null | undefined;
  history: readonly HistoryTurnInput[];
  model: string;
  /** The reply kept from a crashed attempt, which the provider sends after the history. */
  continueFrom: string | undefined;
  context: ContextBudget | undefined;
  /** Earlier turns the history load did not read, when the repository reports them (fit-context.ts). */
  olderTurnsNotLoaded?: number;
  log: Logger;
  metrics: GenerationMetrics | undefined;
}): { turns: ChatTurn[] } | { failure: { code: ErrorCode; message: string } } {
  const budgetTokens = options.context ? promptBudgetTokens(options.context, options.model) : Number.POSITIVE_INFINITY;
  const fitted = fitContext({
    systemPrompt: options.systemPrompt,
    history: options.history,
    budgetTokens,
    ...(options.continueFrom ? { continueFrom: options.continueFrom } : {}),
    ...(options.olderTurnsNotLoaded ? { olderTurnsNotLoaded: options.olderTurnsNotLoaded } : {}),
  });
  if (!fitted.fits) {
    options.log.warn({ contextTokens: fitted.tokens, contextBudgetTokens: fitted.budgetTokens }, "the newest message does not fit the model's context budget");
    return {
      failure: {
        code: "CONTEXT_TOO_LONG",
        message: `The message and the system prompt take about ${fitted.tokens} tokens; the model's context leaves ${fitted.budgetTokens} for them. Shorten them.`,
      },
    };
  }
  const { leftOutTurns } = fitted;
  if (leftOutTurns > 0) {
    options.metrics?.contextTurnsLeftOut?.inc(leftOutTurns);
    options.metrics?.contextTrimmed?.inc();
    options.log.info(
      { contextTurnsLeftOut: leftOutTurns, contextTurnsSent: fitted.turns.length - (options.systemPrompt ? 1 : 0), contextTokens: fitted.tokens, contextBudgetTokens: budgetTokens },
      "history trimmed to the model's context budget",
    );
  }
  return { turns: fitted.turns };
}
