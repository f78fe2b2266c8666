import type { ChatTurn } from "../llm/llm-provider.ts";

/**
 * Fitting a conversation's history into a model's context window (README "Long conversations").
 *
 * Tokens are estimated, not counted: no tokenizer fits every provider (OpenAI, Anthropic and local
 * models each have their own), and the good ones weigh megabytes. The estimate is cheap (one
 * UTF-8 length per message) and errs high, since a request over the window is refused outright
 * while a few turns fewer is barely noticed:
 * - ceil(UTF-8 bytes / 3) per message: BPE tokenizers average about 4 bytes a token in English
 *   prose (so English is over-counted by about a third) and about 3 in code; a CJK character is 3
 *   bytes and about one token; Cyrillic and Greek are 2 bytes a letter, several letters a token.
 * - plus 4 per message: the chat format's role and delimiters (OpenAI documents 3 to 4).
 */
export const bytesPerEstimatedToken = 3;
export const overheadTokensPerMessage = 4;

/** Estimated tokens of one message. */
export function estimateTokens(content: string): number {
  return Math.ceil(Buffer.byteLength(content, "utf8") / bytesPerEstimatedToken) + overheadTokensPerMessage;
}

export interface HistoryTurnInput {
  role: "user" | "assistant";
  content: string;
}

export interface FitContextInput {
  /** The owner's system prompt; always kept. */
  systemPrompt: string | null | undefined;
  /** Earlier turns, oldest first; the last is the user's new message. */
  history: readonly HistoryTurnInput[];
  /** Tokens the prompt may take: the model's context budget less the reply's reserve (context-budget.ts). */
  budgetTokens: number;
  /**
   * Text the provider adds after the history: a crashed reply continued as a trailing assistant
   * turn (PROTOCOL.md 4.3). Always sent, so it is counted like the system prompt.
   */
  continueFrom?: string;
  /**
   * Earlier turns the history load did not read (it stops at context-budget.ts `historyLoadLimit`).
   * They count as left out, and the kept history then never begins with a reply, whose question may
   * be among them.
   */
  olderTurnsNotLoaded?: number;
}

export type FitContextResult =
  | {
      fits: true;
      /** The system prompt (when set), then the newest turns that fit, oldest first. */
      turns: ChatTurn[];
      /** Estimated tokens of `turns` (and of `continueFrom`). */
      tokens: number;
      /** Turns of the history not sent, with those not loaded. */
      leftOutTurns: number;
    }
  | {
      /** Even the system prompt and the newest user message alone are over the budget. */
      fits: false;
      /** What the smallest prompt would take, and the budget it missed. */
      tokens: number;
      budgetTokens: number;
    };

/**
 * The prompt for a generation within `budgetTokens`: the system prompt, then the longest suffix of
 * the history that fits, so the model loses the oldest turns first. A trimmed history never begins
 * with an assistant turn: a reply without its question misleads the model, and Anthropic refuses
 * a conversation that starts with one. The newest user message is never dropped: when it does not
 * fit with the system prompt, the result says so (`fits: false`) and the generation fails with
 * CONTEXT_TOO_LONG rather than answer a question it never saw.
 *
 * One pass over the turns it is given, so its cost is that of the history load, which the
 * repository bounds (context-budget.ts `historyLoadLimit`).
 * @example fitContext({ systemPrompt: "Be brief.", history, budgetTokens: 60_000 })
 */
export function fitContext(input: FitContextInput): FitContextResult {
  const { history, budgetTokens } = input;
  const systemTokens = input.systemPrompt ? estimateTokens(input.systemPrompt) : 0;
  const continueTokens = input.continueFrom ? estimateTokens(input.continueFrom) : 0;
  let used = systemTokens + continueTokens;
  // Walk back from the newest turn while each still fits.
  let start = history.length;
  const newest = history.at(-1);
  if (newest !== undefined) {
    used += estimateTokens(newest.content);
    if (used > budgetTokens) return { fits: false, tokens: used, budgetTokens };
    start -= 1;
  }
  while (start > 0) {
    const turnTokens = estimateTokens(history[start - 1]?.content ?? "");
    if (used + turnTokens > budgetTokens) break;
    used += turnTokens;
    start -= 1;
  }
  // Something was left out: drop leading assistant turns (their question went), never the newest turn.
  // A history that begins with an assistant turn (a /v1 client's greeting) is sent as it is when whole.
  const notLoaded = input.olderTurnsNotLoaded ?? 0;
  while ((start > 0 || notLoaded > 0) && start < history.length - 1 && history[start]?.role === "assistant") {
    used -= estimateTokens(history[start]?.content ?? "");
    start += 1;
  }
  return {
    fits: true,
    turns: [
      ...(input.systemPrompt ? [{ role: "system" as const, content: input.systemPrompt }] : []),
      ...history.slice(start).map((turn) => ({ role: turn.role, content: turn.content })),
    ],
    tokens: used,
    leftOutTurns: start + notLoaded,
  };
}
