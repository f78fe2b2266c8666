/**
 * Fault 5b: a takeover in the window between the final save and `end`.
 * Worker A commits the final message, then loses Redis (fault proxy in
 * `pause`) before it can write `end`; its job lock lapses and worker B takes
 * the job over as attempt 2, which writes a `continue` (the simulated model
 * continues a reply; `reset` where a provider cannot), finds the row already
 * final and ends the stream. PROTOCOL.md 3.2: the client must end with the saved
 * text, once: after a `reset` it is sent again, after a `continue` it is kept.
 *
 * To hold A inside the window, A's PostgreSQL answers arrive through a proxy in
 * `delay` mode: the commit happens at once, A learns of it 1.5 s later, and the
 * test pauses A's Redis as soon as it sees the committed row.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSluiceProcess, type SluiceProcess } from "../support/sluice/sluice-process.ts";
import { testRedisUrl } from "../support/servers/redis.ts";
import { startFaultProxy, type FaultProxy } from "../support/servers/fault-proxy.ts";
import { waitForFinalReply } from "../support/client/chat-api.ts";
import { clusterStartTimeoutMs } from "../support/sluice/environment.ts";
import { startSluice, type ProcessSluice } from "../support/sluice/start-sluice.ts";
import { followNewGeneration } from "../support/client/follow-new-generation.ts";

let cluster: ProcessSluice;
let redisProxy: FaultProxy;
let postgresProxy: FaultProxy;
let workerA: SluiceProcess;

beforeAll(async () => {
  cluster = await startSluice({ mode: "processes", topology: { apis: 1, workers: 0 }, env: { SIMULATED_TOKENS_PER_SECOND: "100" }, label: "takeover" });
  redisProxy = await startFaultProxy(testRedisUrl());
  postgresProxy = await startFaultProxy(cluster.env.DATABASE_URL ?? "");
  const proxiedDatabase = new URL(cluster.env.DATABASE_URL ?? "");
  proxiedDatabase.port = String(postgresProxy.port);
  workerA = await startSluiceProcess({
    role: "worker",
    env: { ...cluster.env, REDIS_URL: redisProxy.url, DATABASE_URL: proxiedDatabase.toString() },
    readyTimeoutMs: 100_000,
  });
}, clusterStartTimeoutMs);
afterAll(async () => {
  redisProxy?.setMode({ kind: "pass" });
  await workerA?.stop(3_000);
  await cluster?.stop();
  await redisProxy?.close();
  await postgresProxy?.close();
});

describe("takeover between the final save and end", () => {
  // Found by this test: attempt 2 ended the stream right after its `reset` without the saved text,
  // so a client showed an empty reply while the saved message had the full text.
  it("the client ends with the saved text, once", async () => {
    const { session, conversationId, accepted, expected, recorder, following } = await followNewGeneration(cluster.url, "takeover", { seed: 77, words: 30 });
    postgresProxy.setMode({ kind: "delay", delayMs: 1_500 });

    const database = new pg.Client({ connectionString: cluster.env.DATABASE_URL });
    await database.connect();
    try {
      await expect.poll(async () => (await database.query<{ status: string }>("select status from messages where task_id = $1", [accepted.taskId])).rows[0]?.status === "completed", { timeout: 30_000, interval: 50, message: "worker A to commit the final message" }).toBe(true);
    } finally {
      await database.end();
    }
    redisProxy.setMode({ kind: "pause" });
    const endBeforeTakeover = recorder.report(accepted.taskId).ends;
    try {
      await startSluiceProcess({ role: "worker", env: cluster.env, readyTimeoutMs: 100_000 }).then((worker) => cluster.workers.push(worker));
      await expect.poll(() => recorder.report(accepted.taskId).ends > 0, { timeout: 30_000, interval: 50, message: "the stream to end after the takeover" }).toBe(true);
    } finally {
      redisProxy.setMode({ kind: "pass" });
      postgresProxy.setMode({ kind: "pass" });
    }
    await following;
    expect(endBeforeTakeover, "A wrote `end` before the test could hold it; the window was missed").toBe(0);
    const report = recorder.report(accepted.taskId);
    const saved = await waitForFinalReply(session, conversationId, accepted.taskId);
    expect(saved.content).toBe(expected);
    expect(report.ends).toBe(1);
    expect(report.endStatus).toBe("completed");
    expect(report.text, JSON.stringify({ ...report, text: undefined })).toBe(saved.content);
  }, 150_000);
});
