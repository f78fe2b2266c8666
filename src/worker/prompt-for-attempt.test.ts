import pino from "pino";
import { describe, expect, it } from "vitest";
import type { ContextBudget } from "./context-budget.ts";
import { promptForAttempt } from "./prompt-for-attempt.ts";

/** A logger that keeps its lines, and counters that keep their totals. */
function observed() {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const totals = { turnsLeftOut: 0, trimmed: 0 };
  const metrics = {
    providerTimeToFirstToken: { observe: () => undefined },
    chunksWritten: { inc: () => undefined },
    bytesWritten: { inc: () => undefined },
    generations: { inc: () => undefined },
    contextTurnsLeftOut: { inc: (value = 1) => void (totals.turnsLeftOut += value) },
    contextTrimmed: { inc: () => void (totals.trimmed += 1) },
  };
  return { lines, log, totals, metrics };
}

// 2048 - 1000: 1048 prompt tokens. Each turn below is 300 bytes: 104 tokens.
const budget: ContextBudget = { defaultBudgetTokens: 2048, budgetByModel: new Map([["roomy", 100_000]]), reservedOutputTokens: 1000 };
const history = Array.from({ length: 40 }, (_, index) => ({ role: index % 2 === 0 ? ("user" as const) : ("assistant" as const), content: String(index).padEnd(300, ".") }));
history.push({ role: "user", content: "and now?" });

describe("promptForAttempt", () => {
  it("logs and counts the turns it left out to fit the model's budget", () => {
    const { lines, log, totals, metrics } = observed();
    const prompt = promptForAttempt({ systemPrompt: "Be brief.", history, model: "gpt-fake", continueFrom: undefined, context: budget, log, metrics });
    // 1048 - 7 (system) - 7 (question) = 1034: room for 9 turns of 104; the 9th from the end is a reply, so 8.
    expect(prompt).toEqual({ turns: [{ role: "system", content: "Be brief." }, ...history.slice(-9)] });
    expect(lines).toEqual([expect.objectContaining({ msg: "history trimmed to the model's context budget", contextTurnsLeftOut: 32, contextTurnsSent: 9, contextTokens: 7 + 7 + 8 * 104, contextBudgetTokens: 1048 })]);
    expect(totals).toEqual({ turnsLeftOut: 32, trimmed: 1 });
  });

  it("says nothing when the whole history fits the model's own budget", () => {
    const { lines, log, totals, metrics } = observed();
    const prompt = promptForAttempt({ systemPrompt: null, history, model: "roomy", continueFrom: undefined, context: budget, log, metrics });
    expect(prompt).toEqual({ turns: history });
    expect(lines).toEqual([]);
    expect(totals).toEqual({ turnsLeftOut: 0, trimmed: 0 });
  });

  it("fails with CONTEXT_TOO_LONG when the newest message cannot fit, counting nothing as left out", () => {
    const { lines, log, totals, metrics } = observed();
    const prompt = promptForAttempt({ systemPrompt: null, history: [{ role: "user", content: "x".repeat(3_200) }], model: "gpt-fake", continueFrom: undefined, context: budget, log, metrics });
    expect(prompt).toMatchObject({ failure: { code: "CONTEXT_TOO_LONG" } });
    expect("failure" in prompt && prompt.failure.message).toMatch(/about 1071 tokens; the model's context leaves 1048/);
    expect(lines).toEqual([expect.objectContaining({ level: 40, contextTokens: 1071, contextBudgetTokens: 1048 })]);
    expect(totals).toEqual({ turnsLeftOut: 0, trimmed: 0 });
  });
});
