/** Seeded inputs for the fault and chaos tests, so a failing run can be replayed from its seed. */

/** A deterministic PRNG (mulberry32). */
export { seededRandom } from "../../src/llm/simulated-text.ts";

const vocabulary = ["alpha", "beta", "gamma", "délta", "ε", "日本語", "naïve", "—", "line\nbreak", "quote\"d", "tab\there", "emoji🙂", "x"];

/** An `echo:` prompt (the simulated model replies with exactly the text after it) and that text. */
export function echoPrompt(random: () => number, words: number): { prompt: string; expected: string } {
  const parts: string[] = [];
  for (let index = 0; index < words; index += 1) parts.push(vocabulary[Math.floor(random() * vocabulary.length)] ?? "x");
  const expected = parts.join(" ");
  return { prompt: `echo:${expected}`, expected };
}

/** The number of runs: SLUICE_CHAOS_RUNS in `npm run test:chaos`, `fallback` in `npm test`. */
export function chaosRuns(fallback: number): number {
  const value = Number(process.env.SLUICE_CHAOS_RUNS);
  return Number.isInteger(value) && value > 0 ? value : fallback;
}

export function chaosSeed(): number {
  const value = Number(process.env.SLUICE_CHAOS_SEED);
  return Number.isInteger(value) ? value : 20_240_601;
}
