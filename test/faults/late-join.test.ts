/**
 * Fault 2: a client joins late, at every phase of a generation (PROTOCOL.md 4.2):
 * while it is queued, at its first token, mid-stream, right after `end`, and
 * after the log's retention (410 STREAM_EXPIRED, the saved message remains).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStreamRecorder, expectCompleteReply, type StreamRecorder } from "../support/client/stream-recorder.ts";
import { expectStatus, registerUser, waitForFinalReply, type ChatUser } from "../support/client/chat-api.ts";
import { echoPrompt, seededRandom } from "../support/chaos.ts";
import { clusterStartTimeoutMs } from "../support/sluice/environment.ts";
import { startSluice, type ProcessSluice } from "../support/sluice/start-sluice.ts";

let cluster: ProcessSluice;
let shortTtl: ProcessSluice;
const random = seededRandom(7);

beforeAll(async () => {
  // One job at a time, so a second task stays queued behind a running one.
  [cluster, shortTtl] = await Promise.all([
    startSluice({ mode: "processes", env: { WORKER_CONCURRENCY: "1", SIMULATED_TOKENS_PER_SECOND: "40" }, label: "latejoin" }),
    startSluice({ mode: "processes", env: { STREAM_TTL_SECONDS: "1", SIMULATED_TOKENS_PER_SECOND: "1000" }, label: "ttl" }),
  ]);
}, clusterStartTimeoutMs);
afterAll(async () => {
  await Promise.all([cluster?.stop(), shortTtl?.stop()]);
});

function expectClean(recorder: StreamRecorder, taskId: string, expected: string, label = ""): void {
  const report = recorder.report(taskId);
  expectCompleteReply(report, expected, `${label} ${JSON.stringify({ ...report, text: undefined })}`);
}

async function expectSavedOnce(session: ChatUser, conversationId: string, taskId: string, expected: string): Promise<void> {
  await waitForFinalReply(session, conversationId, taskId);
  const saved = ((await session.conversation(conversationId)).messages).filter((message) => message.taskId === taskId);
  expect(saved.map((message) => [message.status, message.content])).toEqual([["completed", expected]]);
}

describe("late join", () => {
  it("while queued: the join waits (200, no events) and then receives the whole stream", async () => {
    const session = await registerUser(cluster.url, "queued");
    const [first, second] = [(await session.createConversation()).id, (await session.createConversation()).id];
    // A long reply holds the only worker slot.
    const blocker = await session.send(first, echoPrompt(random, 300).prompt);
    const early = createStreamRecorder(session);
    await early.read(blocker.taskId, { abortAfterEvents: 2 });
    const { prompt, expected } = echoPrompt(random, 20);
    const queued = await session.send(second, prompt);
    const recorder = createStreamRecorder(session);
    let onJoined = (): void => undefined;
    const joined = new Promise<void>((resolve) => (onJoined = resolve));
    const following = recorder.follow(queued.taskId, () => ({ onResponse: () => onJoined() }));
    // The queued stream's response headers (or the follow's failure).
    await Promise.race([joined, following]);
    // The blocker is still running, so the joined task had not started when the client joined.
    const blockerRow = ((await session.conversation(first)).messages).find((message) => message.taskId === blocker.taskId);
    expect(blockerRow?.status).toBe("streaming");
    expect(recorder.events).toHaveLength(0);
    expectStatus(await session.call("POST", `/api/stream/${blocker.taskId}/cancel`), 202);
    await following;
    expect(recorder.events[0]?.type).toBe("start");
    expectClean(recorder, queued.taskId, expected);
    await expectSavedOnce(session, second, queued.taskId, expected);
  }, 60_000);

  it("at the first token, mid-stream and right after the end: each joiner gets the whole stream once", async () => {
    const session = await registerUser(cluster.url, "phases");
    const conversationId = (await session.createConversation()).id;
    // ~2,000 characters at 4 per token and 40 tokens/s: about 12 s, so the joins land in their phase on a loaded machine.
    const { prompt, expected } = echoPrompt(random, 300);
    const accepted = await session.send(conversationId, prompt);
    const watcher = createStreamRecorder(session);
    const watching = watcher.follow(accepted.taskId);
    const joiners: Array<{ phase: string; recorder: StreamRecorder; done: Promise<unknown> }> = [];
    const join = (phase: string, lastEventId?: string): void => {
      const recorder = createStreamRecorder(session);
      joiners.push({ phase, recorder, done: recorder.follow(accepted.taskId, () => (lastEventId === undefined ? {} : { lastEventId })) });
    };
    await expect.poll(() => watcher.events.some((event) => event.type === "text-delta"), { timeout: 15_000, interval: 50, message: "the first token" }).toBe(true);
    join("first token");
    const firstToken = watcher.events.find((event) => event.type === "text-delta");
    join("first token, with its cursor", firstToken?.cursor);
    await expect.poll(() => watcher.report(accepted.taskId).text.length >= expected.length / 2 || watcher.report(accepted.taskId).ends > 0, { timeout: 15_000, interval: 50, message: "mid-stream" }).toBe(true);
    const streamedForMs = (watcher.events.at(-1)?.at ?? 0) - (watcher.events[0]?.at ?? 0);
    expect(watcher.report(accepted.taskId).ends, `the reply ended before the mid-stream join (${streamedForMs} ms); slow it down`).toBe(0);
    join("mid-stream");
    await watching;
    join("right after end");
    await Promise.all(joiners.map((joiner) => joiner.done));
    expectClean(watcher, accepted.taskId, expected);
    for (const joiner of joiners) {
      const report = joiner.recorder.report(accepted.taskId);
      expect(report.connections, joiner.phase).toBe(1);
      // The joiner with a cursor already had the first token: it gets exactly the rest.
      const owed = joiner.phase.includes("cursor") ? expected.slice(String(firstToken?.data.delta).length) : expected;
      expectClean(joiner.recorder, accepted.taskId, owed, joiner.phase);
    }
    // Presenting the cursor of `end` means "I have everything": 204, no second end.
    const endCursor = watcher.events.find((event) => event.type === "end")?.cursor;
    const again = await createStreamRecorder(session).read(accepted.taskId, { lastEventId: endCursor });
    expect(again.status).toBe(204);
    await expectSavedOnce(session, conversationId, accepted.taskId, expected);
  }, 90_000);

  it("after the log's retention: 410 STREAM_EXPIRED, and the saved message is the streamed text", async () => {
    const session = await registerUser(shortTtl.url, "ttl");
    const conversationId = (await session.createConversation()).id;
    const { prompt, expected } = echoPrompt(random, 30);
    const accepted = await session.send(conversationId, prompt);
    const recorder = createStreamRecorder(session);
    await recorder.follow(accepted.taskId);
    expectClean(recorder, accepted.taskId, expected);
    // STREAM_TTL_SECONDS=1: Redis expires the log about a second after `end`.
    let last: { status: number; body: string } = { status: 0, body: "" };
    await expect.poll(async () => {
        const response = await fetch(`${shortTtl.url}/api/stream/${accepted.taskId}`, { headers: { authorization: `Bearer ${session.token}` } });
        last = { status: response.status, body: await response.text() };
        if (last.status === 200) return false;
        return true;
      }, { timeout: 20_000, interval: 50, message: "the log to expire" }).toBe(true);
    expect(last.status, last.body).toBe(410);
    expect(JSON.parse(last.body)).toMatchObject({ error: { code: "STREAM_EXPIRED" } });
    await expectSavedOnce(session, conversationId, accepted.taskId, expected);
    // Someone else's task is not found, not expired (no information leak).
    const stranger = await registerUser(shortTtl.url, "stranger");
    const foreign = await fetch(`${shortTtl.url}/api/stream/${accepted.taskId}`, { headers: { authorization: `Bearer ${stranger.token}` } });
    expect(foreign.status).toBe(404);
    await foreign.arrayBuffer();
  }, 60_000);
});
