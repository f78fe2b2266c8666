import { beforeAll, describe, expect, it } from "vitest";
import { textOf } from "../support/client/read-sse.ts";
import { expectErrorShape, expectOneEndLast, registerUser, waitForFinalReply, type AcceptedJson, type ChatUser } from "../support/client/chat-api.ts";
import { useSluice } from "../support/sluice/use-sluice.ts";

// 300 words at 100 words/s: a default reply runs ~3 s, long enough to overlap a second request; echo replies are short.
let user: ChatUser;
const sluice = useSluice({ label: "idem", env: { SIMULATED_TOKENS_PER_SECOND: "100", SIMULATED_TOKEN_COUNT: "300" } });
beforeAll(async () => {
  user = await registerUser(sluice.url, "idem");
});

const post = (conversationId: string, content: string, key?: string) =>
  user.call<AcceptedJson>("POST", `/api/conversations/${conversationId}/messages`, { body: { content }, ...(key === undefined ? {} : { headers: { "idempotency-key": key } }) });

describe("POST /api/conversations/:id/messages with an Idempotency-Key", () => {
  it("sent twice returns the same task and creates one user message and one reply", async () => {
    const conversation = await user.createConversation();
    const first = await post(conversation.id, "echo:only once", "key-sequential-1");
    const second = await post(conversation.id, "echo:only once", "key-sequential-1");
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.body.taskId).toBe(first.body.taskId);
    expect(second.body.assistantMessage.id).toBe(first.body.assistantMessage.id);
    expect(second.body.userMessage?.id).toBe(first.body.userMessage?.id);
    // The replayed streamUrl works (it carries a fresh read token).
    const stream = await user.stream(first.body.taskId);
    expectOneEndLast(stream);
    expect(textOf(stream.events)).toBe("only once");
    await waitForFinalReply(user, conversation.id, first.body.taskId);
    const third = await post(conversation.id, "echo:only once", "key-sequential-1");
    expect(third.body.taskId).toBe(first.body.taskId);
    const saved = await user.conversation(conversation.id);
    expect(saved.messages.map((message) => [message.role, message.content])).toEqual([
      ["user", "echo:only once"],
      ["assistant", "only once"],
    ]);
  });

  it("sent concurrently returns one task to every request and creates one turn", async () => {
    const conversation = await user.createConversation();
    const answers = await Promise.all(Array.from({ length: 6 }, () => post(conversation.id, "echo:concurrent", "key-concurrent-1")));
    for (const answer of answers) expect(answer.status, answer.text).toBe(202);
    const taskIds = new Set(answers.map((answer) => answer.body.taskId));
    expect(taskIds.size).toBe(1);
    const taskId = answers[0]?.body.taskId ?? "";
    await waitForFinalReply(user, conversation.id, taskId);
    const saved = await user.conversation(conversation.id);
    expect(saved.messages.map((message) => message.role)).toEqual(["user", "assistant"]);
    expect(saved.messages[1]?.content).toBe("concurrent");
  });

  it("reused with a different body is 422 IDEMPOTENCY_KEY_REUSED and changes nothing", async () => {
    const conversation = await user.createConversation();
    const first = await post(conversation.id, "echo:original", "key-reused-1");
    expect(first.status).toBe(202);
    await waitForFinalReply(user, conversation.id, first.body.taskId);
    const reused = await post(conversation.id, "echo:something else", "key-reused-1");
    expect(reused.status).toBe(422);
    expectErrorShape(reused, "IDEMPOTENCY_KEY_REUSED");
    // The same key in another conversation is a different request too.
    const other = await user.createConversation();
    const elsewhere = await post(other.id, "echo:original", "key-reused-1");
    expect(elsewhere.status).toBe(422);
    expect((await user.conversation(conversation.id)).messages).toHaveLength(2);
    expect((await user.conversation(other.id)).messages).toHaveLength(0);
  });

  it("keys are per user: another user's identical key starts its own generation", async () => {
    const other = await registerUser(sluice.url, "idem-other");
    const mine = await user.createConversation();
    const theirs = await other.createConversation();
    const a = await post(mine.id, "echo:k", "key-shared-name");
    const b = await other.call<AcceptedJson>("POST", `/api/conversations/${theirs.id}/messages`, { body: { content: "echo:k" }, headers: { "idempotency-key": "key-shared-name" } });
    expect(a.status).toBe(202);
    expect(b.status, b.text).toBe(202);
    expect(b.body.taskId).not.toBe(a.body.taskId);
    await waitForFinalReply(user, mine.id, a.body.taskId);
    await waitForFinalReply(other, theirs.id, b.body.taskId);
  });
});

describe("a second message while a reply is generating", () => {
  it("is 409 GENERATION_IN_PROGRESS and stores nothing; after the reply ends it is accepted", async () => {
    const conversation = await user.createConversation();
    const running = await user.send(conversation.id, "a long answer please");
    const second = await post(conversation.id, "echo:too soon");
    expect(second.status, second.text).toBe(409);
    expectErrorShape(second, "GENERATION_IN_PROGRESS");
    const regenerate = await user.call("POST", `/api/conversations/${conversation.id}/regenerate`);
    expect(regenerate.status).toBe(409);
    expectErrorShape(regenerate, "GENERATION_IN_PROGRESS");
    expect((await user.conversation(conversation.id)).messages).toHaveLength(2);

    expect((await user.call("POST", `/api/stream/${running.taskId}/cancel`)).status).toBe(202);
    expect((await waitForFinalReply(user, conversation.id, running.taskId)).status).toBe("cancelled");
    const later = await post(conversation.id, "echo:now");
    expect(later.status, later.text).toBe(202);
    await waitForFinalReply(user, conversation.id, later.body.taskId);
    expect((await user.conversation(conversation.id)).messages.map((message) => message.content).slice(2)).toEqual(["echo:now", "now"]);
  });
});
