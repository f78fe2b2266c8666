import { beforeAll, describe, expect, it } from "vitest";
import { whenOutput, type SluiceProcess } from "../support/sluice/sluice-process.ts";
import { registerUser, waitForFinalReply, type ChatUser } from "../support/client/chat-api.ts";
import { analyseTask } from "../support/client/stream-recorder.ts";
import { closingHint, followStream, type ClientEvent, type FollowedStream } from "../support/client/follow-stream.ts";
import { clusterStartTimeoutMs, takeoverSettings } from "../support/sluice/environment.ts";
import { useSluice } from "../support/sluice/use-sluice.ts";

// SIGTERM is what an orchestrator sends on a deploy. A reply is 150 words at 50 words/s (~3 s),
// longer than the workers' 500 ms SHUTDOWN_GRACE_MS, so a stopping worker must hand its job back.
let user: ChatUser;

const cluster = useSluice({
  mode: "processes",
  label: "scaleterm",
  topology: { apis: 2, workers: 2 },
  redis: "private",
  env: { ...takeoverSettings, SIMULATED_TOKENS_PER_SECOND: "50", SIMULATED_TOKEN_COUNT: "150", SSE_RETRY_MS: "150" },
}, clusterStartTimeoutMs);
beforeAll(async () => {
  user = await registerUser(cluster.apis[0]?.url ?? "", "term");
}, clusterStartTimeoutMs);

const deltas = (count: number) => (events: readonly ClientEvent[]): boolean => events.filter((event) => event.type === "text-delta").length >= count;
const follow = (taskId: string, pickApi: (connection: number) => string | undefined): FollowedStream =>
  followStream({ taskId, token: user.token, pickApi, retryCapMs: 200, deadlineMs: 45_000 });
const runningOn = (taskId: string, workers: readonly SluiceProcess[]): Promise<SluiceProcess> =>
  whenOutput(workers, () => workers.find((worker) => worker.output().includes(taskId) && worker.output().includes("first chunk received")), `the worker running ${taskId}`);

describe("graceful shutdown", () => {
  it("SIGTERM on an API process: each open stream gets a retry: line and a clean close, then resumes on the other API", async () => {
    // The user's own API (the first) stays; the second one is stopped.
    const [apiB, apiA] = cluster.apis as [SluiceProcess, SluiceProcess];
    const tasks = await Promise.all([0, 1].map(async () => (await user.send((await user.createConversation()).id, "A long answer")).taskId));
    // Four viewers on A (then B after A goes away), one on B all along.
    const onA = Array.from({ length: 4 }, (_, index) => follow(tasks[index % 2] ?? "", (connection) => (connection === 0 ? apiA.url : apiB.url)));
    const onB = follow(tasks[0] ?? "", () => apiB.url);
    await Promise.all([...onA, onB].map((viewer) => viewer.until(deltas(3), "three text deltas")));

    apiA.kill("SIGTERM");
    const exit = await apiA.exited;
    await Promise.all([...onA, onB].map((viewer) => viewer.done));

    expect(exit).toEqual({ code: 0, signal: null });
    for (const viewer of onA) {
      const first = viewer.connections[0];
      expect(first, JSON.stringify(viewer.connections)).toMatchObject({ url: apiA.url, status: 200, finish: "closed", ended: false });
      // The hint came after the last event, i.e. with the close (the one sent on open has afterEvents 0).
      const hint = first === undefined ? undefined : closingHint(first);
      expect(hint, JSON.stringify(first?.retries)).toBeGreaterThanOrEqual(150);
      expect(viewer.connections.slice(1).every((connection) => connection.url === apiB.url)).toBe(true);
      expect(analyseTask(viewer.taskId, viewer.events)).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0, ends: 1, endStatus: "completed" });
    }
    expect(onB.connections).toHaveLength(1);
    expect(analyseTask(onB.taskId, onB.events)).toMatchObject({ lost: 0, duplicated: 0, ends: 1, endStatus: "completed" });
    expect(apiA.output()).toContain('"msg":"shutting down"');
    cluster.apis.splice(cluster.apis.indexOf(apiA), 1);
  });

  // After SHUTDOWN_GRACE_MS the stopping worker aborts its generations, which move their jobs back
  // to wait unsaved (src/worker/start-worker.ts); the other worker runs a new attempt.
  it("SIGTERM on a worker mid-generation with a short grace: the job is handed back and the other worker continues it (continue, one end)", async () => {
    const apiUrl = cluster.apis[0]?.url;
    const conversation = await user.createConversation();
    const accepted = await user.send(conversation.id, "Another long answer");
    const stream = follow(accepted.taskId, () => apiUrl);
    await stream.until(deltas(3), "three text deltas");
    const victim = await runningOn(accepted.taskId, cluster.workers);
    const survivor = cluster.workers.find((worker) => worker !== victim);
    const stoppedAt = Date.now();
    victim.kill("SIGTERM");
    const exit = await victim.exited;
    const exitMs = Date.now() - stoppedAt;
    cluster.workers.splice(cluster.workers.indexOf(victim), 1);
    await stream.done;

    expect(exit).toEqual({ code: 0, signal: null });
    // 500 ms of grace, then closing the connections: far less than the 10 s an orchestrator waits before SIGKILL.
    expect(exitMs).toBeLessThan(8_000);
    expect(victim.output()).toContain("shutdown grace period over; handing running jobs back");
    const verdict = analyseTask(stream.taskId, stream.events);
    expect(verdict, JSON.stringify(stream.events.map((event) => event.type))).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0, ends: 1, endStatus: "completed" });
    // The simulated model continues a reply (PROTOCOL.md 4.3): the new attempt begins with `continue`, no reset.
    const handedBack = `exit after ${exitMs} ms\n${victim.output().split("\n").filter((line) => !line.includes("first chunk")).slice(-15).join("\n")}`;
    expect(stream.events.some((event) => event.type === "continue"), handedBack).toBe(true);
    expect(verdict.resets, handedBack).toBe(0);
    expect(stream.events.at(-1)?.type).toBe("end");
    // The client can see `end` before the survivor's log line reaches our pipe: wait for the line.
    const completedLine = new RegExp(`"taskId":"${accepted.taskId}"[^\\n]*"msg":"stream completed"`);
    await whenOutput(survivor ? [survivor] : [], () => completedLine.test(survivor?.output() ?? "") || undefined, "the survivor's completion log line");
    const reply = await waitForFinalReply(user, conversation.id, accepted.taskId);
    expect(reply.status).toBe("completed");
    expect(reply.content).toBe(verdict.text);
    expect(reply.content.split(" ")).toHaveLength(150);
  });

  it("SIGTERM on a worker whose grace period is long enough: it finishes the generation itself (no reset) and then exits", async () => {
    const patient = await cluster.startWorker({ SHUTDOWN_GRACE_MS: "20000" });
    // Only the patient worker may take the next job.
    for (const other of cluster.workers.filter((worker) => worker !== patient)) {
      other.kill("SIGTERM");
      await other.exited;
      cluster.workers.splice(cluster.workers.indexOf(other), 1);
    }
    const apiUrl = cluster.apis[0]?.url;
    const conversation = await user.createConversation();
    const accepted = await user.send(conversation.id, "A last long answer");
    const stream = follow(accepted.taskId, () => apiUrl);
    await stream.until(deltas(3), "three text deltas");
    await runningOn(accepted.taskId, [patient]);
    patient.kill("SIGTERM");
    const [exit] = await Promise.all([patient.exited, stream.done]);

    expect(exit).toEqual({ code: 0, signal: null });
    const verdict = analyseTask(stream.taskId, stream.events);
    expect(verdict).toMatchObject({ lost: 0, duplicated: 0, ends: 1, endStatus: "completed", resets: 0 });
    expect(patient.output()).not.toContain("shutdown grace period over");
    const reply = await waitForFinalReply(user, conversation.id, accepted.taskId);
    expect(reply.status).toBe("completed");
    expect(reply.content).toBe(verdict.text);
    expect(reply.content.split(" ")).toHaveLength(150);
  });
});
