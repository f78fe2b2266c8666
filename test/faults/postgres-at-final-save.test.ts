/**
 * Fault 9: PostgreSQL hangs (fault proxy in `pause`) or is unreachable (`drop`)
 * exactly when the worker saves the final message. No API call hangs past its
 * timeout (a fast 503), the save is retried, exactly one message is saved, and
 * `end` reaches the client only after the commit (PROTOCOL.md: the saved
 * message exists when `end` says completed).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../support/servers/test-database.ts";
import { whenOutput } from "../support/sluice/sluice-process.ts";
import { startFaultProxy, type FaultMode, type FaultProxy } from "../support/servers/fault-proxy.ts";
import { createStreamRecorder } from "../support/client/stream-recorder.ts";
import { ApiError, registerUser } from "../support/client/chat-api.ts";
import { echoPrompt, seededRandom } from "../support/chaos.ts";
import { clusterStartTimeoutMs } from "../support/sluice/environment.ts";
import { startSluice, type ProcessSluice } from "../support/sluice/start-sluice.ts";

const statementTimeoutMs = 1_000;
let proxy: FaultProxy;
let cluster: ProcessSluice;

beforeAll(async () => {
  const databaseUrl = await createTestDatabase("pgfault");
  proxy = await startFaultProxy(databaseUrl);
  cluster = await startSluice({ mode: "processes", env: { DATABASE_URL: proxy.url, DB_STATEMENT_TIMEOUT_MS: String(statementTimeoutMs), SIMULATED_TOKENS_PER_SECOND: "200" }, label: "pgfault" });
}, clusterStartTimeoutMs);
afterAll(async () => {
  proxy?.setMode({ kind: "pass" });
  await cluster?.stop();
  await proxy?.close();
});

async function timedApiCall(operation: () => Promise<unknown>): Promise<{ outcome: number | string; durationMs: number }> {
  const startedAt = Date.now();
  const outcome = await operation().then(
    () => "ok",
    (error: unknown) => (error instanceof ApiError ? error.status : String(error)),
  );
  return { outcome, durationMs: Date.now() - startedAt };
}

async function faultAtFinalSave(mode: FaultMode, seed: number): Promise<void> {
  const session = await registerUser(cluster.url, "pgfault");
  const conversationId = (await session.createConversation()).id;
  const { prompt, expected } = echoPrompt(seededRandom(seed), 60);
  const accepted = await session.send(conversationId, prompt);
  const recorder = createStreamRecorder(session);
  const following = recorder.follow(accepted.taskId, () => ({ idleTimeoutMs: 60_000 }), { deadlineMs: 90_000 });
  await expect.poll(() => recorder.report(accepted.taskId).text.length > 0, { timeout: 20_000, interval: 50, message: "the stream to start" }).toBe(true);
  const retriesBefore = cluster.output().split("final save failed; retrying").length;
  proxy.setMode(mode);
  let endSeenDuringFault = false;
  try {
    // The worker reaches the save with PostgreSQL unavailable and retries it.
    await whenOutput([...cluster.apis, ...cluster.workers], () => cluster.output().split("final save failed; retrying").length > retriesBefore || undefined, "a final-save retry");
    endSeenDuringFault = recorder.report(accepted.taskId).ends > 0;
    // An API call that needs PostgreSQL answers 503 within its timeout instead of hanging.
    const call = await timedApiCall(async () => (await session.conversation(conversationId)).messages);
    expect(call.outcome).toBe(503);
    expect(call.durationMs).toBeLessThan(3 * statementTimeoutMs + 2_000);
  } finally {
    proxy.setMode({ kind: "pass" });
  }
  expect(endSeenDuringFault, "`end` arrived while the final save could not commit").toBe(false);
  await following;
  // Read at once after `end`: the row must already be final.
  const rows = ((await session.conversation(conversationId)).messages).filter((message) => message.taskId === accepted.taskId);
  const report = recorder.report(accepted.taskId);
  const context = `${JSON.stringify({ ...report, text: undefined })}\n${cluster.output().slice(-3_000)}`;
  expect(rows.map((row) => [row.status, row.content]), context).toEqual([["completed", expected]]);
  expect(report, context).toMatchObject({ ends: 1, endStatus: "completed", lost: 0, duplicated: 0, outOfOrder: 0, text: expected });
}

describe("PostgreSQL unavailable at the final save", () => {
  it("paused (hung connections): the save is retried after the timeout, one message saved, end after the commit", async () => {
    await faultAtFinalSave({ kind: "pause" }, 91);
  }, 120_000);

  it("dropped (connections reset, new ones refused): same promises", async () => {
    await faultAtFinalSave({ kind: "drop" }, 92);
  }, 120_000);

  // pg's client-side timeouts carry no SQLSTATE; src/storage/database-errors.ts marks them by type
  // (DrizzleQueryError without SQLSTATE, DatabaseUnavailableError from the pool) so the API answers 503.
  it("a hung PostgreSQL gives 503 SERVICE_UNAVAILABLE with Retry-After, not 500", async () => {
    const session = await registerUser(cluster.url, "pghang");
    const conversationId = (await session.createConversation()).id;
    proxy.setMode({ kind: "pause" });
    try {
      const call = await timedApiCall(async () => (await session.conversation(conversationId)).messages);
      expect(call.durationMs).toBeLessThan(3 * statementTimeoutMs + 2_000);
      expect(call.outcome).toBe(503);
    } finally {
      proxy.setMode({ kind: "pass" });
    }
  }, 60_000);
});
