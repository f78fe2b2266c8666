import type { ChatTurn } from "./llm-provider.ts";

/**
 * The simulated model's words: a pure function of the conversation, so the
 * same conversation always gets the same reply (tests and benchmarks rely on it).
 */
const vocabulary = [
  "stream", "token", "durable", "resume", "cursor", "worker", "queue", "replay", "chunk", "signal",
  "latency", "sequence", "reply", "model", "client", "server", "message", "event", "ordered", "quiet",
  "river", "lantern", "harbor", "meadow", "copper", "violet", "granite", "willow", "ember", "summit",
  "the", "a", "of", "and", "to", "with", "across", "every", "after", "before",
  "steady", "bright", "patient", "careful", "simple", "honest", "gentle", "rapid", "calm", "clear",
  "builds", "carries", "keeps", "finds", "writes", "reads", "holds", "sends", "waits", "returns",
  "again", "today",
] as const;

/** 32-bit FNV-1a over the turns; a separator keeps ["ab","c"] apart from ["a","bc"]. */
export function hashConversation(messages: readonly ChatTurn[]): number {
  let hash = 0x811c9dc5;
  for (const turn of messages) {
    const text = `${turn.role}\u0000${turn.content}\u0001`;
    for (let index = 0; index < text.length; index++) {
      hash ^= text.charCodeAt(index);
      hash = Math.imul(hash, 0x01000193);
    }
  }
  return hash >>> 0;
}

/** mulberry32: tiny, fast, deterministic; picks words here and seeds the test rigs' runs. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `count` words for the conversation, sentence-cased with full stops. Each
 * entry is one token without its leading separator; the caller joins with " ".
 */
export function simulatedWords(messages: readonly ChatTurn[], count: number): string[] {
  const random = seededRandom(hashConversation(messages));
  const words: string[] = [];
  let sentenceLength = 0;
  let sentenceTarget = 6 + Math.floor(random() * 10);
  for (let index = 0; index < count; index++) {
    let word: string = vocabulary[Math.floor(random() * vocabulary.length)] ?? "stream";
    if (sentenceLength === 0) word = word.charAt(0).toUpperCase() + word.slice(1);
    sentenceLength++;
    if (sentenceLength >= sentenceTarget || index === count - 1) {
      word += ".";
      sentenceLength = 0;
      sentenceTarget = 6 + Math.floor(random() * 10);
    }
    words.push(word);
  }
  return words;
}

/** Splits echo text into small tokens of up to `size` code points (never splitting a surrogate pair). */
export function splitIntoSmallTokens(text: string, size = 4): string[] {
  const codePoints = Array.from(text);
  const tokens: string[] = [];
  for (let index = 0; index < codePoints.length; index += size) {
    tokens.push(codePoints.slice(index, index + size).join(""));
  }
  return tokens;
}
