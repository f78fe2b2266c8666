import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { estimateTokens, fitContext, type HistoryTurnInput } from "./fit-context.ts";

const sum = (values: readonly number[]): number => values.reduce((total, value) => total + value, 0);
const tokensOf = (turns: readonly HistoryTurnInput[]): number => sum(turns.map((turn) => estimateTokens(turn.content)));
/** A conversation of alternating turns, oldest first, ending with the user's new message. */
const alternating = (count: number, content: (index: number) => string): HistoryTurnInput[] =>
  Array.from({ length: count }, (_, index) => ({ role: (count - 1 - index) % 2 === 0 ? "user" : "assistant", content: content(index) }));

describe("estimateTokens", () => {
  it("counts UTF-8 bytes / 3, rounded up, plus 4 for the message's framing", () => {
    expect(estimateTokens("")).toBe(4);
    expect(estimateTokens("abc")).toBe(5);
    expect(estimateTokens("abcd")).toBe(6);
    // Two bytes a letter: Cyrillic is counted by its bytes, not its characters.
    expect(estimateTokens("да")).toBe(6);
    // A CJK character is 3 bytes: one token each, as modern tokenizers roughly give.
    expect(estimateTokens("长对话")).toBe(7);
    expect(estimateTokens("x".repeat(3000))).toBe(1004);
  });
});

describe("fitContext", () => {
  it("sends the whole history with the system prompt when it fits", () => {
    const history = alternating(5, (index) => `turn ${index}`);
    const result = fitContext({ systemPrompt: "Be brief.", history, budgetTokens: 1_000 });
    expect(result).toEqual({
      fits: true,
      turns: [{ role: "system", content: "Be brief." }, ...history],
      tokens: estimateTokens("Be brief.") + tokensOf(history),
      leftOutTurns: 0,
    });
  });

  it("keeps the system prompt and only the newest turns of a 1,000-turn conversation, and says how much it left out", () => {
    // Each turn: 96 bytes = 32 + 4 = 36 tokens. The system prompt: 30 bytes = 14 tokens.
    const history = alternating(1_000, (index) => `${String(index).padStart(4, "0")}:${"w".repeat(91)}`);
    const systemPrompt = "s".repeat(30);
    const result = fitContext({ systemPrompt, history, budgetTokens: 14 + 36 * 50 + 35 });
    if (!result.fits) throw new Error("expected the newest turns to fit");
    expect(result.turns[0]).toEqual({ role: "system", content: systemPrompt });
    // 50 turns fit; the 50th from the end is an assistant turn (its question was left out), so 49 go.
    expect(result.turns.slice(1)).toEqual(history.slice(-49));
    expect(result.turns[1]?.role).toBe("user");
    expect(result.tokens).toBe(14 + 36 * 49);
    expect(result.leftOutTurns).toBe(951);
  });

  it("never begins the kept history with an assistant turn", () => {
    const history: HistoryTurnInput[] = [
      { role: "user", content: "a long question ".repeat(20) },
      { role: "assistant", content: "short" },
      { role: "user", content: "next?" },
    ];
    // Room for the last two turns but not the first: the reply alone would be an orphan.
    const result = fitContext({ systemPrompt: null, history, budgetTokens: estimateTokens("short") + estimateTokens("next?") });
    expect(result).toMatchObject({ fits: true, turns: [{ role: "user", content: "next?" }], leftOutTurns: 2 });
  });

  it("refuses when the system prompt and the newest message alone are over the budget, rather than drop the message", () => {
    const history = alternating(3, () => "x".repeat(300));
    const result = fitContext({ systemPrompt: "y".repeat(300), history, budgetTokens: 200 });
    expect(result).toEqual({ fits: false, tokens: 104 + 104, budgetTokens: 200 });
  });

  it("counts a continued reply like the system prompt: it is always sent", () => {
    const history = alternating(3, () => "x".repeat(30));
    const without = fitContext({ systemPrompt: null, history, budgetTokens: 3 * 14 });
    const withKeptReply = fitContext({ systemPrompt: null, history, budgetTokens: 3 * 14, continueFrom: "z".repeat(30) });
    expect(without).toMatchObject({ fits: true, leftOutTurns: 0 });
    // 14 tokens of kept reply leave room for two turns, the first of which is an assistant's: one turn goes.
    expect(withKeptReply).toMatchObject({ fits: true, turns: [history[2]], tokens: 28, leftOutTurns: 2 });
  });

  it("counts earlier turns the load did not read as left out, and then never begins with a reply", () => {
    const history: HistoryTurnInput[] = [
      { role: "assistant", content: "an answer to a question that was not loaded" },
      { role: "user", content: "next?" },
    ];
    expect(fitContext({ systemPrompt: null, history, budgetTokens: 1_000, olderTurnsNotLoaded: 7 })).toMatchObject({
      fits: true,
      turns: [{ role: "user", content: "next?" }],
      leftOutTurns: 8,
    });
  });

  it("with no budget (unset), sends everything, even a history that begins with an assistant's greeting", () => {
    const history = alternating(1_000, () => "x".repeat(1_000));
    expect(fitContext({ systemPrompt: undefined, history, budgetTokens: Number.POSITIVE_INFINITY })).toMatchObject({ fits: true, turns: history, leftOutTurns: 0 });
  });

  it("for any history and budget: a suffix of the history after the system prompt, within the budget, with the newest message, never an orphan reply first, and no longer suffix would fit", () => {
    const turn = fc.record({
      role: fc.constantFrom("user" as const, "assistant" as const),
      content: fc.string({ minLength: 1, maxLength: 120, unit: fc.constantFrom("a", "é", "中", "😀", " ") }),
    });
    const scenario = fc.record({
      history: fc.array(turn, { minLength: 1, maxLength: 40, size: "max" }).map((turns) => [...turns.slice(0, -1), { ...turns.at(-1)!, role: "user" as const }]),
      systemPrompt: fc.option(fc.string({ minLength: 1, maxLength: 200 }), { nil: undefined }),
      continueFrom: fc.option(fc.string({ minLength: 1, maxLength: 100 }), { nil: undefined }),
      budgetTokens: fc.integer({ min: 1, max: 3_000 }),
    });
    fc.assert(
      fc.property(scenario, ({ history, systemPrompt, continueFrom, budgetTokens }) => {
        const fixed = (systemPrompt ? estimateTokens(systemPrompt) : 0) + (continueFrom ? estimateTokens(continueFrom) : 0);
        const result = fitContext({ systemPrompt, history, budgetTokens, ...(continueFrom ? { continueFrom } : {}) });
        const newest = history.at(-1)!;
        if (!result.fits) {
          expect(fixed + estimateTokens(newest.content)).toBeGreaterThan(budgetTokens);
          expect(result.tokens).toBe(fixed + estimateTokens(newest.content));
          return;
        }
        const system = systemPrompt ? [{ role: "system", content: systemPrompt }] : [];
        expect(result.turns.slice(0, system.length)).toEqual(system);
        const kept = result.turns.slice(system.length);
        expect(kept).toEqual(history.slice(history.length - kept.length));
        expect(kept.at(-1)).toEqual(newest);
        expect(result.tokens).toBe(fixed + tokensOf(history.slice(history.length - kept.length)));
        expect(result.tokens).toBeLessThanOrEqual(budgetTokens);
        const dropped = history.slice(0, history.length - kept.length);
        if (kept.length > 1 && dropped.length > 0) expect(kept[0]?.role).toBe("user");
        expect(result.leftOutTurns).toBe(dropped.length);
        // The newest turns: every longer suffix that begins with a user turn (or is the whole history) is over the budget.
        for (let length = kept.length + 1; length <= history.length; length += 1) {
          const suffix = history.slice(history.length - length);
          if (suffix[0]?.role === "user" || length === history.length) expect(fixed + tokensOf(suffix)).toBeGreaterThan(budgetTokens);
        }
      }),
      { numRuns: 500 },
    );
  });
});
