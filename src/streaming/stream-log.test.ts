import { describe, expect, it } from "vitest";
import { isSluiceError } from "../errors/catalog.ts";
import { connectTestRedis, uniqueKeyPrefix } from "../../test/support/servers/redis.ts";
import { createManualClock } from "../time/manual-clock.ts";
import { createStreamLog, type StreamLogOptions } from "./stream-log.ts";

function setup(overrides: Partial<StreamLogOptions> = {}) {
  const redis = connectTestRedis();
  const keyPrefix = uniqueKeyPrefix("log");
  const log = createStreamLog({ redis, keyPrefix, ttlSeconds: 120, ...overrides });
  return { redis, log, keyPrefix };
}

async function rejection(promise: Promise<unknown>): Promise<{ code: string; details: unknown }> {
  try {
    await promise;
  } catch (error) {
    if (isSluiceError(error)) return { code: error.code, details: error.details };
    throw error;
  }
  throw new Error("expected a rejection");
}

describe("stream log", () => {
  it("a recreated log can begin above a minimum attempt, so fencing never goes backwards", async () => {
    const { log, redis } = setup();
    const first = await log.beginAttempt("t-lost");
    expect(first).toMatchObject({ attempt: 1, created: true });
    expect(await log.beginAttempt("t-lost")).toMatchObject({ attempt: 2, created: false });
    // Redis loses the log (restart without persistence): the next begin creates it anew.
    const keys = log.keys("t-lost");
    await redis.del(keys.log, keys.meta);
    const recreated = await log.beginAttempt("t-lost", { minAttempt: 3 });
    expect(recreated).toMatchObject({ attempt: 3, seq: 1, created: true });
    expect(recreated.incarnation).not.toBe(first.incarnation);
    expect((await log.read("t-lost", 0))?.entries[0]?.event).toMatchObject({ type: "reset", attempt: 3 });
    expect((await rejection(log.append("t-lost", 2, [{ type: "text-delta", delta: "stale" }]))).code).toBe("STALE_ATTEMPT");
  });

  it("a retry that continues begins with `continue` instead of `reset`, fenced the same; a created log never continues", async () => {
    const { log, redis } = setup();
    await log.beginAttempt("t-cont", { continueReply: true });
    const appended = await log.append("t-cont", 1, [{ type: "text-delta", delta: "Hello" }]);
    const continued = await log.beginAttempt("t-cont", { model: "m", continueReply: true });
    expect(continued).toMatchObject({ attempt: 2, seq: appended.lastSeq + 1, continued: true });
    expect((await log.read("t-cont", appended.lastSeq))?.entries[0]?.event).toEqual({ type: "continue", attempt: 2, model: "m" });
    // The old attempt is fenced exactly as by a reset.
    expect((await rejection(log.append("t-cont", 1, [{ type: "text-delta", delta: "zombie" }]))).code).toBe("STALE_ATTEMPT");
    expect(await log.beginAttempt("t-cont")).toMatchObject({ attempt: 3, continued: false });
    expect((await log.read("t-cont", continued.seq))?.entries[0]?.event).toMatchObject({ type: "reset", attempt: 3, reason: "retry" });
    // A log lost and recreated has no reply to continue.
    const keys = log.keys("t-cont");
    await redis.del(keys.log, keys.meta);
    const recreated = await log.beginAttempt("t-cont", { minAttempt: 4, continueReply: true });
    expect(recreated).toMatchObject({ attempt: 4, created: true, continued: false });
    expect((await log.read("t-cont", 0))?.entries[0]?.event).toMatchObject({ type: "reset", attempt: 4 });
  });

  it("makes an append with an expected seq idempotent: a re-sent append writes nothing twice", async () => {
    const { log } = setup();
    const begun = await log.beginAttempt("t-idem");
    const first = [{ type: "text-delta" as const, delta: "one" }, { type: "text-delta" as const, delta: " two" }];
    expect(await log.append("t-idem", 1, first, begun.seq + 1)).toEqual({ firstSeq: 2, lastSeq: 3 });
    // The same append again (its reply was lost and the client re-sent it): acknowledged, not written.
    expect(await log.append("t-idem", 1, first, begun.seq + 1)).toEqual({ firstSeq: 2, lastSeq: 3 });
    expect(await log.append("t-idem", 1, [{ type: "text-delta", delta: " three" }], 4)).toEqual({ firstSeq: 4, lastSeq: 4 });
    // A writer that skipped ahead is refused rather than leaving a hole.
    expect((await rejection(log.append("t-idem", 1, [{ type: "text-delta", delta: "x" }], 9))).code).toBe("STALE_ATTEMPT");
    const page = await log.read("t-idem", 1);
    expect(page?.entries.map((entry) => entry.event)).toEqual([
      { type: "text-delta", delta: "one" },
      { type: "text-delta", delta: " two" },
      { type: "text-delta", delta: " three" },
    ]);
  });

  it("cuts a read page at its byte budget, never below one entry, and the pages still join up to the whole log", async () => {
    const { log } = setup({ readPageBytes: 10_000 });
    const started = await log.beginAttempt("t");
    const deltas = Array.from({ length: 9 }, (_, index) => `${index}`.repeat(4_000));
    for (const delta of deltas) await log.append("t", started.attempt, [{ type: "text-delta", delta }]);
    const first = await log.read("t", 0);
    // start (small) + two 4,000-byte deltas fit in 10,000 bytes; the third would pass it.
    expect(first?.entries.map((entry) => entry.seq)).toEqual([1, 2, 3]);
    let text = "";
    let pages = 0;
    for (let after = 0; ; pages += 1) {
      const page = await log.read("t", after);
      const last = page?.entries.at(-1);
      if (!page || !last) break;
      expect(page.entries.length).toBeLessThanOrEqual(3);
      for (const { event } of page.entries) if (event.type === "text-delta") text += event.delta;
      after = last.seq;
    }
    expect(text).toBe(deltas.join(""));
    expect(pages).toBeGreaterThanOrEqual(4);
    const { log: tiny } = setup({ readPageBytes: 10 });
    const tinyStarted = await tiny.beginAttempt("u");
    await tiny.append("u", tinyStarted.attempt, [{ type: "text-delta", delta: "x".repeat(4_000) }]);
    expect((await tiny.read("u", 1))?.entries.map((entry) => entry.seq)).toEqual([2]);
  });

  it("appends start, deltas and end with consecutive seqs from 1, readable by cursor", async () => {
    const { log } = setup();
    const begun = await log.beginAttempt("t1", { model: "m-1" });
    expect(begun).toMatchObject({ attempt: 1, seq: 1 });
    expect(begun.incarnation).toMatch(/^[0-9a-f]{12}$/);
    expect(await log.append("t1", 1, [{ type: "text-delta", delta: "Hel" }, { type: "text-delta", delta: "lo" }])).toEqual({ firstSeq: 2, lastSeq: 3 });
    const ended = await log.end("t1", 1, { status: "completed", messageId: "m-9" });
    expect(ended).toMatchObject({ seq: 4, alreadyEnded: false, cursor: `${begun.incarnation}-4` });

    const page = await log.read("t1", 0);
    expect(page?.entries).toEqual([
      { seq: 1, event: { type: "start", attempt: 1, model: "m-1" } },
      { seq: 2, event: { type: "text-delta", delta: "Hel" } },
      { seq: 3, event: { type: "text-delta", delta: "lo" } },
      { seq: 4, event: { type: "end", status: "completed", messageId: "m-9" } },
    ]);
    expect(page).toMatchObject({ state: "ended", lastSeq: 4, endSeq: 4, incarnation: begun.incarnation });
    expect((await log.read("t1", 2))?.entries.map((entry) => entry.seq)).toEqual([3, 4]);
    expect((await log.read("t1", 0, 2))?.entries.map((entry) => entry.seq)).toEqual([1, 2]);
    expect(await log.read("nothing", 0)).toBeUndefined();
    expect(await log.inspect("nothing")).toBeUndefined();
  });

  it("fences appends and ends by attempt: a stale attempt writes nothing", async () => {
    const { log } = setup();
    await log.beginAttempt("t");
    await log.append("t", 1, [{ type: "text-delta", delta: "old" }]);
    const second = await log.beginAttempt("t");
    expect(second).toMatchObject({ attempt: 2, seq: 3 });
    expect(await rejection(log.append("t", 1, [{ type: "text-delta", delta: "zombie" }]))).toMatchObject({
      code: "STALE_ATTEMPT",
      details: { currentAttempt: 2 },
    });
    expect((await rejection(log.end("t", 1, { status: "completed" }))).code).toBe("STALE_ATTEMPT");
    await log.append("t", 2, [{ type: "text-delta", delta: "new" }]);
    const page = await log.read("t", 0);
    expect(page?.entries.map((entry) => entry.event)).toEqual([
      { type: "start", attempt: 1 },
      { type: "text-delta", delta: "old" },
      { type: "reset", attempt: 2, reason: "retry" },
      { type: "text-delta", delta: "new" },
    ]);
    expect(page?.attempt).toBe(2);
  });

  it("rejects appends after the end and refuses a new attempt", async () => {
    const { log } = setup();
    await log.beginAttempt("t");
    await log.end("t", 1, { status: "cancelled" });
    expect((await rejection(log.append("t", 1, [{ type: "text-delta", delta: "late" }]))).code).toBe("STALE_ATTEMPT");
    expect((await rejection(log.beginAttempt("t"))).code).toBe("STALE_ATTEMPT");
    expect((await log.inspect("t"))?.lastSeq).toBe(2);
  });

  it("keeps a live log forever and starts the TTL at the end", async () => {
    const { log, redis } = setup({ ttlSeconds: 90 });
    const keys = log.keys("t");
    await log.beginAttempt("t");
    await log.append("t", 1, [{ type: "text-delta", delta: "x" }]);
    expect(await redis.pttl(keys.log)).toBe(-1);
    expect(await redis.pttl(keys.meta)).toBe(-1);
    await log.end("t", 1, { status: "completed" });
    for (const key of [keys.log, keys.meta]) {
      const ttl = await redis.ttl(key);
      expect(ttl).toBeGreaterThan(85);
      expect(ttl).toBeLessThanOrEqual(90);
    }
  });

  it("makes end idempotent: a second end writes nothing and reports the first", async () => {
    const { log } = setup();
    await log.beginAttempt("t");
    const first = await log.end("t", 1, { status: "completed", messageId: "a" });
    const again = await log.end("t", 1, { status: "failed", error: { code: "INTERNAL", message: "x" } });
    const forced = await log.forceEnd("t", { status: "failed", error: { code: "GENERATION_ORPHANED", message: "y" } });
    for (const result of [again, forced]) {
      expect(result).toEqual({ ...first, alreadyEnded: true });
    }
    expect((await log.read("t", 0))?.entries.filter((entry) => entry.event.type === "end")).toHaveLength(1);
  });

  it("forceEnd creates a missing log with just the end, with a TTL", async () => {
    const { log, redis } = setup();
    const result = await log.forceEnd("never-started", { status: "failed", error: { code: "WORKER_LOST", message: "gave up" } });
    expect(result).toMatchObject({ seq: 1, alreadyEnded: false, event: { type: "end", status: "failed", error: { code: "WORKER_LOST" } } });
    expect(await redis.ttl(log.keys("never-started").log)).toBeGreaterThan(0);
    expect((await rejection(log.beginAttempt("never-started"))).code).toBe("STALE_ATTEMPT");
  });

  it("enforces the caps atomically and still allows the end past them", async () => {
    const { log } = setup({ limits: { maxEntries: 4, maxBytes: 200, maxEventBytes: 60 } });
    await log.beginAttempt("t");
    expect((await rejection(log.append("t", 1, [{ type: "text-delta", delta: "x".repeat(60) }]))).code).toBe("EVENT_TOO_LARGE");
    await log.append("t", 1, [{ type: "text-delta", delta: "a" }]);
    // Three more would make five entries: nothing of the batch is written.
    const three = [1, 2, 3].map(() => ({ type: "text-delta" as const, delta: "b" }));
    expect((await rejection(log.append("t", 1, three))).code).toBe("STREAM_TOO_LARGE");
    expect((await log.inspect("t"))?.lastSeq).toBe(2);
    await log.append("t", 1, [{ type: "text-delta", delta: "c" }, { type: "text-delta", delta: "d" }]);
    expect((await rejection(log.append("t", 1, [{ type: "text-delta", delta: "e" }]))).code).toBe("STREAM_TOO_LARGE");
    const ended = await log.end("t", 1, { status: "failed", error: { code: "STREAM_TOO_LARGE", message: "limit" } });
    expect(ended.seq).toBe(5);
  });

  it("caps total bytes", async () => {
    const { log } = setup({ limits: { maxBytes: 150 } });
    await log.beginAttempt("t");
    await log.append("t", 1, [{ type: "text-delta", delta: "x".repeat(50) }]);
    expect((await rejection(log.append("t", 1, [{ type: "text-delta", delta: "y".repeat(50) }]))).code).toBe("STREAM_TOO_LARGE");
  });

  it("reports a lost log to a writer as STREAM_NOT_FOUND, and a new attempt gets a new incarnation", async () => {
    const { log, redis } = setup();
    const first = await log.beginAttempt("t");
    await redis.del(log.keys("t").log, log.keys("t").meta);
    expect((await rejection(log.append("t", 1, [{ type: "text-delta", delta: "x" }]))).code).toBe("STREAM_NOT_FOUND");
    expect((await rejection(log.end("t", 1, { status: "completed" }))).code).toBe("STREAM_NOT_FOUND");
    const again = await log.beginAttempt("t");
    expect(again.incarnation).not.toBe(first.incarnation);
    expect(again).toMatchObject({ attempt: 1, seq: 1 });
  });

  it("publishes each append with its entries and the writer's flush stamp on the stream's channel", async () => {
    const { log } = setup({ clock: createManualClock(0, { wallClockStartMs: 1_795_000_000_123.5 }) });
    const subscriber = connectTestRedis();
    const messages: string[] = [];
    subscriber.on("message", (_channel: string, message: string) => messages.push(message));
    await subscriber.subscribe(log.keys("t").notify);
    const { incarnation } = await log.beginAttempt("t");
    await log.append("t", 1, [{ type: "text-delta", delta: "a\nb" }, { type: "usage", inputTokens: 1, outputTokens: 2 }]);
    await log.end("t", 1, { status: "completed" });
    await expect.poll(() => messages.length).toBe(3);
    expect(messages[1]).toBe(`${incarnation} 2 1795000000123.500\n{"type":"text-delta","delta":"a\\nb"}\n{"type":"usage","inputTokens":1,"outputTokens":2}`);
    expect(messages[2]).toBe(`${incarnation} 4\n{"type":"end","status":"completed"}`);
  });

  it("works with sharded pub/sub (SPUBLISH)", async () => {
    const { log } = setup({ publishMode: "spublish" });
    const subscriber = connectTestRedis();
    const messages: string[] = [];
    subscriber.on("smessage", (_channel: string, message: string) => messages.push(message));
    await subscriber.ssubscribe(log.keys("t").notify);
    await log.beginAttempt("t");
    await expect.poll(() => messages.length).toBe(1);
  });

  it("expires a log (entries and meta) when told, live or ended, and removes one at once", async () => {
    const { log, redis } = setup();
    await log.beginAttempt("t");
    await log.expire("t", 60_000);
    for (const key of [log.keys("t").log, log.keys("t").meta]) {
      expect(await redis.pttl(key)).toBeGreaterThan(50_000);
      expect(await redis.pttl(key)).toBeLessThanOrEqual(60_000);
    }
    await log.remove("t");
    expect(await log.inspect("t")).toBeUndefined();
    expect(await redis.exists(log.keys("t").log)).toBe(0);
  });
});
