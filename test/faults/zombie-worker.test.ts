/**
 * Fault 5: a zombie worker. Worker A is frozen (SIGSTOP) mid-generation for
 * longer than its job lock; worker B takes the stalled job over as attempt 2
 * (a `continue` in the log: the simulated model continues the reply, PROTOCOL.md
 * 4.3). Then A wakes up (SIGCONT) and keeps appending its old attempt. Fencing
 * (PROTOCOL.md 8.2) must accept none of it: the log holds attempt 1's text up to
 * the `continue` and then only attempt 2's rest, and the saved message is the whole reply once.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { streamKeys } from "../../src/streaming/index.ts";
import { testRedisUrl } from "../support/servers/redis.ts";
import { waitForFinalReply } from "../support/client/chat-api.ts";
import { clusterStartTimeoutMs } from "../support/sluice/environment.ts";
import { startSluice, type ProcessSluice } from "../support/sluice/start-sluice.ts";
import { followNewGeneration } from "../support/client/follow-new-generation.ts";
import { expectCompleteReply } from "../support/client/stream-recorder.ts";

let cluster: ProcessSluice;

beforeAll(async () => {
  // Lock 2 s, stalled check every 1 s: a worker frozen for longer loses its job.
  cluster = await startSluice({ mode: "processes", topology: { apis: 1, workers: 1 }, env: { SIMULATED_TOKENS_PER_SECOND: "40" }, label: "zombie" });
}, clusterStartTimeoutMs);
afterAll(async () => {
  await cluster?.stop();
});

describe("zombie worker", () => {
  it("a worker frozen past its lock and woken after a takeover gets none of its appends accepted", async () => {
    // ~1,300 characters at 4 per token and 40 tokens/s: about 8 s per attempt.
    const { session, conversationId, accepted, expected, recorder, following } = await followNewGeneration(cluster.url, "zombie", { seed: 5, words: 200 }, { idleTimeoutMs: 30_000, shownLength: 20, startTimeoutMs: 20_000 });

    const zombie = cluster.workers[0];
    if (!zombie) throw new Error("no worker");
    zombie.kill("SIGSTOP");
    try {
      await cluster.startWorker();
      await expect.poll(() => recorder.events.some((event) => event.type === "continue"), { timeout: 30_000, interval: 50, message: "worker B to take over (continue)" }).toBe(true);
      const takeoverAt = recorder.events.findIndex((event) => event.type === "continue");
      await expect.poll(() => recorder.events.slice(takeoverAt).some((event) => event.type === "text-delta"), { timeout: 20_000, interval: 50, message: "attempt 2 to stream" }).toBe(true);
    } finally {
      zombie.kill("SIGCONT");
    }
    await following;

    const report = recorder.report(accepted.taskId);
    const context = `${JSON.stringify({ ...report, text: undefined })}\n${cluster.output().slice(-3_000)}`;
    expectCompleteReply(report, expected, context);

    // The log itself: attempt 1's text, `continue`, attempt 2's rest and nothing after `end`; no reset, no zombie text.
    const redis = new Redis(testRedisUrl());
    try {
      const entries = await redis.xrange(streamKeys(cluster.env.REDIS_KEY_PREFIX ?? "", accepted.taskId).log, "-", "+");
      const events = entries.map(([, fields]) => {
        // Each entry is `d <event JSON>` (src/streaming/stream-log-scripts.ts).
        const payload = fields[fields.indexOf("d") + 1] ?? "{}";
        return JSON.parse(payload) as { type: string; delta?: string; attempt?: number };
      });
      const types = events.map((event) => event.type);
      expect(types).not.toContain("reset");
      const continueAt = types.indexOf("continue");
      expect(continueAt, JSON.stringify(events.slice(0, 5))).toBeGreaterThan(0);
      expect(events[continueAt]).toMatchObject({ type: "continue", attempt: 2 });
      expect(events.filter((event) => event.type === "text-delta").map((event) => event.delta).join("")).toBe(expected);
      expect(events.at(-1)?.type).toBe("end");
      expect(events.filter((event) => event.type === "end")).toHaveLength(1);
    } finally {
      redis.disconnect();
    }

    const saved = await waitForFinalReply(session, conversationId, accepted.taskId);
    expect(saved.content).toBe(expected);
    expect(((await session.conversation(conversationId)).messages).filter((message) => message.taskId === accepted.taskId)).toHaveLength(1);
  }, 120_000);
});
