import { describe, expect, it } from "vitest";
import { createMemoryViewer, interpret } from "../../test/support/streaming/memory-viewer.ts";
import { createStreamingRig } from "../../test/support/streaming/streaming-rig.ts";
import { systemClock } from "../time/clock.ts";
import { createManualClock } from "../time/manual-clock.ts";
import type { StreamHub } from "./stream-hub.ts";
import type { Cursor } from "./cursor.ts";
import { noopStreamMetrics } from "./stream-metrics.ts";
import type { StreamLog } from "./stream-log.ts";

/** A rig whose hub reads the log through a wrapper that records each read's `afterSeq`. */
function rigCountingReads(readPageSize?: number) {
  const reads: number[] = [];
  const inner: { log?: StreamLog } = {};
  const rig = createStreamingRig({
    ...(readPageSize === undefined ? {} : { log: { readPageSize } }),
    hub: {
      log: {
        keys: (taskId) => inner.log!.keys(taskId),
        read: (taskId, afterSeq, limit) => {
          reads.push(afterSeq);
          return inner.log!.read(taskId, afterSeq, limit);
        },
      },
    },
  });
  inner.log = rig.log;
  return { ...rig, reads };
}

async function attach(hub: StreamHub, taskId: string, after?: Cursor) {
  const viewer = createMemoryViewer();
  const opened = await hub.open({ taskId, after, sink: viewer.sink });
  if (opened.status !== "ready") throw new Error("expected a ready viewer");
  opened.viewer.start();
  return Object.assign(viewer, { handle: opened.viewer, view: () => interpret(viewer.parser.events) });
}

describe("stream hub", () => {
  it("delivers a live stream to several viewers over one subscription, then releases it", async () => {
    const { hub, log, redis } = createStreamingRig();
    const { attempt } = await log.beginAttempt("t");
    const viewers = await Promise.all([attach(hub, "t"), attach(hub, "t"), attach(hub, "t")]);
    expect(hub.stats()).toMatchObject({ streams: 1, viewers: 3, channels: 1 });
    expect(await redis.call("PUBSUB", "NUMSUB", log.keys("t").notify)).toEqual([log.keys("t").notify, 1]);
    await log.append("t", attempt, [{ type: "text-delta", delta: "Hello" }]);
    await log.append("t", attempt, [{ type: "text-delta", delta: " world" }]);
    await log.end("t", attempt, { status: "completed", messageId: "m" });
    for (const viewer of viewers) {
      await expect.poll(() => viewer.ended).toBe(true);
      expect(viewer.view()).toMatchObject({ text: "Hello world", seqs: [1, 2, 3, 4], ends: 1 });
    }
    expect(hub.stats()).toEqual({ streams: 0, viewers: 0, channels: 0, timers: 0 });
    await expect.poll(async () => await redis.call("PUBSUB", "NUMSUB", log.keys("t").notify)).toEqual([log.keys("t").notify, 0]);
  });

  it("measures flush-to-SSE latency from the writer's stamp, for live appends only", async () => {
    const observed: number[] = [];
    const { hub, log } = createStreamingRig({
      log: { clock: createManualClock(0, { wallClockStartMs: 1_000_000 }) },
      hub: { clock: { ...systemClock, wallClockMs: () => 1_000_003.25 }, metrics: { ...noopStreamMetrics, flushToSse: (milliseconds) => observed.push(milliseconds) } },
    });
    const { attempt } = await log.beginAttempt("t");
    await log.append("t", attempt, [{ type: "text-delta", delta: "replayed" }]);
    const viewer = await attach(hub, "t");
    await expect.poll(() => viewer.view().seqs).toEqual([1, 2]);
    await log.append("t", attempt, [{ type: "text-delta", delta: " live" }, { type: "text-delta", delta: "!" }]);
    await log.append("t", attempt, [{ type: "text-delta", delta: " again" }]);
    await log.end("t", attempt, { status: "completed" });
    await expect.poll(() => viewer.ended).toBe(true);
    expect(viewer.view().text).toBe("replayed live! again");
    // One observation per live flush (not per entry, not for the replay, not for `end`, which carries no stamp).
    expect(observed).toEqual([3.25, 3.25]);
  });

  it("works the same with sharded pub/sub (SPUBLISH / SSUBSCRIBE, for Redis Cluster)", async () => {
    const { hub, log, redis } = createStreamingRig({ log: { publishMode: "spublish" }, hub: { subscribeMode: "ssubscribe" } });
    const { attempt } = await log.beginAttempt("t");
    const viewer = await attach(hub, "t");
    expect(await redis.call("PUBSUB", "SHARDNUMSUB", log.keys("t").notify)).toEqual([log.keys("t").notify, 1]);
    await log.append("t", attempt, [{ type: "text-delta", delta: "sharded" }]);
    await log.end("t", attempt, { status: "completed" });
    await expect.poll(() => viewer.ended).toBe(true);
    expect(viewer.view()).toMatchObject({ text: "sharded", seqs: [1, 2, 3], ends: 1 });
    await expect.poll(async () => await redis.call("PUBSUB", "SHARDNUMSUB", log.keys("t").notify)).toEqual([log.keys("t").notify, 0]);
  });

  it("replays to a late joiner and resumes a cursor with exactly what follows it", async () => {
    const { hub, log } = createStreamingRig();
    const { attempt, incarnation } = await log.beginAttempt("t");
    for (const delta of ["a", "b", "c", "d"]) await log.append("t", attempt, [{ type: "text-delta", delta }]);
    const late = await attach(hub, "t");
    const resumed = await attach(hub, "t", { incarnation, seq: 3 });
    await expect.poll(() => late.view().seqs).toEqual([1, 2, 3, 4, 5]);
    await expect.poll(() => resumed.view().seqs).toEqual([4, 5]);
    await log.append("t", attempt, [{ type: "text-delta", delta: "e" }]);
    await log.end("t", attempt, { status: "completed" });
    await expect.poll(() => late.ended && resumed.ended).toBe(true);
    expect(late.view()).toMatchObject({ text: "abcde", seqs: [1, 2, 3, 4, 5, 6, 7] });
    expect(resumed.view()).toMatchObject({ text: "cde", seqs: [4, 5, 6, 7] });
  });

  it("opens a stream with one log read, which is also its first viewer's replay", async () => {
    const { hub, log, reads } = rigCountingReads();
    const { attempt, incarnation } = await log.beginAttempt("t");
    for (const delta of ["a", "b", "c"]) await log.append("t", attempt, [{ type: "text-delta", delta }]);
    const late = await attach(hub, "t");
    await expect.poll(() => late.view().seqs).toEqual([1, 2, 3, 4]);
    expect(reads).toEqual([0]);
    await log.append("t", attempt, [{ type: "text-delta", delta: "d" }]);
    await log.end("t", attempt, { status: "completed" });
    await expect.poll(() => late.ended).toBe(true);
    expect(late.view()).toMatchObject({ text: "abcd", seqs: [1, 2, 3, 4, 5, 6], ends: 1 });
    expect(reads).toEqual([0]);

    // A resumer opening the stream again reads from its own cursor, once, and gets exactly what follows it.
    const resumed = await attach(hub, "t", { incarnation, seq: 4 });
    await expect.poll(() => resumed.ended).toBe(true);
    expect(resumed.view()).toMatchObject({ text: "d", seqs: [5, 6], ends: 1 });
    expect(reads).toEqual([0, 4]);
  });

  it("opens a stream longer than a page at its head, and replays it page by page to its first viewer", async () => {
    const { hub, log, reads } = rigCountingReads(2);
    const { attempt, incarnation } = await log.beginAttempt("t");
    for (const delta of ["a", "b", "c", "d", "e"]) await log.append("t", attempt, [{ type: "text-delta", delta }]);
    const resumed = await attach(hub, "t", { incarnation, seq: 1 });
    await expect.poll(() => resumed.view().seqs).toEqual([2, 3, 4, 5, 6]);
    expect(reads).toEqual([1, 1, 3, 5]);
    await log.append("t", attempt, [{ type: "text-delta", delta: "f" }]);
    await log.end("t", attempt, { status: "completed" });
    await expect.poll(() => resumed.ended).toBe(true);
    expect(resumed.view()).toMatchObject({ text: "abcdef", seqs: [2, 3, 4, 5, 6, 7, 8], ends: 1 });
  });

  it("opens a stream for a cursor of another incarnation with a reset and the whole log", async () => {
    const { hub, log, reads } = rigCountingReads();
    const { attempt } = await log.beginAttempt("t");
    await log.append("t", attempt, [{ type: "text-delta", delta: "new" }]);
    const stale = await attach(hub, "t", { incarnation: "old", seq: 7 });
    await expect.poll(() => stale.view().types).toEqual(["reset", "start", "text-delta"]);
    expect(reads[0]).toBe(7);
    await log.end("t", attempt, { status: "completed" });
    await expect.poll(() => stale.ended).toBe(true);
    expect(stale.view()).toMatchObject({ text: "new", ends: 1 });
  });

  it("answers finished for a cursor at the end, and replays an ended stream to others", async () => {
    const { hub, log } = createStreamingRig();
    const { attempt } = await log.beginAttempt("t");
    const end = await log.end("t", attempt, { status: "cancelled" });
    const viewer = createMemoryViewer();
    expect(await hub.open({ taskId: "t", after: { incarnation: end.incarnation, seq: end.seq }, sink: viewer.sink })).toEqual({ status: "finished" });
    const again = await attach(hub, "t", { incarnation: end.incarnation, seq: 1 });
    await expect.poll(() => again.ended).toBe(true);
    expect(again.view().types).toEqual(["end"]);
    expect(hub.stats().streams).toBe(0);
  });

  it("rejects or waits for a missing log as told", async () => {
    const { hub, log } = createStreamingRig();
    const sink = createMemoryViewer().sink;
    await expect(hub.open({ taskId: "gone", whenMissing: "STREAM_EXPIRED", sink })).rejects.toMatchObject({ code: "STREAM_EXPIRED", status: 410 });
    await expect(hub.open({ taskId: "gone", whenMissing: "STREAM_NOT_FOUND", sink })).rejects.toMatchObject({ code: "STREAM_NOT_FOUND" });
    expect(hub.stats()).toMatchObject({ streams: 0, viewers: 0 });
    const early = await attach(hub, "queued");
    const { attempt } = await log.beginAttempt("queued");
    await log.append("queued", attempt, [{ type: "text-delta", delta: "first" }]);
    await log.end("queued", attempt, { status: "completed" });
    await expect.poll(() => early.ended).toBe(true);
    expect(early.view()).toMatchObject({ text: "first", seqs: [1, 2, 3] });
  });

  it("sends a reset before replaying when the cursor is of another incarnation or past the log", async () => {
    const { hub, log } = createStreamingRig();
    const { attempt, incarnation } = await log.beginAttempt("t");
    await log.append("t", attempt, [{ type: "text-delta", delta: "new log" }]);
    for (const after of [{ incarnation: "0ldl0g", seq: 7 }, { incarnation, seq: 99 }]) {
      const viewer = await attach(hub, "t", after);
      await expect.poll(() => viewer.view().seqs).toEqual([0, 1, 2]);
      const [reset] = viewer.parser.events;
      expect(reset).toMatchObject({ id: `${incarnation}-0`, event: "reset" });
      expect(JSON.parse(reset?.data ?? "")).toEqual({ type: "reset", attempt: 1, reason: "log-replaced" });
      expect(viewer.view().text).toBe("new log");
      viewer.handle.close();
    }
  });

  it("shows a retry as a reset entry of the same log", async () => {
    const { hub, log } = createStreamingRig();
    await log.beginAttempt("t");
    await log.append("t", 1, [{ type: "text-delta", delta: "lost attempt" }]);
    const viewer = await attach(hub, "t");
    await log.beginAttempt("t");
    await log.append("t", 2, [{ type: "text-delta", delta: "final" }]);
    await log.end("t", 2, { status: "completed" });
    await expect.poll(() => viewer.ended).toBe(true);
    expect(viewer.view()).toMatchObject({ text: "final", types: ["start", "text-delta", "reset", "text-delta", "end"] });
  });

  it("stops writing to a full socket, catches it up on drain, and closes it with a retry hint past the limit", async () => {
    const clock = createManualClock();
    const { hub, log } = createStreamingRig({ hub: { clock, slowConsumerTimeoutMs: 1_000, retryMs: 500, retryJitterMs: 0 } });
    const { attempt } = await log.beginAttempt("t");
    const slow = await attach(hub, "t");
    const fast = await attach(hub, "t");
    await expect.poll(() => slow.view().seqs).toEqual([1]);
    slow.full = true;
    await log.append("t", attempt, [{ type: "text-delta", delta: "a" }]);
    await expect.poll(() => slow.writes.length).toBe(2); // the write that filled it
    for (const delta of ["b", "c"]) await log.append("t", attempt, [{ type: "text-delta", delta }]);
    await expect.poll(() => fast.view().seqs).toEqual([1, 2, 3, 4]);
    expect(slow.writes).toHaveLength(2);
    slow.full = false;
    slow.handle.resume();
    await expect.poll(() => slow.view()).toMatchObject({ seqs: [1, 2, 3, 4], text: "abc" });

    slow.full = true;
    await log.append("t", attempt, [{ type: "text-delta", delta: "d" }]);
    await expect.poll(() => slow.view().seqs.at(-1)).toBe(5);
    expect(hub.stats().timers).toBeGreaterThanOrEqual(1);
    clock.advance(1_000);
    expect(slow.ended).toBe(true);
    expect(slow.parser.retries.at(-1)).toBe(500);
    expect(fast.ended).toBe(false);
  });

  it("closes every viewer with a retry hint on shutdown", async () => {
    const { hub, log } = createStreamingRig({ hub: { retryJitterMs: 0 } });
    await log.beginAttempt("t");
    const viewers = [await attach(hub, "t"), await attach(hub, "u")];
    await hub.close({ retryMs: 1234 });
    for (const viewer of viewers) {
      expect(viewer.ended).toBe(true);
      expect(viewer.parser.retries).toEqual([1234]);
    }
    expect(hub.stats()).toEqual({ streams: 0, viewers: 0, channels: 0, timers: 0 });
    await expect(hub.open({ taskId: "t", sink: createMemoryViewer().sink })).rejects.toMatchObject({ code: "SERVICE_UNAVAILABLE" });
  });
});
