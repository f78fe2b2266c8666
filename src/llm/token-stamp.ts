/**
 * Latency stamps the simulated model can put in front of each word:
 * `⟨<microseconds of CLOCK_MONOTONIC>⟩word`. CLOCK_MONOTONIC (process.hrtime)
 * is shared by all processes on one Linux machine, so a benchmark client in
 * another process subtracts the stamp from its own `monotonicMicros()` on
 * receipt to get end-to-end token latency.
 */
export interface TokenStamp {
  /** Emit time in microseconds of process.hrtime.bigint(). */
  emittedAtMicros: number;
  /** The word that followed the stamp (up to the next whitespace or stamp). */
  word: string;
}

/** Microseconds of CLOCK_MONOTONIC; comparable across processes on the same machine. */
export function monotonicMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export function formatTokenStamp(emittedAtMicros: number): string {
  return `⟨${emittedAtMicros}⟩`;
}

const stampPattern = /⟨(\d+)⟩([^\s⟨]*)/g;

/**
 * Every stamp in `text`, in order; text without stamps gives [].
 *
 * @example parseTokenStamps("⟨12⟩Hello ⟨15⟩world") // [{ emittedAtMicros: 12, word: "Hello" }, { emittedAtMicros: 15, word: "world" }]
 */
export function parseTokenStamps(text: string): TokenStamp[] {
  const stamps: TokenStamp[] = [];
  for (const match of text.matchAll(stampPattern)) {
    stamps.push({ emittedAtMicros: Number(match[1]), word: match[2] ?? "" });
  }
  return stamps;
}
