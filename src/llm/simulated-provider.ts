import { sleep, systemClock, type Clock } from "../time/clock.ts";
import type { ChatRequest, ChatTurn, LlmProvider, ProviderEvent } from "./llm-provider.ts";
import { ProviderError } from "./provider-error.ts";
import { simulatedWords, splitIntoSmallTokens } from "./simulated-text.ts";
import { formatTokenStamp, monotonicMicros } from "./token-stamp.ts";

export interface SimulatedProviderOptions {
  /** Pace of the reply; Infinity emits everything at once. */
  tokensPerSecond: number;
  /** Words per reply (echo replies ignore it). */
  tokenCount: number;
  /** Prefix every word with `⟨µs of CLOCK_MONOTONIC⟩` (see token-stamp.ts) for cross-process latency. */
  stampTokens?: boolean;
  clock?: Clock;
  /** Stamp time source; defaults to process.hrtime. */
  stampMicros?: () => number;
}

/**
 * Tokens already due go out in deltas of at most this many UTF-16 units (up to 48 KiB
 * of UTF-8), far under the stream log's 256 KiB per event (PROTOCOL.md 6): the
 * writer never cuts a delta, and at 40,000 tokens/s a 0.3 s stall of the event
 * loop would otherwise be one ~260 KiB delta that fails the reply with EVENT_TOO_LARGE.
 */
export const maxDeltaCharacters = 16_384;

/** `echo:<text>` as the last user message makes the reply exactly `<text>`. */
export const echoPrefix = "echo:";

/**
 * `think:` in front of the last user message (before `echo:`, if any) makes the model reason
 * first: `thinkingWordCount` words of `reasoning-delta`, paced like the reply, then the reply
 * to the rest of the message. The reasoning counts in the usage's output tokens.
 */
export const thinkPrefix = "think:";
export const thinkingWordCount = 40;

/**
 * The default provider and the benchmark load generator: a deterministic reply
 * paced by one timer per stream. When the event loop lags, the tokens that
 * are already due go out at once, in as few deltas as `maxDeltaCharacters`
 * allows, instead of one timer per token.
 */
export function createSimulatedProvider(options: SimulatedProviderOptions): LlmProvider {
  const clock = options.clock ?? systemClock;
  const stampMicros = options.stampMicros ?? monotonicMicros;
  if (!(options.tokensPerSecond > 0)) throw new RangeError("tokensPerSecond must be > 0");
  const intervalMs = 1000 / options.tokensPerSecond;
  return {
    name: "simulated",
    continuesReplies: true,
    stream: (request, signal) => simulatedEvents(request, signal),
  };

  async function* simulatedEvents(request: ChatRequest, signal: AbortSignal): AsyncGenerator<ProviderEvent> {
    throwIfAborted(signal);
    const plan = planReply(request, options);
    const startMs = clock.monotonicMs();
    // The reasoning's tokens come first on the same pace; `emitted` counts both.
    const thinking = plan.reasoning.length;
    const total = thinking + plan.tokens.length;
    let emitted = 0;
    while (emitted < total) {
      const due = intervalMs === 0 ? total : Math.min(total, Math.floor((clock.monotonicMs() - startMs) / intervalMs) + 1);
      if (due > emitted && emitted < thinking) {
        let delta = "";
        for (; emitted < Math.min(due, thinking) && delta.length < maxDeltaCharacters; emitted++) delta += plan.reasoning[emitted];
        yield { type: "reasoning-delta", delta };
        throwIfAborted(signal);
        continue;
      }
      if (due > emitted) {
        const stamp = plan.stamped ? formatTokenStamp(stampMicros()) : "";
        let delta = "";
        for (; emitted < due && delta.length < maxDeltaCharacters; emitted++) {
          const index = emitted - thinking;
          delta += plan.stamped ? `${index === 0 && !plan.continued ? "" : " "}${stamp}${plan.tokens[index]}` : plan.tokens[index];
        }
        yield { type: "text-delta", delta };
        throwIfAborted(signal);
        continue;
      }
      try {
        await sleep(clock, startMs + emitted * intervalMs - clock.monotonicMs(), signal);
      } catch (error) {
        throw new ProviderError("aborted", { message: "The request was aborted.", cause: error });
      }
    }
    yield { type: "usage", inputTokens: estimateInputTokens(request.messages), outputTokens: total };
    yield { type: "finish", reason: plan.finishReason };
  }
}

interface ReplyPlan {
  /** Reasoning tokens (separators included), sent before the reply; [] without `think:`. */
  reasoning: string[];
  /** Token texts as they appear in the reply (separators included) unless stamped. */
  tokens: string[];
  stamped: boolean;
  finishReason: string;
  /** The plan is the rest of a reply after `ChatRequest.continueFrom`. */
  continued: boolean;
}

function planReply(request: ChatRequest, options: SimulatedProviderOptions): ReplyPlan {
  const whole = planWholeReply(request, options);
  if (!request.continueFrom) return whole;
  // A continuation thinks no more (the kept reasoning stays) and sends only what follows the kept text.
  return { ...whole, reasoning: [], tokens: tokensAfter(whole.tokens, request.continueFrom, whole.stamped), continued: true };
}

/**
 * The tokens that follow `kept` in the reply: exactly its rest when `kept` is the reply's start (the
 * next token cut where `kept` ends); otherwise (stamped words carry their time) as many words fewer.
 */
function tokensAfter(tokens: readonly string[], kept: string, stamped: boolean): string[] {
  if (!stamped && tokens.join("").startsWith(kept)) {
    let length = 0;
    for (const [index, token] of tokens.entries()) {
      if (length + token.length > kept.length) return [token.slice(kept.length - length), ...tokens.slice(index + 1)];
      length += token.length;
    }
    return [];
  }
  return tokens.slice(kept.split(/\s+/u).filter(Boolean).length);
}

function planWholeReply(request: ChatRequest, options: SimulatedProviderOptions): ReplyPlan {
  const lastUser = request.messages.findLast((turn) => turn.role === "user");
  const thinks = lastUser?.content.startsWith(thinkPrefix) === true;
  const reasoning = thinks ? joinedWords(simulatedWords([...request.messages, { role: "system", content: thinkPrefix }], thinkingWordCount)) : [];
  const asked = thinks ? lastUser?.content.slice(thinkPrefix.length) : lastUser?.content;
  if (asked?.startsWith(echoPrefix)) {
    // Verbatim and unstamped: browser tests assert the exact text (e.g. an XSS payload).
    return { reasoning, tokens: splitIntoSmallTokens(asked.slice(echoPrefix.length)), stamped: false, finishReason: "stop", continued: false };
  }
  const limit = request.maxOutputTokens ?? Number.POSITIVE_INFINITY;
  const count = Math.max(0, Math.min(options.tokenCount, limit));
  const words = simulatedWords(request.messages, count);
  const stamped = options.stampTokens === true;
  return {
    reasoning,
    tokens: stamped ? words : joinedWords(words),
    stamped,
    finishReason: count < options.tokenCount ? "length" : "stop",
    continued: false,
  };
}

/** Words with their separators, as they appear in the text. */
function joinedWords(words: readonly string[]): string[] {
  return words.map((word, index) => (index === 0 ? word : ` ${word}`));
}

/** The simulated text for a conversation, unpaced and unstamped (what a finished reply contains). */
export function simulatedReplyText(request: ChatRequest, tokenCount: number): string {
  return planReply(request, { tokensPerSecond: 1, tokenCount }).tokens.join("");
}

/** The simulated reasoning for a conversation: "" unless its last user message starts with `think:`. */
export function simulatedReasoningText(request: ChatRequest): string {
  return planReply(request, { tokensPerSecond: 1, tokenCount: 0 }).reasoning.join("");
}

function estimateInputTokens(messages: readonly ChatTurn[]): number {
  // About four characters per token, as the vendors' rules of thumb say.
  return Math.ceil(messages.reduce((total, turn) => total + turn.content.length, 0) / 4);
}

function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new ProviderError("aborted", { message: "The request was aborted.", cause: signal.reason });
}
