import { beforeAll, describe, expect, it } from "vitest";
import { readSse, readSseConnection, textOf, type SseEvent, type SseResponse } from "../support/client/read-sse.ts";
import { expectErrorShape, expectOneEndLast, registerUser, replyOf, waitForFinalReply, type AcceptedJson, type ApiAnswer, type ChatUser } from "../support/client/chat-api.ts";
import { useSluice } from "../support/sluice/use-sluice.ts";

// 40 words at 80 words/s: a reply runs ~0.5 s, so a read can stop mid-stream and resume.
let user: ChatUser;
const sluice = useSluice({ label: "post_stream", env: { SIMULATED_TOKENS_PER_SECOND: "80", SIMULATED_TOKEN_COUNT: "40", COALESCE_WINDOW_MS: "0" } });
// No worker: every generation stays queued, so a stream stays open until its client leaves.
const queued = useSluice({ label: "post_stream_queued", topology: { apis: 1, workers: 0 }, env: { LIMIT_OPEN_STREAMS_PER_USER: "1" } });
beforeAll(async () => {
  user = await registerUser(sluice.url, "post_stream");
});

const eventStream = { accept: "text/event-stream" };

/** POSTs `path` asking for the stream, with the user's token, and reads it (to its end or `stopAfter`). */
function postForStream(
  as: ChatUser,
  path: string,
  body: unknown,
  options: { headers?: Record<string, string>; stopAfter?: (event: SseEvent, all: SseEvent[]) => boolean } = {},
): Promise<SseResponse> {
  return readSse(`${as.baseUrl}${path}`, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { authorization: `Bearer ${as.token}`, "content-type": "application/json", ...eventStream, ...options.headers },
    ...(options.stopAfter ? { stopAfter: options.stopAfter } : {}),
  });
}

function acceptedOf(stream: SseResponse): AcceptedJson {
  const first = stream.events[0];
  expect(first?.event).toBe("accepted");
  expect(first?.id).toBeUndefined();
  return first?.json as unknown as AcceptedJson;
}

const asAnswer = (response: SseResponse): ApiAnswer => ({ status: response.status, body: JSON.parse(response.body) as unknown, text: response.body, headers: response.headers });

const ids = (events: readonly SseEvent[]): Array<string | undefined> => events.map((event) => event.id);

describe("a POST that starts a generation answers its stream (Accept: text/event-stream)", () => {
  it("200 with the accepted event first, then exactly the stream GET streamUrl serves, one end last; the reply is saved", async () => {
    const conversation = await user.createConversation();
    const posted = await postForStream(user, `/api/conversations/${conversation.id}/messages`, { content: "Explain resumable streams" });
    expect(posted.status).toBe(200);
    expect(posted.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const accepted = acceptedOf(posted);
    expect(accepted.taskId).toMatch(/^task_/);
    expect(accepted.userMessage?.content).toBe("Explain resumable streams");
    expect(accepted.assistantMessage.status).toBe("streaming");
    const logEvents = posted.events.slice(1);
    expect(logEvents[0]?.event).toBe("start");
    expect(posted.events.filter((event) => event.event === "accepted")).toHaveLength(1);
    expectOneEndLast(posted);

    // The log read again through the accepted streamUrl: the same events with the same ids.
    const again = await readSse(`${sluice.url}${accepted.streamUrl}`);
    expect(again.events.map((event) => [event.id, event.data])).toEqual(logEvents.map((event) => [event.id, event.data]));
    const reply = await waitForFinalReply(user, conversation.id, accepted.taskId);
    expect(reply.id).toBe(accepted.assistantMessage.id);
    expect(reply.content).toBe(textOf(logEvents));
  });

  it("a client that drops the POST's stream resumes it at streamUrl with the last id: nothing lost, nothing twice", async () => {
    const conversation = await user.createConversation();
    const first = await postForStream(user, `/api/conversations/${conversation.id}/messages`, { content: "Explain cursors" }, { stopAfter: (_event, all) => all.filter((event) => event.event === "text-delta").length >= 3 });
    const accepted = acceptedOf(first);
    const cursor = first.events.at(-1)?.id ?? "";
    expect(cursor).not.toBe("");
    const resumed = await readSse(`${sluice.url}${accepted.streamUrl}`, { headers: { "last-event-id": cursor } });
    expect(resumed.status).toBe(200);
    expectOneEndLast(resumed);
    const whole = await readSse(`${sluice.url}${accepted.streamUrl}`);
    expect([...ids(first.events.slice(1)), ...ids(resumed.events)]).toEqual(ids(whole.events));
    const reply = await waitForFinalReply(user, conversation.id, accepted.taskId);
    expect(reply.content).toBe(textOf([...first.events.slice(1), ...resumed.events]));
  });

  it("an edit and a regenerate answer their streams the same way", async () => {
    const conversation = await user.createConversation();
    const sent = acceptedOf(await postForStream(user, `/api/conversations/${conversation.id}/messages`, { content: "echo:first" }));
    await waitForFinalReply(user, conversation.id, sent.taskId);

    const regenerated = await postForStream(user, `/api/conversations/${conversation.id}/regenerate`, {});
    const regeneratedTask = acceptedOf(regenerated).taskId;
    expect(regeneratedTask).not.toBe(sent.taskId);
    expectOneEndLast(regenerated);
    expect(textOf(regenerated.events.slice(1))).toBe("first");
    await waitForFinalReply(user, conversation.id, regeneratedTask);

    const edited = await postForStream(user, `/api/conversations/${conversation.id}/messages/${sent.userMessage?.id ?? ""}/edit`, { content: "echo:second" });
    const editedAccepted = acceptedOf(edited);
    expectOneEndLast(edited);
    expect(textOf(edited.events.slice(1))).toBe("second");
    const saved = await waitForFinalReply(user, conversation.id, editedAccepted.taskId);
    expect(saved.content).toBe("second");
    expect(replyOf(await user.conversation(conversation.id), editedAccepted.taskId).id).toBe(editedAccepted.assistantMessage.id);
  });

  it("an Idempotency-Key retry answers the first request's generation from its first event and starts nothing", async () => {
    const conversation = await user.createConversation();
    const headers = { "idempotency-key": "post-stream-retry-1" };
    const first = await postForStream(user, `/api/conversations/${conversation.id}/messages`, { content: "echo:once" }, { headers });
    const retried = await postForStream(user, `/api/conversations/${conversation.id}/messages`, { content: "echo:once" }, { headers });
    expect(acceptedOf(retried).taskId).toBe(acceptedOf(first).taskId);
    expect(retried.events.slice(1).map((event) => [event.id, event.data])).toEqual(first.events.slice(1).map((event) => [event.id, event.data]));
    await waitForFinalReply(user, conversation.id, acceptedOf(first).taskId);
    expect((await user.conversation(conversation.id)).messages.map((message) => message.role)).toEqual(["user", "assistant"]);
  });

  it("refusals come before anything starts, in the one error shape: unknown conversation, empty message", async () => {
    const unknown = await postForStream(user, "/api/conversations/00000000-0000-4000-8000-000000000000/messages", { content: "hello" });
    expect(unknown.status).toBe(404);
    expectErrorShape(asAnswer(unknown), "NOT_FOUND");
    const conversation = await user.createConversation();
    const empty = await postForStream(user, `/api/conversations/${conversation.id}/messages`, { content: "  " });
    expect(empty.status).toBe(400);
    expectErrorShape(asAnswer(empty), "VALIDATION_FAILED");
    expect((await user.conversation(conversation.id)).messages).toEqual([]);
  });

  it("a POST is never a resume: a Last-Event-ID sent with it is ignored, and the stream starts at its first event", async () => {
    const conversation = await user.createConversation();
    const posted = await postForStream(user, `/api/conversations/${conversation.id}/messages`, { content: "echo:from the start" }, { headers: { "last-event-id": "abc-5" } });
    expect(posted.status).toBe(200);
    expect(posted.events.map((event) => event.event).slice(0, 2)).toEqual(["accepted", "start"]);
    expect(textOf(posted.events.slice(1))).toBe("from the start");
    await waitForFinalReply(user, conversation.id, acceptedOf(posted).taskId);
  });

  it("without Accept: text/event-stream the answer stays the 202 and its JSON", async () => {
    const conversation = await user.createConversation();
    const answer = await user.call<AcceptedJson>("POST", `/api/conversations/${conversation.id}/messages`, { body: { content: "echo:plain" }, headers: { accept: "application/json" } });
    expect(answer.status).toBe(202);
    expectOneEndLast(await user.stream(answer.body.taskId));
    await waitForFinalReply(user, conversation.id, answer.body.taskId);
  });
});

/** Opens `url` (a GET of a stream, or a POST asking for one), resolves its status once the answer's head is in, and leaves it open until `leave` aborts it. */
async function openAndHold(url: string, leave: AbortSignal, post?: { token: string; body: unknown }): Promise<{ status: number; closed: Promise<unknown> }> {
  let answered!: (status: number) => void;
  const head = new Promise<number>((resolve) => (answered = resolve));
  const closed = readSseConnection(url, {
    signal: leave,
    ...(post ? { method: "POST" as const, body: JSON.stringify(post.body), headers: { authorization: `Bearer ${post.token}`, "content-type": "application/json", ...eventStream } } : {}),
    onResponse: (status) => answered(status),
    onMessage: () => undefined,
  });
  // A refusal's body is read to its end before the connection resolves; an error before any answer resolves it too.
  void closed.then((connection) => answered(connection.status));
  return { status: await head, closed };
}

describe("the POST's stream holds one of the user's open-stream slots, as a GET's does", () => {
  it("at LIMIT_OPEN_STREAMS_PER_USER the POST still starts its generation and answers the 202; a POST's open stream counts; leaving frees the slot", async () => {
    const owner = await registerUser(queued.url, "post_stream_limit");
    const holding = await owner.createConversation();
    const holder = await owner.send(holding.id, "echo:holder");
    const leaveHolder = new AbortController();
    const held = await openAndHold(`${queued.url}${holder.streamUrl}`, leaveHolder.signal);
    expect(held.status).toBe(200);

    // No slot for a stream: the generation is what the POST is for, so it starts, and the answer is the 202.
    const other = await owner.createConversation();
    const answered = await postForStream(owner, `/api/conversations/${other.id}/messages`, { content: "echo:no slot" });
    expect(answered.status).toBe(202);
    expect(answered.headers.get("content-type")).toMatch(/^application\/json/);
    const accepted = JSON.parse(answered.body) as AcceptedJson;
    expect((await owner.conversation(other.id)).messages.map((message) => [message.role, message.content])).toEqual([
      ["user", "echo:no slot"],
      ["assistant", ""],
    ]);
    // Its stream is refused while the slot is held, and served once the holder leaves.
    const refused = await openAndHold(`${queued.url}${accepted.streamUrl}`, new AbortController().signal);
    expect(refused.status).toBe(429);
    leaveHolder.abort();
    await held.closed;
    const leaveReader = new AbortController();
    await expect.poll(async () => {
      const reader = await openAndHold(`${queued.url}${accepted.streamUrl}`, leaveReader.signal);
      return reader.status;
    }, { timeout: 5_000 }).toBe(200);

    // A POST's stream that stays open (its generation is queued) holds the slot: a GET is refused, until it leaves.
    // Until the reader's slot is released (asynchronously) a POST gets the 202, so poll with new conversations.
    leaveReader.abort();
    const leavePost = new AbortController();
    let posted: Awaited<ReturnType<typeof openAndHold>> | undefined;
    await expect.poll(async () => {
      const fresh = await owner.createConversation();
      posted = await openAndHold(`${queued.url}/api/conversations/${fresh.id}/messages`, leavePost.signal, { token: owner.token, body: { content: "echo:held by a POST" } });
      return posted.status;
    }, { timeout: 5_000 }).toBe(200);
    expect((await openAndHold(`${queued.url}${holder.streamUrl}`, new AbortController().signal)).status).toBe(429);
    leavePost.abort();
    await posted?.closed;
    const leaveLast = new AbortController();
    await expect.poll(async () => (await openAndHold(`${queued.url}${holder.streamUrl}`, leaveLast.signal)).status, { timeout: 5_000 }).toBe(200);
    leaveLast.abort();
  });
});

// Logs expire one second after their end, so an Idempotency-Key replay can outlive its stream.
const shortLived = useSluice({ label: "post_stream_ttl", env: { STREAM_TTL_SECONDS: "1" } });

describe("an Idempotency-Key replay of a streamed POST after the log expired", () => {
  it("is 410 STREAM_EXPIRED, as GET streamUrl answers, and starts nothing; the saved reply stays readable", async () => {
    const owner = await registerUser(shortLived.url, "post_stream_ttl");
    const conversation = await owner.createConversation();
    const path = `/api/conversations/${conversation.id}/messages`;
    const headers = { "idempotency-key": "post-stream-expired-1" };
    const first = await postForStream(owner, path, { content: "echo:kept" }, { headers });
    const accepted = acceptedOf(first);
    expectOneEndLast(first);
    await waitForFinalReply(owner, conversation.id, accepted.taskId);
    // The log's expiry is Redis's to run: wait until GET streamUrl says it is gone.
    await expect.poll(async () => (await readSse(`${shortLived.url}${accepted.streamUrl}`)).status, { timeout: 10_000 }).toBe(410);

    const replayed = await postForStream(owner, path, { content: "echo:kept" }, { headers });
    expect(replayed.status).toBe(410);
    expectErrorShape(asAnswer(replayed), "STREAM_EXPIRED");
    const saved = await owner.conversation(conversation.id);
    expect(saved.messages.map((message) => [message.role, message.content])).toEqual([
      ["user", "echo:kept"],
      ["assistant", "kept"],
    ]);
  });
});
