/**
 * Fault 7: Redis hangs (SIGSTOP on a private redis-server: the sockets stay open,
 * nothing answers). A new message gets a fast 503 SERVICE_UNAVAILABLE, bounded by
 * REDIS_COMMAND_TIMEOUT_MS, never a hang; after SIGCONT the open streams carry
 * on to exactly one `end`, the saved message agrees with what they showed, and
 * new work completes.
 */
import { describe, expect, it } from "vitest";
import { createStreamRecorder, expectCompleteReply } from "../support/client/stream-recorder.ts";
import { ApiError, registerUser, waitForFinalReply } from "../support/client/chat-api.ts";
import { echoPrompt, seededRandom } from "../support/chaos.ts";
import type { PrivateRedis } from "../support/servers/private-redis.ts";
import { clusterStartTimeoutMs } from "../support/sluice/environment.ts";
import { useSluice } from "../support/sluice/use-sluice.ts";

const commandTimeoutMs = 500;

const cluster = useSluice({
  mode: "processes",
  redis: "private",
  // The job lock keeps its default (30 s): this pause is shorter, so no job may be taken over.
  env: { REDIS_COMMAND_TIMEOUT_MS: String(commandTimeoutMs), SIMULATED_TOKENS_PER_SECOND: "50", JOB_LOCK_DURATION_MS: "30000", JOB_STALLED_INTERVAL_MS: "15000" },
  label: "redispause",
}, clusterStartTimeoutMs);
/** This cluster's own redis-server. */
const redis = (): PrivateRedis => cluster.privateRedis!;

async function timed<T>(operation: () => Promise<T>): Promise<{ durationMs: number; value?: T; error?: unknown }> {
  const startedAt = Date.now();
  try {
    const value = await operation();
    return { durationMs: Date.now() - startedAt, value };
  } catch (error) {
    return { durationMs: Date.now() - startedAt, error };
  }
}

describe("Redis paused", () => {
  it("a new message gets a fast 503 while Redis is stopped; open streams finish once after SIGCONT", async () => {
    const random = seededRandom(11);
    const session = await registerUser(cluster.url, "pause");
    const running = await Promise.all(
      Array.from({ length: 3 }, async () => {
        const conversationId = (await session.createConversation()).id;
        // ~2,600 characters at 4 per token and 50 tokens/s: about 13 s, so the pause lands mid-stream.
        const { prompt, expected } = echoPrompt(random, 400);
        return { conversationId, expected, taskId: (await session.send(conversationId, prompt)).taskId };
      }),
    );
    const spare = (await session.createConversation()).id;
    const recorder = createStreamRecorder(session);
    const following = running.map((task) => recorder.follow(task.taskId, () => ({ idleTimeoutMs: 30_000 }), { deadlineMs: 90_000 }));
    await expect.poll(() => running.every((task) => recorder.report(task.taskId).text.length > 0), { timeout: 20_000, interval: 50, message: "every stream to show text" }).toBe(true);

    const pausedAt = Date.now();
    process.kill(redis().pid(), "SIGSTOP");
    let resumed = false;
    let resumedAt = 0;
    try {
      const post = await timed(() => session.send(spare, "echo:during the pause"));
      expect(post.error, "the POST must fail, not succeed against a stopped Redis").toBeInstanceOf(ApiError);
      const error = post.error as ApiError;
      expect(error.status).toBe(503);
      expect(JSON.parse(error.body)).toMatchObject({ error: { code: "SERVICE_UNAVAILABLE" } });
      expect(error.headers.get("retry-after")).not.toBeNull();
      expect(post.durationMs).toBeLessThan(3_000);
      const ready = await timed(() => fetch(`${cluster.url}/readyz`).then(async (response) => ({ status: response.status, body: await response.text() })));
      expect(ready.value?.status).toBe(503);
      expect(ready.durationMs).toBeLessThan(3_000);
    } finally {
      process.kill(redis().pid(), "SIGCONT");
      resumed = true;
      resumedAt = Date.now();
    }
    expect(resumed).toBe(true);

    await Promise.all(following);
    // Each stream was open across the pause: its `end` came after it, and text flowed after SIGCONT.
    for (const task of running) {
      const own = recorder.events.filter((event) => event.taskId === task.taskId);
      const endAt = own.find((event) => event.type === "end")?.at ?? 0;
      expect(endAt, "a stream ended before the pause; slow the replies down").toBeGreaterThan(pausedAt);
      expect(own.some((event) => event.type === "text-delta" && event.at > resumedAt)).toBe(true);
    }
    for (const task of running) {
      const report = recorder.report(task.taskId);
      const context = `${task.taskId}: ${JSON.stringify({ ...report, text: undefined })}\n${cluster.output().slice(-3_000)}`;
      // A pause shorter than the job lock must not cost the user the reply.
      expectCompleteReply(report, task.expected, context);
      const saved = await waitForFinalReply(session, task.conversationId, task.taskId);
      expect(saved.status, context).toBe("completed");
      expect(saved.content, context).toBe(report.text);
    }

    // New work completes once Redis answers again.
    const after = await session.send(spare, "echo:after the pause");
    const report = await recorder.follow(after.taskId);
    expect(report).toMatchObject({ lost: 0, duplicated: 0, ends: 1, endStatus: "completed", text: "after the pause" });
    const saved = ((await session.conversation(spare)).messages).filter((message) => message.role === "assistant");
    // The refused POST left nothing behind: one reply, the one after the pause.
    expect(saved.map((message) => message.content)).toEqual(["after the pause"]);
  }, 120_000);
});
