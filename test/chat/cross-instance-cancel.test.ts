import { beforeAll, describe, expect, it } from "vitest";
import type { SluiceProcess } from "../support/sluice/sluice-process.ts";
import { textOf } from "../support/client/read-sse.ts";
import { expectOneEndLast, registerUser, replyOf, waitForFinalReply, type ChatUser } from "../support/client/chat-api.ts";
import { useSluice } from "../support/sluice/use-sluice.ts";
import { countOf, watchStream } from "../support/client/watch-stream.ts";

// Two API processes and one worker process on one database, Redis prefix and AUTH_SECRET.
// A default reply is 150 words at 50 words/s (~3 s): long enough to cancel mid-stream.
let apiA: SluiceProcess;
let apiB: SluiceProcess;
let worker: SluiceProcess;
let user: ChatUser;

const sluice = useSluice({
  label: "xcancel",
  mode: "processes",
  topology: { apis: 2, workers: 1 },
  recovery: "shipped",
  env: { SIMULATED_TOKENS_PER_SECOND: "50", SIMULATED_TOKEN_COUNT: "150", COALESCE_WINDOW_MS: "0" },
});
beforeAll(async () => {
  [apiA, apiB] = sluice.apis as [SluiceProcess, SluiceProcess];
  worker = sluice.workers[0]!;
  user = await registerUser(sluice.url, "xcancel");
});

describe("cancel from another API process", () => {
  it("ends the stream watched on A with exactly one end/cancelled and saves the streamed partial text", async () => {
    const conversation = await user.createConversation();
    const accepted = await user.send(conversation.id, "Write a long story");
    const watched = watchStream(user, accepted.taskId, apiA.url);
    await watched.until((events) => countOf("text-delta")(events) >= 3, "three text deltas");

    const cancel = await user.call("POST", `/api/stream/${accepted.taskId}/cancel`, { baseUrl: apiB.url ?? "" });
    expect(cancel.status, cancel.text).toBe(202);
    expect(cancel.body).toEqual({ taskId: accepted.taskId, status: "cancelling" });

    const stream = await watched.done;
    const end = expectOneEndLast(stream);
    expect(end.status).toBe("cancelled");
    const streamed = textOf(stream.events);
    expect(streamed.length).toBeGreaterThan(0);
    expect(stream.events.filter((event) => event.event === "text-delta").length).toBeLessThan(150);

    const reply = await waitForFinalReply(user, conversation.id, accepted.taskId);
    expect(reply.status).toBe("cancelled");
    expect(reply.content).toBe(streamed);
    // B sees the same saved message, and a late reader on B the same stream.
    expect(replyOf(await user.conversation(conversation.id, apiB.url), accepted.taskId).content).toBe(streamed);
    const late = await user.stream(accepted.taskId, { baseUrl: apiB.url ?? "" });
    expect(late.events.map((event) => event.id)).toEqual(stream.events.map((event) => event.id));

    // Cancelling a finished generation changes nothing.
    expect((await user.call("POST", `/api/stream/${accepted.taskId}/cancel`, { baseUrl: apiB.url ?? "" })).status).toBe(202);
    expect((await waitForFinalReply(user, conversation.id, accepted.taskId)).status).toBe("cancelled");
  });

  it("a client that drops its connection does not cancel: the reply completes", async () => {
    const conversation = await user.createConversation();
    const words = Array.from({ length: 40 }, (_, index) => `w${index}`).join(" ");
    const accepted = await user.send(conversation.id, `echo:${words}`);
    const watched = watchStream(user, accepted.taskId, apiA.url);
    await watched.until((events) => countOf("text-delta")(events) >= 2, "two text deltas");
    watched.abort();
    await watched.done;
    expect(watched.events.some((event) => event.event === "end")).toBe(false);

    const reply = await waitForFinalReply(user, conversation.id, accepted.taskId);
    expect(reply.status).toBe("completed");
    expect(reply.content).toBe(words);
    const replay = await user.stream(accepted.taskId, { baseUrl: apiB.url ?? "" });
    expect(expectOneEndLast(replay).status).toBe("completed");
    expect(textOf(replay.events)).toBe(words);
    expect(worker.output()).not.toMatch(/"level":(50|60)/);
  });
});
