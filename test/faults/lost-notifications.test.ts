/**
 * Fault 3: notifications are lost. `CLIENT KILL TYPE pubsub` cuts every
 * subscriber connection (API hub and worker cancel watcher) again and again
 * while 50 streams run; notifications published meanwhile are gone for good.
 * PROTOCOL.md 8.5: the log is the truth, so every stream still finishes,
 * complete and once, and no client waits long for text that is already written.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStreamRecorder, expectCompleteReply } from "../support/client/stream-recorder.ts";
import { registerUser, waitForFinalReply } from "../support/client/chat-api.ts";
import { chaosRuns, echoPrompt, seededRandom } from "../support/chaos.ts";
import { startPrivateRedis, type PrivateRedis } from "../support/servers/private-redis.ts";
import { clusterStartTimeoutMs } from "../support/sluice/environment.ts";
import { startSluice, type ProcessSluice } from "../support/sluice/start-sluice.ts";

const streams = chaosRuns(1) > 1 ? 150 : 50;
/** The longest silence a viewer may see between two events of a running stream. Stall recovery is 500 ms; the rest is slack for a loaded 2-core machine. */
const maxStallMs = 6_000;
let redis: PrivateRedis;
let cluster: ProcessSluice;

beforeAll(async () => {
  redis = await startPrivateRedis({ appendOnly: false });
  // Default job lock (30 s): this test is about notifications, not about jobs stalling on a loaded machine.
  cluster = await startSluice({ mode: "processes", env: { REDIS_URL: redis.url, SIMULATED_TOKENS_PER_SECOND: "60", JOB_LOCK_DURATION_MS: "30000", JOB_STALLED_INTERVAL_MS: "15000" }, label: "pubsub" });
}, clusterStartTimeoutMs);
afterAll(async () => {
  await cluster?.stop();
  await redis?.stop();
});

describe("lost notifications", () => {
  it(`CLIENT KILL TYPE pubsub every 200 ms during ${streams} concurrent streams: every stream completes, nothing lost or repeated, bounded stall`, async () => {
    const random = seededRandom(3);
    const session = await registerUser(cluster.url, "pubsub");
    const tasks = await Promise.all(
      Array.from({ length: streams }, async () => {
        const conversationId = (await session.createConversation()).id;
        const { prompt, expected } = echoPrompt(random, 40);
        const accepted = await session.send(conversationId, prompt);
        return { conversationId, expected, taskId: accepted.taskId };
      }),
    );
    const recorder = createStreamRecorder(session);
    let killing = true;
    let kills = 0;
    let killedClients = 0;
    const killer = (async () => {
      while (killing) {
        killedClients += Number(await redis.admin().call("CLIENT", "KILL", "TYPE", "pubsub"));
        kills += 1;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    })();
    try {
      await Promise.all(tasks.map((task) => recorder.follow(task.taskId, () => ({ idleTimeoutMs: 30_000 }), { deadlineMs: 90_000 })));
    } finally {
      killing = false;
      await killer;
    }
    expect(kills).toBeGreaterThan(3);
    expect(killedClients, "the kills hit subscriber connections").toBeGreaterThan(0);
    for (const task of tasks) {
      const report = recorder.report(task.taskId);
      const context = `${task.taskId}: ${JSON.stringify({ ...report, text: undefined })}`;
      expectCompleteReply(report, task.expected, context);
      const own = recorder.events.filter((event) => event.taskId === task.taskId);
      let longestGapMs = 0;
      for (let index = 1; index < own.length; index += 1) longestGapMs = Math.max(longestGapMs, (own[index]?.at ?? 0) - (own[index - 1]?.at ?? 0));
      expect(longestGapMs, context).toBeLessThan(maxStallMs);
    }
    for (const task of tasks) {
      await waitForFinalReply(session, task.conversationId, task.taskId);
      const saved = ((await session.conversation(task.conversationId)).messages).filter((message) => message.taskId === task.taskId);
      expect(saved.map((message) => [message.status, message.content])).toEqual([["completed", task.expected]]);
    }
  }, 150_000);
});
