import { describe, expect, it } from "vitest";
import { SluiceError } from "../errors/catalog.ts";
import { createManualClock } from "../time/manual-clock.ts";
import { connectTestRedis, uniqueKeyPrefix } from "../../test/support/servers/redis.ts";
import type { ContentEvent, EndOutcome } from "./events.ts";
import type { EndResult, StreamLog } from "./stream-log.ts";
import { createStreamLog } from "./stream-log.ts";
import { createStreamWriter } from "./stream-writer.ts";

type Call = { kind: "append"; events: ContentEvent[] } | { kind: "end"; outcome: EndOutcome };

/** A log whose appends complete only when the test says so, to control what is in flight. */
function scriptedLog() {
  const calls: Call[] = [];
  const settlers: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
  const log: Pick<StreamLog, "append" | "end"> = {
    append: async (_taskId, _attempt, events) => {
      calls.push({ kind: "append", events: events.map((event) => ({ ...event })) });
      await new Promise<void>((resolve, reject) => settlers.push({ resolve, reject }));
      return { firstSeq: 0, lastSeq: 0 };
    },
    end: (_taskId, _attempt, outcome) => {
      calls.push({ kind: "end", outcome });
      const result: EndResult = { seq: 0, incarnation: "i", cursor: "i-0", event: { type: "end", status: outcome.status }, alreadyEnded: false };
      return Promise.resolve(result);
    },
  };
  const settle = async (error?: unknown): Promise<void> => {
    const next = settlers.shift();
    if (!next) throw new Error("no append in flight");
    if (error === undefined) next.resolve();
    else next.reject(error);
    // Let the writer's continuation run.
    for (let index = 0; index < 5; index += 1) await Promise.resolve();
  };
  const texts = () => calls.map((call) => (call.kind === "append" ? call.events.map((event) => ("delta" in event ? event.delta : event.type)) : [`end:${call.outcome.status}`]));
  return { log, calls, settle, texts, inFlight: () => settlers.length };
}

function setup(options: { windowMs?: number | (() => number); maxBytes?: number } = {}) {
  const clock = createManualClock(1_000);
  const scripted = scriptedLog();
  const writer = createStreamWriter({
    log: scripted.log,
    taskId: "t",
    attempt: 1,
    clock,
    coalesceWindowMs: options.windowMs ?? 16,
    coalesceMaxBytes: options.maxBytes ?? 4096,
  });
  return { clock, writer, ...scripted };
}

describe("stream writer coalescing", () => {
  it("reads a window given as a function at each decision (the load-adaptive window)", async () => {
    let windowMs = 16;
    const { writer, clock, settle, texts } = setup({ windowMs: () => windowMs });
    writer.appendText("a");
    await settle();
    // 50 ms later, past a 16 ms window: out at once, alone.
    clock.advance(50);
    writer.appendText("b");
    expect(texts()).toEqual([["a"], ["b"]]);
    await settle();
    // The process fell behind: the window widened to 100 ms, so the next token waits and merges.
    windowMs = 100;
    clock.advance(50);
    writer.appendText("c");
    expect(texts()).toEqual([["a"], ["b"]]);
    clock.advance(40);
    writer.appendText("d");
    expect(texts()).toEqual([["a"], ["b"]]);
    clock.advance(10);
    expect(texts()).toEqual([["a"], ["b"], ["cd"]]);
    await settle();
  });

  it("sends the first token at once, then coalesces within the window", async () => {
    const { writer, clock, settle, texts } = setup();
    writer.appendText("Hel");
    expect(texts()).toEqual([["Hel"]]);
    await settle();
    clock.advance(5);
    writer.appendText("lo");
    writer.appendText(", ");
    clock.advance(10);
    expect(texts()).toHaveLength(1);
    clock.advance(1); // 16 ms after the first flush
    expect(texts()).toEqual([["Hel"], ["lo, "]]);
    await settle();
    // A token after a quiet period (> window since the last flush) is immediate again.
    clock.advance(100);
    writer.appendText("world");
    expect(texts().at(-1)).toEqual(["world"]);
    await settle();
  });

  it("flushes early when the size cap is reached, cutting events at the cap", async () => {
    const { writer, clock, settle, texts } = setup({ maxBytes: 10 });
    writer.appendText("a");
    await settle();
    clock.advance(1);
    writer.appendText("bbbbbb");
    expect(texts()).toHaveLength(1);
    writer.appendText("cccccc"); // 12 bytes pending ≥ 10: no wait for the window
    expect(texts()).toEqual([["a"], ["bbbbbb", "cccccc"]]);
    await settle();
  });

  it("keeps one append in flight; text arriving meanwhile goes in the next one", async () => {
    const { writer, clock, settle, texts, inFlight } = setup();
    writer.appendText("1");
    clock.advance(40); // the append is slow: the window has long passed
    writer.appendText("2");
    writer.appendText("3");
    expect(inFlight()).toBe(1);
    expect(texts()).toEqual([["1"]]);
    await settle();
    expect(texts()).toEqual([["1"], ["23"]]);
    expect(inFlight()).toBe(1);
    await settle();
  });

  it("sends a non-text event right after the pending text, in order", async () => {
    const { writer, settle, texts } = setup();
    writer.appendText("x");
    writer.appendText("y");
    writer.appendReasoning("r");
    writer.append({ type: "usage", inputTokens: 1, outputTokens: 2 });
    await settle();
    expect(texts()).toEqual([["x"], ["y", "r", "usage"]]);
    await settle();
  });

  it("flushes pending text before the end, and leaves no timer behind", async () => {
    const { writer, clock, settle, texts, calls } = setup();
    writer.appendText("a");
    await settle();
    writer.appendText("b");
    expect(clock.pendingTimers()).toBe(1);
    const ending = writer.end({ status: "completed", messageId: "m" });
    await settle();
    await ending;
    expect(texts()).toEqual([["a"], ["b"], ["end:completed"]]);
    expect(calls.at(-1)).toEqual({ kind: "end", outcome: { status: "completed", messageId: "m" } });
    expect(clock.pendingTimers()).toBe(0);
    expect(() => writer.appendText("late")).toThrow(/ended/);
  });

  it("flushes what it has before a failed end (the provider errored mid-stream)", async () => {
    const { writer, settle, texts } = setup();
    writer.appendText("partial");
    await settle();
    writer.appendText(" answer");
    const ending = writer.end({ status: "failed", error: { code: "PROVIDER_ERROR", message: "boom" } });
    await settle();
    await ending;
    expect(texts()).toEqual([["partial"], [" answer"], ["end:failed"]]);
  });
});

describe("stream writer failures", () => {
  it("surfaces a stale-attempt rejection as a SluiceError on the next call, aborts its signal, and refuses to end", async () => {
    const { writer, settle } = setup();
    writer.appendText("a");
    await settle(new SluiceError("STALE_ATTEMPT"));
    expect(writer.signal.aborted).toBe(true);
    expect(() => writer.appendText("b")).toThrow(expect.objectContaining({ code: "STALE_ATTEMPT" }));
    await expect(writer.flush()).rejects.toMatchObject({ code: "STALE_ATTEMPT" });
    await expect(writer.end({ status: "failed", error: { code: "INTERNAL", message: "x" } })).rejects.toMatchObject({ code: "STALE_ATTEMPT" });
  });

  it("after a cap rejection refuses a completed end but writes a failed one", async () => {
    const { writer, settle, texts } = setup();
    writer.appendText("a");
    await settle(new SluiceError("STREAM_TOO_LARGE"));
    await expect(writer.end({ status: "completed" })).rejects.toMatchObject({ code: "STREAM_TOO_LARGE" });
    await writer.end({ status: "failed", error: { code: "STREAM_TOO_LARGE", message: "limit" } });
    expect(texts().at(-1)).toEqual(["end:failed"]);
  });

  it("wraps a Redis error as SERVICE_UNAVAILABLE", async () => {
    const { writer, settle } = setup();
    writer.appendText("a");
    await settle(new Error("connection lost"));
    expect(writer.failure).toMatchObject({ code: "SERVICE_UNAVAILABLE" });
  });
});

describe("stream writer on the real log", () => {
  it("writes coalesced text that reads back equal, then exactly one end", async () => {
    const log = createStreamLog({ redis: connectTestRedis(), keyPrefix: uniqueKeyPrefix("writer") });
    const { attempt } = await log.beginAttempt("t");
    const writer = createStreamWriter({ log, taskId: "t", attempt });
    const tokens = Array.from({ length: 300 }, (_, index) => `tok${index} `);
    for (const [index, token] of tokens.entries()) {
      writer.appendText(token);
      if (index % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await writer.end({ status: "completed" });
    const page = await log.read("t", 0, 10_000);
    const text = page?.entries.map((entry) => (entry.event.type === "text-delta" ? entry.event.delta : "")).join("");
    expect(text).toBe(tokens.join(""));
    expect(page?.entries.length).toBeLessThan(tokens.length);
    expect(page?.entries.filter((entry) => entry.event.type === "end")).toHaveLength(1);
  });

  it("knows the log's last seq once flushed (what the final save records), with startSeq", async () => {
    const log = createStreamLog({ redis: connectTestRedis(), keyPrefix: uniqueKeyPrefix("writer-seq") });
    const started = await log.beginAttempt("t");
    const writer = createStreamWriter({ log, taskId: "t", attempt: started.attempt, startSeq: started.seq });
    expect(writer.lastSeq).toBe(started.seq);
    for (let index = 0; index < 20; index += 1) {
      writer.appendText(`tok${index} `);
      if (index % 5 === 0) await writer.flush();
    }
    writer.append({ type: "usage", inputTokens: 1, outputTokens: 20 });
    await writer.flush();
    expect(writer.lastSeq).toBe((await log.inspect("t"))?.lastSeq);
    expect(createStreamWriter({ log, taskId: "t", attempt: started.attempt }).lastSeq).toBeUndefined();
  });
});
