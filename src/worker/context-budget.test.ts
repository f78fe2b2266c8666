import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { historyLoadLimit, promptBudgetTokens, type ContextBudget } from "./context-budget.ts";
import { fitContext, type HistoryTurnInput } from "./fit-context.ts";

const budget: ContextBudget = { defaultBudgetTokens: 64_000, budgetByModel: new Map([["small", 8192]]), reservedOutputTokens: 4096 };

/**
 * What a history load bounded by `historyLoadLimit` returns (the rule the repository's query
 * follows): the newest turn always, then older ones while fewer than `maxTurns` were read and the
 * bytes read so far are at most `maxBytes` (the turn that passes the cap is still read).
 */
function loadNewest(history: readonly HistoryTurnInput[], limit: { maxTurns: number; maxBytes: number }): HistoryTurnInput[] {
  let count = 0;
  let bytes = 0;
  for (let index = history.length - 1; index >= 0; index -= 1) {
    if (count > 0 && (count >= limit.maxTurns || bytes > limit.maxBytes)) break;
    count += 1;
    bytes += Buffer.byteLength(history[index]?.content ?? "");
  }
  return history.slice(history.length - count);
}

describe("the context budget", () => {
  it("gives each model its budget less the reply's reserve", () => {
    expect(promptBudgetTokens(budget, "small")).toBe(8192 - 4096);
    expect(promptBudgetTokens(budget, "any-other")).toBe(64_000 - 4096);
    expect(promptBudgetTokens(budget, "constructor")).toBe(64_000 - 4096);
    expect(historyLoadLimit(budget, "gpt-4o-mini")).toEqual({ maxTurns: 11_980, maxBytes: 179_712 });
    expect(historyLoadLimit(budget, "small")).toEqual({ maxTurns: 819, maxBytes: 12_288 });
  });

  it("a history load bounded by historyLoadLimit gives the same prompt as the whole history, and the same count of turns left out", () => {
    const small: ContextBudget = { defaultBudgetTokens: 1_500, budgetByModel: new Map(), reservedOutputTokens: 1_000 };
    // Short turns (many fit: the turn cap matters), longer ones (the byte cap matters), and now and
    // then one over the whole budget.
    const unit = fc.constantFrom("a", "é", "中", "😀");
    const content = fc.oneof(
      { arbitrary: fc.string({ minLength: 1, maxLength: 3, unit }), weight: 3 },
      { arbitrary: fc.string({ minLength: 1, maxLength: 80, unit }), weight: 6 },
      { arbitrary: fc.string({ minLength: 400, maxLength: 700, unit }), weight: 1 },
    );
    const short = fc.string({ minLength: 1, maxLength: 2, unit: fc.constantFrom("a", "é") });
    const conversation = (text: fc.Arbitrary<string>) => {
      const turn = (role: "user" | "assistant") => text.map((value) => ({ role, content: value }));
      // Either role at each place (a failed reply is not in the history, so runs of one role happen).
      return fc.array(fc.oneof(turn("user"), turn("assistant")), { minLength: 0, maxLength: 250, size: "max" }).chain((older) => turn("user").map((newest) => [...older, newest]));
    };
    const scenario = fc.record({
      // Mixed turns, or only one- and two-byte ones, where the turn cap is what stops the load.
      history: fc.oneof(conversation(content), conversation(short)),
      systemPrompt: fc.option(fc.string({ minLength: 1, maxLength: 300 }), { nil: undefined }),
    });
    fc.assert(
      fc.property(scenario, ({ history, systemPrompt }) => {
        const budgetTokens = promptBudgetTokens(small, "m");
        const loaded = loadNewest(history, historyLoadLimit(small, "m"));
        const whole = fitContext({ systemPrompt, history, budgetTokens });
        const bounded = fitContext({ systemPrompt, history: loaded, budgetTokens, olderTurnsNotLoaded: history.length - loaded.length });
        if (!whole.fits) {
          expect(bounded).toEqual(whole);
          return;
        }
        expect(bounded).toMatchObject({ fits: true, turns: whole.turns, tokens: whole.tokens, leftOutTurns: whole.leftOutTurns });
      }),
      { numRuns: 500 },
    );
  });
});
