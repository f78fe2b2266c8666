/**
 * Fault 6: Redis is SIGKILLed mid-stream and restarted on the same port, once
 * with AOF (appendfsync everysec; a SIGKILL keeps what reached the kernel) and
 * twice without persistence (everything is lost: jobs, logs, locks, pub/sub).
 * The API and worker recover without a restart; every accepted task completes
 * and ends once as saved (a generation whose log vanished begins again above
 * PostgreSQL's attempt and its client gets `reset`; a queued job that vanished is
 * re-enqueued by the orphan sweeper); nothing stays `streaming`; new work completes.
 * Every follow has a deadline, so a stream that never ends fails instead of hanging.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createStreamRecorder } from "../support/client/stream-recorder.ts";
import { registerUser, waitForFinalReply } from "../support/client/chat-api.ts";
import { echoPrompt, seededRandom } from "../support/chaos.ts";
import { startPrivateRedis, type PrivateRedis } from "../support/servers/private-redis.ts";
import { clusterStartTimeoutMs } from "../support/sluice/environment.ts";
import { startSluice, type ProcessSluice } from "../support/sluice/start-sluice.ts";

let redis: PrivateRedis | undefined;
let cluster: ProcessSluice | undefined;
afterEach(async () => {
  await cluster?.stop();
  await redis?.stop();
  cluster = undefined;
  redis = undefined;
});

interface Scenario {
  appendOnly: boolean;
  tasks: number;
  /** Below `tasks`: the others wait in the queue, so a restart without persistence loses their jobs. */
  concurrency?: number;
  seed: number;
}

interface Outcome {
  output: string;
  /** Tasks that showed text before the kill (the rest were still queued). */
  running: Set<string>;
  /** Per task, the attempts of `reset` events with reason "retry" (a generation that began again). */
  resetAttempts: Map<string, number[]>;
}

/** Every follow ends by this deadline: a stream that never ends fails the test instead of hanging the file. */
const followDeadlineMs = 60_000;

async function killAndRestartMidStream(scenario: Scenario): Promise<Outcome> {
  redis = await startPrivateRedis({ appendOnly: scenario.appendOnly });
  cluster = await startSluice({
    mode: "processes",
    env: { REDIS_URL: redis.url, SIMULATED_TOKENS_PER_SECOND: "100", ...(scenario.concurrency === undefined ? {} : { WORKER_CONCURRENCY: String(scenario.concurrency),
  }) },
    label: scenario.appendOnly ? "aof" : "nopersist" });
  const random = seededRandom(scenario.seed);
  const session = await registerUser(cluster.url, "restart");
  const tasks = await Promise.all(
    Array.from({ length: scenario.tasks }, async () => {
      const conversationId = (await session.createConversation()).id;
      // ~1,250 characters at 4 per token and 100 tokens/s: about 3 s, so every stream is mid-way at the kill.
      const { prompt, expected } = echoPrompt(random, 200);
      return { conversationId, expected, taskId: (await session.send(conversationId, prompt)).taskId };
    }),
  );
  const recorder = createStreamRecorder(session);
  const deadline = AbortSignal.timeout(followDeadlineMs);
  const plan = (): { idleTimeoutMs: number; signal: AbortSignal } => ({ idleTimeoutMs: 20_000, signal: deadline });
  const following = tasks.map((task) => recorder.follow(task.taskId, plan, { deadlineMs: followDeadlineMs }));
  // Every generation that runs shows text before the kill; with concurrency 1 the others are still queued.
  const showingText = (): string[] => tasks.filter((task) => recorder.report(task.taskId).text.length > 0).map((task) => task.taskId);
  await expect.poll(() => showingText().length >= (scenario.concurrency ?? tasks.length), { timeout: 30_000, interval: 50, message: "the running streams to show text" }).toBe(true);
  const running = new Set(showingText());

  await redis.kill();
  await redis.restart();

  await Promise.all(following);
  const context = (taskId: string): string => `${taskId}: ${JSON.stringify({ ...recorder.report(taskId), text: undefined })}\n${cluster?.output().slice(-4_000) ?? ""}`;
  for (const task of tasks) {
    const report = recorder.report(task.taskId);
    expect(report.ends, context(task.taskId)).toBe(1);
    expect(report.duplicated, context(task.taskId)).toBe(0);
    expect(report.outOfOrder, context(task.taskId)).toBe(0);
    expect(report.lost, context(task.taskId)).toBe(0);
    // Accepted work is not lost: it completes, and what the client ended with is what was saved.
    expect(report.endStatus, context(task.taskId)).toBe("completed");
    expect(report.text, context(task.taskId)).toBe(task.expected);
    const saved = await waitForFinalReply(session, task.conversationId, task.taskId, 30_000);
    expect(saved.status, context(task.taskId)).toBe("completed");
    expect(saved.content, context(task.taskId)).toBe(report.text);
    const rows = ((await session.conversation(task.conversationId)).messages).filter((message) => message.taskId === task.taskId);
    expect(rows).toHaveLength(1);
  }

  // The same processes take new work.
  const conversationId = (await session.createConversation()).id;
  const after = await session.send(conversationId, "echo:after the restart");
  const report = await recorder.follow(after.taskId, () => ({ idleTimeoutMs: 20_000, signal: AbortSignal.timeout(30_000) }), { deadlineMs: 30_000 }).catch((error: unknown) => {
    throw new Error(`new work after the restart: ${String(error)}\n${cluster?.output().slice(-4_000) ?? ""}`);
  });
  expect(report).toMatchObject({ ends: 1, endStatus: "completed", text: "after the restart", duplicated: 0, lost: 0 });

  const resetAttempts = new Map<string, number[]>();
  for (const task of tasks) {
    // Resets of a generation that began again (reason "retry"), not the hub's "log-replaced" notice.
    const attempts = recorder.events
      .filter((event) => event.taskId === task.taskId && event.type === "reset" && event.data.reason === "retry")
      .map((event) => Number(event.data.attempt));
    resetAttempts.set(task.taskId, attempts);
  }
  return { output: cluster.output(), running, resetAttempts };
}

describe("Redis SIGKILL and restart mid-stream", () => {
  it("with AOF: streams end once and complete, saved messages match, new work completes", async () => {
    await killAndRestartMidStream({ appendOnly: true, tasks: 3, seed: 61 });
  }, clusterStartTimeoutMs + 120_000);

  it("without persistence: accepted tasks still complete (lost logs begin again above PostgreSQL's attempt; vanished jobs are re-enqueued); new work completes", async () => {
    const { output, running, resetAttempts } = await killAndRestartMidStream({ appendOnly: false, tasks: 4, concurrency: 2, seed: 62 });
    expect(running.size, output.slice(-4_000)).toBe(2);
    // A running generation's log was replaced and it began again as attempt 2 (`reset`, reason "retry"):
    // above the attempt 1 PostgreSQL saw, though the recreated log counts from 1 (minAttempt).
    for (const taskId of running) expect(resetAttempts.get(taskId), output.slice(-4_000)).toContain(2);
    expect(output).toContain("the stream log was lost (Redis restarted empty); beginning again");
    // The two queued jobs vanished with Redis's data; only the orphan sweeper can have brought them back.
    expect(output.split("re-enqueued an accepted generation whose queue job had vanished").length - 1).toBeGreaterThanOrEqual(2);
  }, clusterStartTimeoutMs + 120_000);
});
