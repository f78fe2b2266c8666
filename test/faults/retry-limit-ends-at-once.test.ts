/**
 * RELIABILITY.md fault 4, past the retry limit: a worker is SIGKILLed
 * mid-stream and the job has no attempts left (JOB_ATTEMPTS=1). Another worker
 * is running. The stream ends `failed`/`WORKER_LOST` within seconds of the
 * stalled check, and the message is saved `failed` with the text the client
 * saw, not empty.
 *
 * Found by this test: the worker that failed the job only logged it; the task
 * ended when the orphan sweeper found it, ORPHAN_TIMEOUT_MS later (120 s by
 * default). Here that timeout is 10 minutes, so only the new behaviour passes.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { SluiceProcess } from "../support/sluice/sluice-process.ts";
import { clusterStartTimeoutMs } from "../support/sluice/environment.ts";
import { useSluice } from "../support/sluice/use-sluice.ts";
import { followNewGeneration } from "../support/client/follow-new-generation.ts";

// `recovery: "fast"`: a dead worker's lock lapses after 2 s (JOB_LOCK_DURATION_MS) and the stalled
// check runs every 1 s, so the job is failed about 2-4 s after the kill.
const lockAndCheckMs = 2_000 + 2 * 1_000;

const cluster = useSluice({
  mode: "processes",
  topology: { apis: 1, workers: 2 },
  label: "retrylimit",
  env: { JOB_ATTEMPTS: "1", ORPHAN_TIMEOUT_MS: "600000", SIMULATED_TOKENS_PER_SECOND: "40", SIMULATED_TOKEN_COUNT: "400" },
});
beforeAll(async () => {
}, clusterStartTimeoutMs);

describe("a worker killed mid-stream with no attempts left", () => {
  it("the stream ends failed/WORKER_LOST within seconds, not after ORPHAN_TIMEOUT_MS; the saved message has the text the client saw", async () => {
    const { session, conversationId, accepted, recorder, following } = await followNewGeneration(cluster.url, "retrylimit", { content: "A long answer, please" }, { deadlineMs: 60_000 });
    let victim: SluiceProcess | undefined;
    await expect.poll(() => {
      victim = cluster.workers.find((worker) => worker.output().includes(accepted.taskId) && worker.output().includes("first chunk received"));
      return victim !== undefined && recorder.report(accepted.taskId).text.length > 0;
    }, { timeout: 30_000, interval: 50, message: "a worker to stream the reply" }).toBe(true);
    if (!victim) throw new Error("no worker ran the task");
    victim.kill("SIGKILL");
    const killedAt = Date.now();
    await victim.exited;

    const report = await following;
    const end = recorder.events.find((event) => event.taskId === accepted.taskId && event.type === "end");
    const endedAfterKillMs = (end?.at ?? Number.NaN) - killedAt;
    const context = `${JSON.stringify({ ...report, text: undefined, endedAfterKillMs })}\n${cluster.output().slice(-4_000)}`;
    expect(report, context).toMatchObject({ ends: 1, endStatus: "failed", lost: 0, duplicated: 0, outOfOrder: 0, resets: 0 });
    expect(end?.data, context).toMatchObject({ status: "failed", error: { code: "WORKER_LOST" } });
    // Seconds: the lock lapsing, the stalled check, and slack for a loaded 2-core machine.
    expect(endedAfterKillMs, context).toBeLessThan(lockAndCheckMs + 8_000);

    // The row was final before `end` went out, and holds what the client saw.
    const rows = ((await session.conversation(conversationId)).messages).filter((message) => message.taskId === accepted.taskId);
    expect(rows.map((row) => [row.status, row.error?.code, row.content]), context).toEqual([["failed", "WORKER_LOST", report.text]]);
    expect(report.text.length, context).toBeGreaterThan(0);
  }, 120_000);
});
