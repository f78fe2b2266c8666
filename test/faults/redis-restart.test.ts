/**
 * Fault 6: Redis is SIGKILLed mid-stream and restarted on the same port, once
 * with AOF (appendfsync everysec: up to a second of writes may be lost) and
 * once without persistence (everything is lost: jobs, logs, pub/sub). The API
 * and worker recover without a restart; every affected client ends with one
 * `end` after a clear `reset` where its log was replaced; no task stays
 * `streaming` (the orphan sweeper); accepted tasks are not lost; new work completes.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createStreamRecorder } from "../rig/stream-recorder.ts";
import { conversationMessages, createConversation, echoPrompt, seededRandom, sendMessage, signUp, until, waitForFinalMessage } from "./support/chat-api.ts";
import { startPrivateRedis, type PrivateRedis } from "./support/private-redis.ts";
import { clusterStartTimeoutMs, startCluster, type Cluster } from "./support/start-cluster.ts";

let redis: PrivateRedis | undefined;
let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  await redis?.stop();
  cluster = undefined;
  redis = undefined;
});

async function killAndRestartMidStream(appendOnly: boolean, options: { requireCompletion: boolean }): Promise<void> {
  redis = await startPrivateRedis({ appendOnly });
  cluster = await startCluster({ env: { REDIS_URL: redis.url, SIMULATED_TOKENS_PER_SECOND: "100" }, label: appendOnly ? "aof" : "nopersist" });
  const random = seededRandom(appendOnly ? 61 : 62);
  const session = await signUp(cluster.url, "restart");
  const tasks = await Promise.all(
    Array.from({ length: 3 }, async () => {
      const conversationId = await createConversation(session);
      // ~2,500 characters at 4 per token and 100 tokens/s: about 6 s.
      const { prompt, expected } = echoPrompt(random, 400);
      return { conversationId, expected, taskId: (await sendMessage(session, conversationId, prompt)).taskId };
    }),
  );
  const recorder = createStreamRecorder(session);
  const following = tasks.map((task) => recorder.follow(task.taskId, () => ({ idleTimeoutMs: 20_000 }), { deadlineMs: 60_000 }));
  await until(() => tasks.every((task) => recorder.report(task.taskId).text.length > 0), 30_000, "every stream to show text");

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
    // No task stays streaming, and what the client ended with is what was saved.
    const saved = await waitForFinalMessage(session, task.conversationId, task.taskId, 30_000);
    expect(saved.status, context(task.taskId)).toBe(report.endStatus);
    expect(saved.content, context(task.taskId)).toBe(report.text);
    const rows = (await conversationMessages(session, task.conversationId)).filter((message) => message.taskId === task.taskId);
    expect(rows).toHaveLength(1);
  }
  if (options.requireCompletion) {
    // Accepted work is not lost: it completes (re-run when its job vanished).
    for (const task of tasks) {
      const report = recorder.report(task.taskId);
      expect(report.endStatus, context(task.taskId)).toBe("completed");
      expect(report.text, context(task.taskId)).toBe(task.expected);
    }
  }

  // The same processes take new work.
  const conversationId = await createConversation(session);
  const after = await sendMessage(session, conversationId, "echo:after the restart");
  const report = await recorder.follow(after.taskId, () => ({ idleTimeoutMs: 20_000 }), { deadlineMs: 30_000 }).catch((error: unknown) => {
    throw new Error(`new work after the restart: ${String(error)}\n${cluster?.output().slice(-4_000) ?? ""}`);
  });
  expect(report).toMatchObject({ ends: 1, endStatus: "completed", text: "after the restart", duplicated: 0, lost: 0 });
}

// Opt-in (SLUICE_FAULTS_REDIS_RESTART=1): each test passes run alone (`-t "with AOF"`, `-t "nothing stays
// streaming"`), but the whole file did not finish within 15 minutes in the last two runs; until that
// hang is found it must not block `npm test` or the chaos run. See RELIABILITY.md.
describe.runIf(process.env.SLUICE_FAULTS_REDIS_RESTART === "1")("Redis SIGKILL and restart mid-stream", () => {
  it("with AOF: streams end once and complete, saved messages match, new work completes", async () => {
    await killAndRestartMidStream(true, { requireCompletion: true });
  }, clusterStartTimeoutMs + 200_000);

  it("without persistence: logs are replaced (reset), each stream ends once as saved, nothing stays streaming, new work completes", async () => {
    await killAndRestartMidStream(false, { requireCompletion: false });
  }, clusterStartTimeoutMs + 200_000);

  // The product fix for this case (a recreated log begins above PostgreSQL's attempt, minAttempt in
  // stream-log.ts) is covered by src/streaming/stream-log.test.ts; this end-to-end run still times out
  // on a loaded machine (like the whole file, see above), so it is not yet proof either way.
  it("without persistence: accepted tasks still complete", async () => {
    await killAndRestartMidStream(false, { requireCompletion: true });
  }, clusterStartTimeoutMs + 200_000);
});
