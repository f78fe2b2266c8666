/**
 * Fault 7, longer: Redis hangs (SIGSTOP) for twice the job lock, so every running job's lock
 * expires while its worker cannot renew it, and after SIGCONT BullMQ's stalled check re-queues
 * the jobs. One process: the job comes back to the process still running it, which carries on
 * (one run per task). Two workers: the other may take it, and its new attempt (`continue`) fences
 * the old one out of the log. Either way each stream ends once, shows each entry once, and ends
 * with the whole reply, which is the one saved.
 */
import { setTimeout as delay } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { createStreamRecorder, expectCompleteReply } from "../support/client/stream-recorder.ts";
import { registerUser, waitForFinalReply } from "../support/client/chat-api.ts";
import { echoPrompt, seededRandom } from "../support/chaos.ts";
import { clusterStartTimeoutMs } from "../support/sluice/environment.ts";
import { useSluice } from "../support/sluice/use-sluice.ts";

const lockMs = 2_000;

describe.each([
  { name: "one process", topology: "combined" as const, label: "longpause1" },
  { name: "an API and two workers", topology: { apis: 1, workers: 2 }, label: "longpause2" },
])("Redis paused past the job lock ($name)", ({ topology, label }) => {
  const cluster = useSluice({
    mode: "processes",
    redis: "private",
    topology,
    env: { REDIS_COMMAND_TIMEOUT_MS: "500", SIMULATED_TOKENS_PER_SECOND: "50", JOB_LOCK_DURATION_MS: String(lockMs), JOB_STALLED_INTERVAL_MS: "1000" },
    label,
  }, clusterStartTimeoutMs);

  it("every open stream ends once with the whole reply it showed, which is the one saved", async () => {
    const random = seededRandom(12);
    const session = await registerUser(cluster.url, label);
    const running = await Promise.all(
      Array.from({ length: 3 }, async () => {
        const conversationId = (await session.createConversation()).id;
        // About 13 s at 50 tokens/s: the pause lands mid-stream.
        const { prompt, expected } = echoPrompt(random, 400);
        return { conversationId, expected, taskId: (await session.send(conversationId, prompt)).taskId };
      }),
    );
    const recorder = createStreamRecorder(session);
    const following = running.map((task) => recorder.follow(task.taskId, () => ({ idleTimeoutMs: 60_000 }), { deadlineMs: 100_000 }));
    await expect.poll(() => running.every((task) => recorder.report(task.taskId).text.length > 0), { timeout: 20_000, interval: 50, message: "every stream to show text" }).toBe(true);

    const pid = cluster.privateRedis!.pid();
    process.kill(pid, "SIGSTOP");
    try {
      // The fault itself: Redis stays stopped for twice the lock, so no job keeps its lock.
      await delay(2 * lockMs);
    } finally {
      process.kill(pid, "SIGCONT");
    }

    await Promise.all(following);
    // The pause did cost the jobs their locks: the stalled check re-queued each of them.
    await expect.poll(() => running.filter((task) => cluster.output().includes(`"taskId":"${task.taskId}","msg":"job stalled`)).length, { timeout: 10_000 }).toBe(running.length);
    for (const task of running) {
      const report = recorder.report(task.taskId);
      const context = `${task.taskId}: ${JSON.stringify({ ...report, text: undefined })}\n${cluster.output().slice(-4_000)}`;
      expectCompleteReply(report, task.expected, context);
      const saved = await waitForFinalReply(session, task.conversationId, task.taskId);
      expect(saved.status, context).toBe("completed");
      expect(saved.content, context).toBe(report.text);
    }
  }, 150_000);
});
