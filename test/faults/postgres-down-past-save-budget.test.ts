/**
 * RELIABILITY.md "What is guaranteed at the edges": PostgreSQL unreachable for
 * longer than FINAL_SAVE_RETRY_MS, at the final save and at the start of an
 * attempt. The attempt fails and the job is retried as a new attempt (viewers
 * see `continue`, then the rest of the reply if any: the simulated model
 * continues a reply, PROTOCOL.md 4.3), once PostgreSQL answers again:
 * one `end`, `completed`, and the saved message is the text the client ended with.
 *
 * Found by this test: the job was enqueued with `attempts: 1`, so it failed for
 * good, and the orphan sweeper later saved the reply `failed` with no content.
 *
 * Only the worker reaches PostgreSQL through the fault proxy; the API and the
 * test go direct, so the client can still send and read while the worker cannot.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../support/servers/test-database.ts";
import type { SluiceProcess } from "../support/sluice/sluice-process.ts";
import { startFaultProxy, type FaultProxy } from "../support/servers/fault-proxy.ts";
import { createStreamRecorder } from "../support/client/stream-recorder.ts";
import { registerUser } from "../support/client/chat-api.ts";
import { echoPrompt, seededRandom } from "../support/chaos.ts";
import { clusterStartTimeoutMs } from "../support/sluice/environment.ts";
import { startSluice, type ProcessSluice } from "../support/sluice/start-sluice.ts";
import { connectToDatabase, finalSavesWaitingOnLock } from "../support/servers/final-save-locks.ts";
import { followNewGeneration } from "../support/client/follow-new-generation.ts";

let databaseUrl: string;
let proxy: FaultProxy;
let cluster: ProcessSluice;
let worker: SluiceProcess;

beforeAll(async () => {
  databaseUrl = await createTestDatabase("pgbudget");
  proxy = await startFaultProxy(databaseUrl);
  cluster = await startSluice({
    mode: "processes",
    topology: { apis: 1, workers: 0 },
    label: "pgbudget",
    // The smallest save budget, so the test holds PostgreSQL down past it in seconds. JOB_ATTEMPTS is the default.
    env: { DATABASE_URL: databaseUrl, DB_STATEMENT_TIMEOUT_MS: "1000", FINAL_SAVE_RETRY_MS: "1000", SIMULATED_TOKENS_PER_SECOND: "60", JOB_ATTEMPTS: "3" },
  });
  worker = await cluster.startWorker({ DATABASE_URL: proxy.url });
}, clusterStartTimeoutMs);
afterAll(async () => {
  proxy?.setMode({ kind: "pass" });
  await cluster?.stop();
  await proxy?.close();
});

/**
 * Waits until the worker has given up on this attempt: the fixed worker logs that the job is
 * retried as a new attempt; before the fix the job failed for good ("generation job failed").
 */
async function attemptGivenUp(taskId: string): Promise<"retried" | "failed"> {
  const retried = new RegExp(`"taskId":"${taskId}"[^\\n]*"msg":"generation failed on an unavailable dependency; the job is retried as a new attempt"`);
  const failed = new RegExp(`"taskId":"${taskId}"[^\\n]*"msg":"generation job failed"`);
  let outcome: "retried" | "failed" | undefined;
  await expect.poll(() => {
    outcome = retried.test(worker.output()) ? "retried" : failed.test(worker.output()) ? "failed" : undefined;
    return outcome !== undefined;
  }, { timeout: 60_000, interval: 50, message: "the worker to give up on the attempt" }).toBe(true);
  return outcome ?? "failed";
}

describe("PostgreSQL unreachable for longer than FINAL_SAVE_RETRY_MS", () => {
  it("at the final save: the job is retried as a new attempt once PostgreSQL is back; one end, completed, saved = the client's text", async () => {
    const { session, conversationId, accepted, expected, recorder, following } = await followNewGeneration(cluster.url, "pgbudget", { seed: 121, words: 40 });

    // Hold the worker at its final save (a row lock), then cut it off from PostgreSQL and end the
    // held statement, so the save can neither commit now nor later behind the worker's back.
    const locker = await connectToDatabase(databaseUrl);
    const observer = await connectToDatabase(databaseUrl);
    let outcome: "retried" | "failed";
    try {
      await locker.query("BEGIN");
      await locker.query("SELECT id FROM messages WHERE task_id = $1 FOR UPDATE", [accepted.taskId]);
      await expect.poll(async () => (await finalSavesWaitingOnLock(observer)).length > 0, { timeout: 30_000, interval: 50, message: "the final save to wait on the row lock" }).toBe(true);
      await expect.poll(() => recorder.report(accepted.taskId).text === expected, { timeout: 10_000, interval: 50, message: "the whole text to reach the client" }).toBe(true);
      proxy.setMode({ kind: "drop" });
      for (const pid of await finalSavesWaitingOnLock(observer)) await observer.query("SELECT pg_terminate_backend($1)", [pid]);
      await locker.query("ROLLBACK");
      outcome = await attemptGivenUp(accepted.taskId);
      expect(recorder.report(accepted.taskId).ends, "`end` while the save could not commit").toBe(0);
    } finally {
      proxy.setMode({ kind: "pass" });
      await Promise.all([locker.end().catch(() => undefined), observer.end().catch(() => undefined)]);
    }

    const report = await following;
    const context = `${outcome}\n${JSON.stringify({ ...report, text: undefined })}\n${worker.output().slice(-4_000)}`;
    expect(report, context).toMatchObject({ ends: 1, endStatus: "completed", lost: 0, duplicated: 0, outOfOrder: 0, text: expected });
    // The new attempt began with `continue`: the client kept the first attempt's text (here the whole
    // reply, so nothing followed) instead of dropping it and reading it all again.
    expect(report.resets, context).toBe(0);
    expect(recorder.events.some((event) => event.taskId === accepted.taskId && event.type === "continue"), context).toBe(true);
    const rows = ((await session.conversation(conversationId)).messages).filter((message) => message.taskId === accepted.taskId);
    expect(rows.map((row) => [row.role, row.status, row.content]), context).toEqual([["assistant", "completed", expected]]);
  }, 150_000);

  it("when the attempt begins: the same, once PostgreSQL is back", async () => {
    const session = await registerUser(cluster.url, "pgbudget");
    const conversationId = (await session.createConversation()).id;
    const { prompt, expected } = echoPrompt(seededRandom(122), 30);
    proxy.setMode({ kind: "drop" });
    let outcome: "retried" | "failed";
    let accepted;
    const recorder = createStreamRecorder(session);
    let following;
    try {
      // The API reaches PostgreSQL directly: the message is accepted; the worker cannot claim it.
      accepted = await session.send(conversationId, prompt);
      following = recorder.follow(accepted.taskId, () => ({ idleTimeoutMs: 60_000 }), { deadlineMs: 90_000 });
      outcome = await attemptGivenUp(accepted.taskId);
      expect(recorder.report(accepted.taskId).ends).toBe(0);
    } finally {
      proxy.setMode({ kind: "pass" });
    }

    const report = await following;
    const context = `${outcome}\n${JSON.stringify({ ...report, text: undefined })}\n${worker.output().slice(-4_000)}`;
    expect(report, context).toMatchObject({ ends: 1, endStatus: "completed", lost: 0, duplicated: 0, outOfOrder: 0, text: expected });
    const rows = ((await session.conversation(conversationId)).messages).filter((message) => message.taskId === accepted.taskId);
    expect(rows.map((row) => [row.role, row.status, row.content]), context).toEqual([["assistant", "completed", expected]]);
  }, 150_000);
});
