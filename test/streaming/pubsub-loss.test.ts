/**
 * Pub/sub is an optimisation, the log is the truth (PROTOCOL.md 8.5): viewers
 * get every entry even when the subscriber connection is killed mid-stream or
 * a notification never arrives.
 */
import { describe, expect, it } from "vitest";
import { createStreamHub, type StreamHub } from "../../src/streaming/stream-hub.ts";
import type { GapReason, StreamMetrics } from "../../src/streaming/stream-metrics.ts";
import { createStreamWriter } from "../../src/streaming/stream-writer.ts";
import { lossySubscriber } from "../support/streaming/lossy-subscriber.ts";
import { createMemoryViewer, interpret, type MemoryViewer } from "../support/streaming/memory-viewer.ts";
import { clientsNamed, createStreamingRig } from "../support/streaming/streaming-rig.ts";

function countingMetrics(): StreamMetrics & { gaps: Record<GapReason, number> } {
  const gaps: Record<GapReason, number> = { "seq-gap": 0, reconnect: 0, stall: 0, "log-replaced": 0 };
  return {
    gaps,
    viewers: () => undefined,
    replayed: () => undefined,
    resumed: () => undefined,
    gapRecovered: (reason, entries) => {
      gaps[reason] += entries;
    },
    slowConsumer: () => undefined,
    deliveryLatency: () => undefined,
    flushToSse: () => undefined,
  };
}

async function attachMany(hub: StreamHub, taskId: string, count: number): Promise<MemoryViewer[]> {
  return await Promise.all(
    Array.from({ length: count }, async () => {
      const viewer = createMemoryViewer();
      const opened = await hub.open({ taskId, sink: viewer.sink });
      if (opened.status !== "ready") throw new Error("not ready");
      opened.viewer.start();
      return viewer;
    }),
  );
}

const sleep = async (milliseconds: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, milliseconds));

describe("lost notifications", () => {
  it("catches every stream up from the log when the subscriber connection is killed mid-stream", async () => {
    const metrics = countingMetrics();
    // A stall timeout far beyond the test: only the reconnect path can recover.
    const rig = createStreamingRig({ hub: { stallTimeoutMs: 60_000, metrics } });
    const tasks = ["a", "b", "c"];
    const expected = new Map<string, string>();
    const writers = new Map<string, ReturnType<typeof createStreamWriter>>();
    for (const taskId of tasks) {
      const { attempt } = await rig.log.beginAttempt(taskId);
      writers.set(taskId, createStreamWriter({ log: rig.log, taskId, attempt, coalesceWindowMs: 2 }));
      expected.set(taskId, "");
    }
    const viewers = new Map(await Promise.all(tasks.map(async (taskId) => [taskId, await attachMany(rig.hub, taskId, 5)] as const)));
    const write = async (rounds: number): Promise<void> => {
      for (let round = 0; round < rounds; round += 1) {
        for (const taskId of tasks) {
          const token = `${taskId}${round} `;
          writers.get(taskId)?.appendText(token);
          expected.set(taskId, `${expected.get(taskId) ?? ""}${token}`);
        }
        await sleep(1);
      }
      await Promise.all([...writers.values()].map(async (writer) => await writer.flush()));
    };

    await write(20);
    for (let kill = 0; kill < 2; kill += 1) {
      const [subscriberClient] = await clientsNamed(rig.redis, `${rig.name}:subscriber`);
      expect(subscriberClient?.sub).toBe(String(tasks.length));
      await rig.redis.call("CLIENT", "KILL", "TYPE", "pubsub", "ID", subscriberClient?.id ?? "");
      // Published while the subscriber is gone: these notifications are lost for good.
      await write(20);
      await expect.poll(async () => (await clientsNamed(rig.redis, `${rig.name}:subscriber`))[0]?.sub, { timeout: 5_000 }).toBe(String(tasks.length));
      await write(5);
    }
    for (const [taskId, writer] of writers) {
      await writer.end({ status: "completed" });
      for (const viewer of viewers.get(taskId) ?? []) {
        await expect.poll(() => viewer.ended, { timeout: 5_000 }).toBe(true);
        const view = interpret(viewer.parser.events);
        expect(view.text).toBe(expected.get(taskId));
        expect(view.ends).toBe(1);
        expect(view.seqs).toEqual(view.seqs.map((_, index) => index + 1));
      }
    }
    expect(metrics.gaps.reconnect).toBeGreaterThan(0);
  });

  it("recovers a notification lost in the middle from the next one's sequence gap", async () => {
    const metrics = countingMetrics();
    const rig = createStreamingRig();
    const subscriber = lossySubscriber(rig.subscriber);
    // A stall timeout far beyond the test: only the sequence gap can recover "two".
    const hub = createStreamHub({ log: rig.log, subscriber, stallTimeoutMs: 60_000, metrics });
    try {
      const { attempt } = await rig.log.beginAttempt("t");
      const [viewer] = await attachMany(hub, "t", 1);
      if (!viewer) throw new Error("no viewer");
      await rig.log.append("t", attempt, [{ type: "text-delta", delta: "one " }]);
      subscriber.dropNext();
      await rig.log.append("t", attempt, [{ type: "text-delta", delta: "two " }]);
      await rig.log.append("t", attempt, [{ type: "text-delta", delta: "three" }]);
      await expect.poll(() => interpret(viewer.parser.events).text).toBe("one two three");
      await rig.log.end("t", attempt, { status: "completed" });
      await expect.poll(() => viewer.ended).toBe(true);
      expect(subscriber.dropped()).toBe(1);
      expect(metrics.gaps["seq-gap"]).toBeGreaterThanOrEqual(1);
      expect(metrics.gaps.stall).toBe(0);
      expect(interpret(viewer.parser.events)).toMatchObject({ text: "one two three", ends: 1, seqs: [1, 2, 3, 4, 5] });
    } finally {
      await hub.close();
    }
  });

  it("finds an end whose notification never arrives with a stall read", async () => {
    const metrics = countingMetrics();
    const rig = createStreamingRig();
    const subscriber = lossySubscriber(rig.subscriber);
    const hub = createStreamHub({ log: rig.log, subscriber, stallTimeoutMs: 200, metrics });
    try {
      const { attempt } = await rig.log.beginAttempt("t");
      const [viewer] = await attachMany(hub, "t", 1);
      if (!viewer) throw new Error("no viewer");
      await rig.log.append("t", attempt, [{ type: "text-delta", delta: "one" }]);
      await expect.poll(() => interpret(viewer.parser.events).text).toBe("one");
      // The end's notification is lost and nothing follows it: only a stall read can find it.
      // Stall reads before it find nothing new and count nothing.
      subscriber.dropWhen((message) => message.includes('"type":"end"'));
      await rig.log.end("t", attempt, { status: "completed" });
      await expect.poll(() => viewer.ended, { timeout: 3_000 }).toBe(true);
      expect(subscriber.dropped()).toBe(1);
      expect(metrics.gaps.stall).toBe(1); // exactly the end entry, found by a stall read
      expect(metrics.gaps["seq-gap"]).toBe(0);
      expect(interpret(viewer.parser.events)).toMatchObject({ text: "one", ends: 1, seqs: [1, 2, 3] });
    } finally {
      await hub.close();
    }
  });

  it("finds the start of a generation whose first notification was lost while viewers waited", async () => {
    const rig = createStreamingRig();
    const subscriber = lossySubscriber(rig.subscriber);
    const hub = createStreamHub({ log: rig.log, subscriber, stallTimeoutMs: 200 });
    try {
      const [viewer] = await attachMany(hub, "queued", 1);
      subscriber.dropNext();
      const { attempt } = await rig.log.beginAttempt("queued");
      await expect.poll(() => viewer?.parser.events.length, { timeout: 3_000 }).toBe(1);
      await rig.log.end("queued", attempt, { status: "completed" });
      await expect.poll(() => viewer?.ended).toBe(true);
      expect(interpret(viewer?.parser.events ?? []).types).toEqual(["start", "end"]);
    } finally {
      await hub.close();
    }
  });
});
