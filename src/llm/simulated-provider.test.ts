import { describe, expect, it } from "vitest";
import type { ChatRequest, LlmProvider, ProviderEvent } from "./llm-provider.ts";
import { createManualClock, type ManualClock } from "../time/manual-clock.ts";
import { createSimulatedProvider, simulatedReplyText } from "./simulated-provider.ts";
import { monotonicMicros, parseTokenStamps } from "./token-stamp.ts";

const conversation: ChatRequest = {
  model: "simulated",
  messages: [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Tell me about streams." },
  ],
};

async function collect(provider: LlmProvider, request: ChatRequest, signal = new AbortController().signal) {
  const events: ProviderEvent[] = [];
  for await (const event of provider.stream(request, signal)) events.push(event);
  const text = events.flatMap((event) => (event.type === "text-delta" ? [event.delta] : [])).join("");
  return { events, text };
}

/** Drives a paced provider on a manual clock, one interval at a time, and records each delta. */
async function collectPaced(provider: LlmProvider, request: ChatRequest, clock: ManualClock, stepMs: number) {
  const deltas: string[] = [];
  const iterator = provider.stream(request, new AbortController().signal)[Symbol.asyncIterator]();
  for (let step = 0; step < 100_000; step++) {
    let settled = false;
    const next = iterator.next().finally(() => (settled = true));
    while (!settled) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (!settled && clock.pendingTimers() > 0) clock.advance(stepMs);
    }
    const result = await next;
    if (result.done === true) return deltas;
    if (result.value.type === "text-delta") deltas.push(result.value.delta);
  }
  throw new Error("stream did not end");
}

const unpaced = (tokenCount: number, stampTokens = false) =>
  createSimulatedProvider({ tokensPerSecond: Number.POSITIVE_INFINITY, tokenCount, stampTokens });

describe("simulated provider", () => {
  it("replies deterministically: same conversation same text, another conversation other text", async () => {
    const first = await collect(unpaced(60), conversation);
    const again = await collect(unpaced(60), conversation);
    const other = await collect(unpaced(60), { ...conversation, messages: [{ role: "user", content: "Something else" }] });
    expect(first.text).toBe(again.text);
    expect(first.text).not.toBe(other.text);
    expect(first.text.split(" ")).toHaveLength(60);
    expect(first.text).toBe(simulatedReplyText(conversation, 60));
    expect(first.events.at(-2)).toEqual({ type: "usage", inputTokens: expect.any(Number) as number, outputTokens: 60 });
    expect(first.events.at(-1)).toEqual({ type: "finish", reason: "stop" });
    expect(first.events.filter((event) => event.type === "finish")).toHaveLength(1);
  });

  it("echoes the last user message verbatim in small tokens", async () => {
    const payload = ` <img src=x onerror="alert('xss')"> 🚀 naïve\n\n**bold**`;
    const request: ChatRequest = {
      model: "simulated",
      messages: [
        { role: "user", content: "echo:ignored earlier turn" },
        { role: "assistant", content: "ok" },
        { role: "user", content: `echo:${payload}` },
      ],
    };
    const clock = createManualClock();
    const provider = createSimulatedProvider({ tokensPerSecond: 10, tokenCount: 5, stampTokens: true, clock });
    const deltas = await collectPaced(provider, request, clock, 100);
    expect(deltas.join("")).toBe(payload);
    expect(deltas.length).toBe(Math.ceil(Array.from(payload).length / 4));
    expect(Math.max(...deltas.map((delta) => Array.from(delta).length))).toBeLessThanOrEqual(4);
  });

  it("caps the reply at maxOutputTokens with finish reason length", async () => {
    const { events, text } = await collect(unpaced(50), { ...conversation, maxOutputTokens: 10 });
    expect(text.split(" ")).toHaveLength(10);
    expect(events.at(-1)).toEqual({ type: "finish", reason: "length" });
  });

  it("stamps every word with its CLOCK_MONOTONIC emit time when asked", async () => {
    const before = monotonicMicros();
    const { text } = await collect(unpaced(25, true), conversation);
    const after = monotonicMicros();
    const stamps = parseTokenStamps(text);
    expect(stamps).toHaveLength(25);
    const plainWords = simulatedReplyText(conversation, 25).split(" ");
    expect(stamps.map((stamp) => stamp.word)).toEqual(plainWords);
    for (const stamp of stamps) {
      expect(stamp.emittedAtMicros).toBeGreaterThanOrEqual(before);
      expect(stamp.emittedAtMicros).toBeLessThanOrEqual(after);
    }
  });

  it("paces tokens by tokensPerSecond on its clock, batching tokens that are already due", async () => {
    const clock = createManualClock();
    const provider = createSimulatedProvider({ tokensPerSecond: 10, tokenCount: 20, clock });
    const iterator = provider.stream(conversation, new AbortController().signal)[Symbol.asyncIterator]();
    const words = simulatedReplyText(conversation, 20).split(" ");

    // The first token is due at once, the next 100 ms later.
    expect(await iterator.next()).toEqual({ done: false, value: { type: "text-delta", delta: words[0] } });
    const second = iterator.next();
    await clock.waitForTimers(1);
    clock.advance(99);
    expect(clock.pendingTimers()).toBe(1);
    clock.advance(1);
    expect(await second).toEqual({ done: false, value: { type: "text-delta", delta: ` ${words[1]}` } });

    // A stalled loop: 500 ms pass before the next wake; the five due tokens come as one delta.
    const third = iterator.next();
    await clock.waitForTimers(1);
    clock.advance(500);
    expect(await third).toEqual({ done: false, value: { type: "text-delta", delta: ` ${words.slice(2, 7).join(" ")}` } });
    // One timer per stream, never one per token.
    const fourth = iterator.next();
    await clock.waitForTimers(1);
    expect(clock.pendingTimers()).toBe(1);
    clock.advance(100_000);
    expect(await fourth).toEqual({ done: false, value: { type: "text-delta", delta: ` ${words.slice(7).join(" ")}` } });
    expect((await iterator.next()).value).toMatchObject({ type: "usage", outputTokens: 20 });
    expect((await iterator.next()).value).toEqual({ type: "finish", reason: "stop" });
    expect((await iterator.next()).done).toBe(true);
  });

  it("splits a long catch-up into deltas the log accepts: a 1 s stall at 40,000 tokens/s is not one 1 MB delta", async () => {
    // The stream log refuses an event over 256 KiB of JSON (PROTOCOL.md 6, EVENT_TOO_LARGE), and the writer
    // never cuts a delta; a stalled worker loop must not turn a paced reply into a failed one.
    const clock = createManualClock();
    const provider = createSimulatedProvider({ tokensPerSecond: 40_000, tokenCount: 50_000, stampTokens: true, clock });
    const iterator = provider.stream(conversation, new AbortController().signal)[Symbol.asyncIterator]();
    const first = await iterator.next();
    const pending = iterator.next();
    await clock.waitForTimers(1);
    clock.advance(1_000);
    const texts: string[] = [];
    let words = 0;
    const take = (result: IteratorResult<ProviderEvent>): void => {
      if (result.done === true || result.value.type !== "text-delta") throw new Error("the reply ended early");
      texts.push(result.value.delta);
      words += parseTokenStamps(result.value.delta).length;
    };
    // The first word, then everything due after the stall (40,000 more) with no timer in between.
    take(first);
    take(await pending);
    while (words < 40_001) {
      expect(clock.pendingTimers()).toBe(0);
      take(await iterator.next());
    }
    expect(words).toBe(40_001);
    expect(Math.max(...texts.map((text) => Buffer.byteLength(JSON.stringify({ type: "text-delta", delta: text }))))).toBeLessThan(64 * 1024);
  });

  it("stops at once with aborted when the signal aborts mid-reply, releasing its timer", async () => {
    const clock = createManualClock();
    const provider = createSimulatedProvider({ tokensPerSecond: 1, tokenCount: 100, clock });
    const controller = new AbortController();
    const iterator = provider.stream(conversation, controller.signal)[Symbol.asyncIterator]();
    await iterator.next();
    const pending = iterator.next();
    await clock.waitForTimers(1);
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: "ProviderError", kind: "aborted", retryable: false });
    expect(clock.pendingTimers()).toBe(0);
  });

  it("refuses to start on an already aborted signal", async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(collect(unpaced(5), conversation, controller.signal)).rejects.toMatchObject({ kind: "aborted" });
  });
});
