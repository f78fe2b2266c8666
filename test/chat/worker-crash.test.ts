import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSluiceProcess, whenOutput, type SluiceProcess } from "../support/sluice/sluice-process.ts";
import { textOf } from "../support/client/read-sse.ts";
import { expectOneEndLast, registerUser, waitForFinalReply, type ChatUser } from "../support/client/chat-api.ts";
import { startSluice, type InProcessInstance, type InProcessSluice } from "../support/sluice/start-sluice.ts";
import { countOf, watchStream } from "../support/client/watch-stream.ts";

// The API and the rescuing workers run in this process (fast to start); the workers that get
// SIGKILLed are real processes, both spawned up front because a spawn costs seconds here.
// Short locks so a dead worker's job is noticed in ~2 s. A reply is 150 words at 50 words/s (~3 s).
const workerEnv = {
  SIMULATED_TOKENS_PER_SECOND: "50",
  SIMULATED_TOKEN_COUNT: "150",
  COALESCE_WINDOW_MS: "0",
  JOB_LOCK_DURATION_MS: "2000",
  JOB_STALLED_INTERVAL_MS: "1000",
  ORPHAN_SWEEP_INTERVAL_MS: "500",
  ORPHAN_TIMEOUT_MS: "1000",
  SHUTDOWN_GRACE_MS: "0",
};

let api: InProcessSluice;
let user: ChatUser;
let victims: SluiceProcess[] = [];

/** A fresh worker in this process; its JOB_ATTEMPTS decides whether a stalled job is retried or failed. */
const startRescuer = (attempts: string): Promise<InProcessInstance> => api.startWorker({ ...workerEnv, JOB_ATTEMPTS: attempts });

/** The worker whose log shows it produced text for this task. */
async function workerRunning(taskId: string, candidates: readonly SluiceProcess[]): Promise<SluiceProcess> {
  return whenOutput(candidates, () => candidates.find((worker) => worker.output().includes(taskId) && worker.output().includes("first chunk received")), `a worker to run ${taskId}`);
}

beforeAll(async () => {
  api = await startSluice({ label: "crash", topology: { apis: 1, workers: 0 } });
  user = await registerUser(api.url, "crash");
  // LOG_LEVEL info: the victims' logs show which of them runs a task.
  victims = await Promise.all([0, 1].map(() => startSluiceProcess({ role: "worker", env: { ...api.env, ...workerEnv, LOG_LEVEL: "info", JOB_ATTEMPTS: "3" } })));
}, 90_000);
afterAll(async () => {
  await Promise.all(victims.map((worker) => worker.stop(2_000)));
  await api.stop();
});

describe("a worker killed mid-stream", () => {
  it("is replaced by another worker that continues the reply: the client sees continue, only the rest of the text and one end/completed", async () => {
    const conversation = await user.createConversation();
    const accepted = await user.send(conversation.id, "A long answer, please");
    const watched = watchStream(user, accepted.taskId);
    await watched.until((events) => countOf("text-delta")(events) >= 3, "three text deltas");
    const victim = await workerRunning(accepted.taskId, victims);
    const rescuer = await startRescuer("3");
    victim.kill("SIGKILL");
    await victim.exited;

    const stream = await watched.done;
    const kinds = stream.events.map((event) => event.event);
    // The simulated model continues a reply (PROTOCOL.md 4.3): no reset, the kept text stays.
    expect(kinds, JSON.stringify(kinds)).not.toContain("reset");
    const continueAt = kinds.indexOf("continue");
    expect(continueAt, JSON.stringify(kinds)).toBeGreaterThan(0);
    expect(stream.events[continueAt]?.json).toMatchObject({ type: "continue", attempt: 2 });
    expect(kinds.slice(continueAt + 1)).toContain("text-delta");
    expect(expectOneEndLast(stream).status).toBe("completed");

    const reply = await waitForFinalReply(user, conversation.id, accepted.taskId);
    expect(reply.status).toBe("completed");
    expect(reply.content).toBe(textOf(stream.events));
    expect(reply.content.split(" ")).toHaveLength(150);
    // A late reader gets the same result from the log.
    expect(textOf((await user.stream(accepted.taskId)).events)).toBe(reply.content);
    // Stopped so that in the next test the remaining worker process is the only one taking jobs.
    await rescuer.stop();
  });

  it("past the retry limit, with a fresh worker started, the stream ends failed and the message is failed, not streaming", async () => {
    const only = victims.find((worker) => worker.child.exitCode === null && worker.child.signalCode === null);
    if (!only) throw new Error("no live worker process left");
    const conversation = await user.createConversation();
    const accepted = await user.send(conversation.id, "Another long answer");
    const watched = watchStream(user, accepted.taskId);
    await watched.until((events) => countOf("text-delta")(events) >= 3, "three text deltas");
    await workerRunning(accepted.taskId, [only]);
    only.kill("SIGKILL");
    await only.exited;

    await startRescuer("1");
    const stream = await watched.done;
    const end = expectOneEndLast(stream);
    expect(end.status).toBe("failed");
    expect(["WORKER_LOST", "GENERATION_ORPHANED"]).toContain(end.error?.code);

    const reply = await waitForFinalReply(user, conversation.id, accepted.taskId, 10_000);
    expect(reply.status).toBe("failed");
    expect(reply.error?.code).toBe(end.error?.code);
    expect((await user.conversation(conversation.id)).activeGeneration).toBeNull();
    // The conversation is usable again.
    const next = await user.send(conversation.id, "echo:still works");
    expect(expectOneEndLast(await user.stream(next.taskId)).status).toBe("completed");
  });
});
