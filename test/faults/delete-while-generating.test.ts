/**
 * A conversation deleted while its reply generates (PROTOCOL.md 3.1): its
 * viewers get exactly one `end` {cancelled, CONVERSATION_DELETED} within
 * seconds, and the worker stops without writing to the log or recreating it,
 * whether the delete comes mid-stream, while the worker waits on its final
 * save, or between the save's commit and its `end`.
 *
 * Found by this test: the delete dropped the log, so viewers waited on
 * heartbeats (the hub treats a missing log as "not started yet") and a worker
 * that came to write its `end` found the log gone and recreated it.
 *
 * Only the worker reaches PostgreSQL and Redis through fault proxies, so the
 * test can hold it at its final save (a row lock, then PostgreSQL cut off) or
 * before its `end` (Redis paused) while the API deletes the conversation.
 */
import pg from "pg";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { streamKeys } from "../../src/streaming/stream-keys.ts";
import { createTestDatabase } from "../support/servers/test-database.ts";
import { connectTestRedis, testRedisUrl } from "../support/servers/redis.ts";
import type { SluiceProcess } from "../support/sluice/sluice-process.ts";
import { startFaultProxy, type FaultProxy } from "../support/servers/fault-proxy.ts";
import { type StreamRecorder, type TaskReport } from "../support/client/stream-recorder.ts";
import { expectStatus, type ChatUser } from "../support/client/chat-api.ts";
import { parseCursor } from "../support/client/read-sse.ts";
import { clusterStartTimeoutMs } from "../support/sluice/environment.ts";
import { startSluice, type ProcessSluice } from "../support/sluice/start-sluice.ts";
import { connectToDatabase, finalSavesWaitingOnLock } from "../support/servers/final-save-locks.ts";
import { followNewGeneration } from "../support/client/follow-new-generation.ts";

let databaseUrl: string;
let postgresProxy: FaultProxy;
let redisProxy: FaultProxy;
let cluster: ProcessSluice;
let worker: SluiceProcess;

beforeAll(async () => {
  databaseUrl = await createTestDatabase("deleting");
  postgresProxy = await startFaultProxy(databaseUrl);
  redisProxy = await startFaultProxy(testRedisUrl());
  cluster = await startSluice({ mode: "processes", topology: { apis: 1, workers: 0 }, label: "deleting", env: { DATABASE_URL: databaseUrl, DB_STATEMENT_TIMEOUT_MS: "1000", SIMULATED_TOKENS_PER_SECOND: "40" } });
  // A long job lock: the worker's lock renewals wait while its Redis is paused, and the job must stay its own.
  worker = await cluster.startWorker({ DATABASE_URL: postgresProxy.url, REDIS_URL: redisProxy.url, JOB_LOCK_DURATION_MS: "30000" });
}, clusterStartTimeoutMs);
afterAll(async () => {
  postgresProxy?.setMode({ kind: "pass" });
  redisProxy?.setMode({ kind: "pass" });
  await cluster?.stop();
  await Promise.all([postgresProxy?.close(), redisProxy?.close()]);
});

interface Generating {
  session: ChatUser;
  conversationId: string;
  taskId: string;
  expected: string;
  recorder: StreamRecorder;
  following: Promise<TaskReport>;
}

async function startGenerating(seed: number, words: number): Promise<Generating> {
  const { accepted, ...generating } = await followNewGeneration(cluster.url, "deleting", { seed, words }, { deadlineMs: 60_000 });
  return { ...generating, taskId: accepted.taskId };
}

/** Deletes the conversation and returns when the viewer has its `end`: how long that took. */
async function deleteAndWaitForEnd(generating: Generating): Promise<{ report: TaskReport; endAfterDeleteMs: number }> {
  const { session, conversationId, taskId, recorder } = generating;
  const deletedAt = Date.now();
  expectStatus(await session.call("DELETE", `/api/conversations/${conversationId}`), 204);
  const report = await generating.following;
  const end = recorder.events.find((event) => event.taskId === taskId && event.type === "end");
  return { report, endAfterDeleteMs: (end?.at ?? Number.NaN) - deletedAt };
}

/** The worker logged this line for the task (it has stopped with it). */
async function workerLogged(taskId: string, message: string): Promise<void> {
  const line = new RegExp(`"taskId":"${taskId}"[^\\n]*"msg":"${message}"`);
  await expect.poll(() => line.test(worker.output()), { timeout: 60_000, interval: 50, message: `the worker to log "${message}"` }).toBe(true);
}

/**
 * The log is the tombstone the viewer read, untouched: same incarnation as the viewer's cursors,
 * ended, exactly one `end` (the last entry, CONVERSATION_DELETED), nothing after it, and it expires soon.
 */
async function expectTombstone(redis: Redis, generating: Generating, context: string): Promise<void> {
  const { taskId, recorder } = generating;
  const keys = streamKeys(cluster.env.REDIS_KEY_PREFIX ?? "", taskId);
  const entries = (await redis.xrange(keys.log, "-", "+")).map(([, fields]) => JSON.parse(fields[1] ?? "{}") as { type: string; status?: string; error?: { code?: string } });
  const meta = await redis.hgetall(keys.meta);
  const viewerEnd = recorder.events.find((event) => event.taskId === taskId && event.type === "end");
  const details = `${context}\n${JSON.stringify({ meta, types: entries.map((entry) => entry.type) })}`;
  expect(entries.filter((entry) => entry.type === "end"), details).toHaveLength(1);
  expect(entries.at(-1), details).toMatchObject({ type: "end", status: "cancelled", error: { code: "CONVERSATION_DELETED" } });
  expect(entries.filter((entry) => entry.type === "start" || entry.type === "reset").map((entry) => entry.type), details).toEqual(["start"]);
  expect(meta.state, details).toBe("ended");
  expect(meta.incarnation, details).toBe(parseCursor(viewerEnd?.cursor ?? "")?.incarnation);
  expect(Number(meta.endSeq), details).toBe(entries.length);
  const ttlMs = await redis.pttl(keys.log);
  expect(ttlMs, details).toBeGreaterThan(0);
  expect(ttlMs, details).toBeLessThanOrEqual(60_000);
}

type Deleted = Awaited<ReturnType<typeof deleteAndWaitForEnd>>;

/**
 * Holds the task's row (SELECT … FOR UPDATE) until the worker's final save waits on it, runs
 * `fault` (which ends the lock its own way), deletes the conversation, and runs `undo` in any case.
 */
async function deleteDuringFinalSave(generating: Generating, fault: (locker: pg.Client, observer: pg.Client) => Promise<void>, undo: () => void): Promise<Deleted> {
  const locker = await connectToDatabase(databaseUrl);
  const observer = await connectToDatabase(databaseUrl);
  try {
    await locker.query("BEGIN");
    await locker.query("SELECT id FROM messages WHERE task_id = $1 FOR UPDATE", [generating.taskId]);
    await expect.poll(async () => (await finalSavesWaitingOnLock(observer)).length > 0, { timeout: 30_000, interval: 50, message: "the final save to wait on the row lock" }).toBe(true);
    await fault(locker, observer);
    return await deleteAndWaitForEnd(generating);
  } finally {
    undo();
    await Promise.all([locker.end().catch(() => undefined), observer.end().catch(() => undefined)]);
  }
}

/** One end (cancelled, CONVERSATION_DELETED) soon after the delete, and the conversation gone; returns the failure context. */
async function expectOneDeletedEnd(generating: Generating, { report, endAfterDeleteMs }: Deleted): Promise<string> {
  const context = `${JSON.stringify({ ...report, text: undefined, endAfterDeleteMs })}\n${worker.output().slice(-3_000)}`;
  expect(report, context).toMatchObject({ ends: 1, endStatus: "cancelled", lost: 0, duplicated: 0, outOfOrder: 0, resets: 0 });
  const end = generating.recorder.events.find((event) => event.taskId === generating.taskId && event.type === "end");
  expect(end?.data, context).toMatchObject({ status: "cancelled", error: { code: "CONVERSATION_DELETED" } });
  expect(endAfterDeleteMs, context).toBeLessThan(5_000);
  // The conversation and its stream are gone for the API.
  const gone = await generating.session.call("GET", `/api/conversations/${generating.conversationId}`);
  expect(gone.status, context).toBe(404);
  return context;
}

describe("deleting a conversation while its reply generates", () => {
  it("mid-stream: one end (cancelled, CONVERSATION_DELETED) at once; the worker stops and writes nothing more", async () => {
    const redis = connectTestRedis();
    const generating = await startGenerating(131, 400);
    const context = await expectOneDeletedEnd(generating, await deleteAndWaitForEnd(generating));
    // Its next flush is refused by the ended log (or, cancelled first, its save finds no row).
    await expect.poll(() => new RegExp(`"taskId":"${generating.taskId}"[^\\n]*"msg":"(attempt superseded; stopping without saving|the task's row is gone; ending the stream as deleted)"`).test(worker.output()), { timeout: 30_000, interval: 50, message: "the worker to stop" }).toBe(true);
    await expectTombstone(redis, generating, context);
  }, 90_000);

  it("while the worker waits on its final save: the save finds no row, and nothing is written after the tombstone", async () => {
    const redis = connectTestRedis();
    const generating = await startGenerating(132, 30);
    const deleted = await deleteDuringFinalSave(
      generating,
      async (locker, observer) => {
        // Cut the worker off from PostgreSQL and end its held statement: the save now retries, unable to commit.
        postgresProxy.setMode({ kind: "drop" });
        for (const pid of await finalSavesWaitingOnLock(observer)) await observer.query("SELECT pg_terminate_backend($1)", [pid]);
        await locker.query("ROLLBACK");
        await expect.poll(() => new RegExp(`"taskId":"${generating.taskId}"[^\\n]*"msg":"final save failed; retrying"`).test(worker.output()), { timeout: 30_000, interval: 50, message: "a final-save retry" }).toBe(true);
      },
      () => postgresProxy.setMode({ kind: "pass" }),
    );
    const context = await expectOneDeletedEnd(generating, deleted);
    // The save finds no row; the worker's own `end` (cancelled/CONVERSATION_DELETED) is refused by the tombstone.
    await workerLogged(generating.taskId, "the task's row is gone; ending the stream as deleted");
    await expectTombstone(redis, generating, context);
  }, 120_000);

  it("between the save's commit and the worker's end: the end is refused by the tombstone, the log is not recreated", async () => {
    const redis = connectTestRedis();
    const generating = await startGenerating(133, 30);
    const deleted = await deleteDuringFinalSave(
      generating,
      async (locker, observer) => {
        // Freeze the worker's Redis, then let the save commit: the worker now tries to write its `end`.
        redisProxy.setMode({ kind: "pause" });
        await locker.query("ROLLBACK");
        await expect.poll(async () => (await observer.query<{ status: string }>("SELECT status FROM messages WHERE task_id = $1", [generating.taskId])).rows[0]?.status, { timeout: 30_000, interval: 50, message: "the save to commit" }).toBe("completed");
      },
      () => redisProxy.setMode({ kind: "pass" }),
    );
    const context = await expectOneDeletedEnd(generating, deleted);
    // The worker's `end` found the stream ended (its first one wins, PROTOCOL.md 8.2) and it finished.
    await workerLogged(generating.taskId, "stream completed");
    await expectTombstone(redis, generating, context);
  }, 120_000);
});
