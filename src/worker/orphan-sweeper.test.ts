import pino from "pino";
import { describe, expect, it, onTestFinished } from "vitest";
import { connectTestRedis, uniqueKeyPrefix } from "../../test/support/servers/redis.ts";
import type { GenerationQueue } from "../queue/generation-queue.ts";
import type { FinalResult, MessagesRepository, TaskRecord } from "../storage/messages-repository.ts";
import { createStreamLog, type StreamLog, type StreamMeta } from "../streaming/index.ts";
import { createManualClock, type ManualClock } from "../time/manual-clock.ts";
import { createOrphanSweeper, endFailedGeneration } from "./orphan-sweeper.ts";

// Redis restarted empty: the task's job is gone ("unknown"). Whether to enqueue it again depends on
// whether a generation is still writing its log, which only the log's movement across sweeps shows.

const graceMs = 1_000;

function sweeperWith(meta: { current: StreamMeta | undefined }, clock: ManualClock) {
  const added: string[] = [];
  const task: TaskRecord & { taskId: string } = {
    taskId: "task_1", messageId: "m1", conversationId: "c1", userId: "u1", status: "streaming", attempt: 1, model: "sim", createdAt: new Date(0), updatedAt: new Date(0),
  };
  const queue: Partial<GenerationQueue> = {
    getJobState: () => Promise.resolve(added.length > 0 ? "waiting" : "unknown"),
    add: ((_name: string, data: { taskId: string }) => {
      added.push(data.taskId);
      return Promise.resolve(undefined);
    }) as unknown as GenerationQueue["add"],
  };
  const messages: Partial<MessagesRepository> = { staleActive: () => Promise.resolve([task]) };
  const streamLog: Partial<StreamLog> = { inspect: () => Promise.resolve(meta.current) };
  const sweeper = createOrphanSweeper({
    queue: queue as GenerationQueue, messages: messages as MessagesRepository, streamLog: streamLog as StreamLog,
    logger: pino({ level: "silent" }), intervalMs: 3_600_000, graceMs, clock,
  });
  return { sweeper, added };
}

const liveMeta = (lastSeq: number): StreamMeta => ({ incarnation: "abc", attempt: 2, lastSeq, bytes: 10, state: "live", endSeq: undefined });

describe("orphan sweeper, job vanished", () => {
  it("leaves a task alone while its log keeps moving (a generation is still running)", async () => {
    const meta = { current: liveMeta(3) };
    const clock = createManualClock(10_000);
    const { sweeper, added } = sweeperWith(meta, clock);
    try {
      for (let sweep = 0; sweep < 6; sweep += 1) {
        expect(await sweeper.sweep()).toEqual({ requeued: 0, failed: 0 });
        clock.advance(graceMs);
        meta.current = liveMeta(meta.current.lastSeq + 5);
      }
      expect(added).toEqual([]);
    } finally {
      sweeper.stop();
    }
  });

  it("enqueues it again once its log stood still (or stayed missing) for the grace period, and only once", async () => {
    const meta: { current: StreamMeta | undefined } = { current: undefined };
    const clock = createManualClock(10_000);
    const { sweeper, added } = sweeperWith(meta, clock);
    try {
      expect(await sweeper.sweep()).toEqual({ requeued: 0, failed: 0 });
      clock.advance(graceMs - 1);
      expect(await sweeper.sweep()).toEqual({ requeued: 0, failed: 0 });
      clock.advance(1);
      expect(await sweeper.sweep()).toEqual({ requeued: 1, failed: 0 });
      clock.advance(graceMs * 5);
      expect(await sweeper.sweep()).toEqual({ requeued: 0, failed: 0 });
      expect(added).toEqual(["task_1"]);
    } finally {
      sweeper.stop();
    }
  });
});

describe("ending a generation that will not run again", () => {
  it("saves it failed with the reply viewers hold (the deltas after the last reset, read page by page) and ends the log failed", async () => {
    const redis = connectTestRedis();
    const streamLog = createStreamLog({ redis, keyPrefix: uniqueKeyPrefix("sweeper-end"), readPageSize: 2 });
    const taskId = "task_1";
    onTestFinished(() => streamLog.remove(taskId));
    await streamLog.beginAttempt(taskId);
    await streamLog.append(taskId, 1, [{ type: "text-delta", delta: "dropped " }, { type: "reasoning-delta", delta: "dropped" }]);
    await streamLog.beginAttempt(taskId);
    const reasoning = ["Let me ", "think."].map((delta) => ({ type: "reasoning-delta" as const, delta }));
    const text = ["Half ", "a ", "reply"].map((delta) => ({ type: "text-delta" as const, delta }));
    await streamLog.append(taskId, 2, [...reasoning, ...text]);
    const saved: FinalResult[] = [];
    const messages: Partial<MessagesRepository> = {
      forceFinish: (_taskId, result) => {
        saved.push(result);
        return Promise.resolve(true);
      },
    };

    expect(await endFailedGeneration({ messages: messages as MessagesRepository, streamLog }, { taskId, messageId: "m1" }, "GENERATION_ORPHANED")).toBe("ended");
    expect(saved).toEqual([expect.objectContaining({ status: "failed", content: "Half a reply", reasoning: "Let me think.", lastSeq: 9, errorCode: "GENERATION_ORPHANED" })]);
    const last = (await streamLog.read(taskId, 9))?.entries;
    expect(last).toHaveLength(1);
    expect(last?.[0]?.event).toMatchObject({ type: "end", status: "failed", messageId: "m1", error: { code: "GENERATION_ORPHANED" } });
  });
});
