/**
 * Fault 8: Redis reaches `maxmemory` (policy noeviction, the production setting in
 * docs/operations.md) while a reply streams, so every write is refused with an OOM
 * reply. A new message gets a fast 503 STORE_FULL; the running generation fails with
 * STORE_FULL, is saved as failed with exactly the text its client saw, and its one
 * `end` reaches the client once memory is freed (the log refuses `end` while full, so
 * until then the client sees heartbeats, not a hang); no process restarts; new work completes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStreamRecorder } from "../support/client/stream-recorder.ts";
import { registerUser, waitForFinalReply } from "../support/client/chat-api.ts";
import { echoPrompt, seededRandom } from "../support/chaos.ts";
import { startPrivateRedis, type PrivateRedis } from "../support/servers/private-redis.ts";
import { clusterStartTimeoutMs } from "../support/sluice/environment.ts";
import { startSluice, type ProcessSluice } from "../support/sluice/start-sluice.ts";
import { isAlive } from "../support/servers/is-alive.ts";

let redis: PrivateRedis;
let cluster: ProcessSluice;

beforeAll(async () => {
  redis = await startPrivateRedis({ appendOnly: false, maxmemory: "0" });
  cluster = await startSluice({ mode: "processes", env: { REDIS_URL: redis.url, SIMULATED_TOKENS_PER_SECOND: "100" }, topology: { apis: 1, workers: 1 }, label: "oom" });
}, clusterStartTimeoutMs);

afterAll(async () => {
  await cluster.stop();
  await redis.stop();
});

const fillerKey = "fault-test:filler";

/**
 * A 4 MiB key, then maxmemory 1 MiB below what Redis now uses: every write is refused
 * (noeviction), as on a Redis that filled up, and no client's buffers going up and down
 * can bring it back under the limit. Deleting the key is what frees it.
 */
async function fillRedis(): Promise<void> {
  const admin = redis.admin();
  await admin.set(fillerKey, "x".repeat(4 * 1024 * 1024));
  const usedBytes = Number(/used_memory:(\d+)/.exec(await admin.info("memory"))?.[1]);
  expect(usedBytes).toBeGreaterThan(4 * 1024 * 1024);
  await admin.config("SET", "maxmemory", String(usedBytes - 1024 * 1024));
  await expect(admin.set("fault-test:probe", "1")).rejects.toThrow(/^OOM /);
}

async function freeRedis(): Promise<void> {
  const admin = redis.admin();
  await admin.del(fillerKey);
  await admin.config("SET", "maxmemory", "0");
}

describe("Redis out of memory", () => {
  it("gives new messages 503 STORE_FULL, fails the running stream once with STORE_FULL as saved, and recovers without a restart", async () => {
    const pids = [...cluster.apis, ...cluster.workers].map((process) => process.pid);
    const session = await registerUser(cluster.url, "oom");
    const recorder = createStreamRecorder(session);
    const running = (await session.createConversation()).id;
    const spare = (await session.createConversation()).id;
    // ~2,500 characters at 4 per token and 100 tokens/s: about 6 s, so it is mid-stream when memory runs out.
    const { prompt } = echoPrompt(seededRandom(81), 400);
    const task = await session.send(running, prompt);
    const deadline = AbortSignal.timeout(90_000);
    const following = recorder.follow(task.taskId, () => ({ signal: deadline }), { deadlineMs: 90_000 });
    await expect.poll(() => recorder.report(task.taskId).text.length > 0, { timeout: 30_000, interval: 50, message: "the stream to show text" }).toBe(true);

    await fillRedis();
    const context = (): string => `${JSON.stringify({ ...recorder.report(task.taskId), text: undefined })}\n${cluster.output().slice(-4_000)}`;

    // (a) A clear, fast error for new work: 503 with a stable code, not a 500 and not a hang.
    const refused = await session.call("POST", `/api/conversations/${spare}/messages`, { body: { content: "echo:while full" }, signal: AbortSignal.timeout(15_000) });
    expect(refused.status, context()).toBe(503);
    expect(refused.body, context()).toMatchObject({ error: { code: "STORE_FULL" } });

    // (b) The running generation fails with STORE_FULL and is saved while Redis is still full...
    const saved = await waitForFinalReply(session, running, task.taskId, 30_000);
    expect(saved, context()).toMatchObject({ status: "failed", error: { code: "STORE_FULL" } });
    // ...but its `end` cannot be appended yet: the client has no terminal event, and no second one later.
    expect(recorder.report(task.taskId).ends, context()).toBe(0);

    await freeRedis();
    const report = await following;
    expect(report, context()).toMatchObject({ ends: 1, endStatus: "failed", lost: 0, duplicated: 0, outOfOrder: 0 });
    const end = recorder.events.find((event) => event.taskId === task.taskId && event.type === "end");
    expect(end?.data, context()).toMatchObject({ status: "failed", error: { code: "STORE_FULL" } });
    // The saved message is exactly what the client saw: no refused delta was saved.
    expect(saved.content, context()).toBe(report.text);

    // (c) No crash loop: the same processes, ready again, and they take new work.
    for (const pid of pids) expect(isAlive(pid), `process ${pid} exited\n${cluster.output().slice(-4_000)}`).toBe(true);
    await expect.poll(async () => (await fetch(`${cluster.url}/readyz`)).status === 200, { timeout: 30_000, interval: 50, message: "/readyz to answer 200" }).toBe(true);
    const after = await session.send(spare, "echo:after memory was freed");
    const afterReport = await recorder.follow(after.taskId, () => ({ signal: AbortSignal.timeout(30_000) }), { deadlineMs: 30_000 });
    expect(afterReport, context()).toMatchObject({ ends: 1, endStatus: "completed", text: "after memory was freed", lost: 0, duplicated: 0 });
    expect([...cluster.apis, ...cluster.workers].map((process) => process.pid)).toEqual(pids);
  }, 150_000);
});
