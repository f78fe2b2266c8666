// Branches and paging over HTTP (issue 16, PROTOCOL.md 2.2): an edit or a regenerate adds a
// version beside the old one, the client picks a branch, the model sees only the active path,
// and GET /api/conversations/:id pages the active path newest first with a keyset cursor.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  expectErrorShape,
  expectOneEndLast,
  registerUser,
  waitForFinalReply,
  type AcceptedJson,
  type ChatUser,
  type ConversationJson,
  type MessageJson,
} from "../support/client/chat-api.ts";
import { startSluice, type InProcessSluice } from "../support/sluice/start-sluice.ts";

interface PagedMessage extends MessageJson {
  parentId: string | null;
  siblings: { index: number; count: number; ids: string[] };
}
interface PagedConversation extends Omit<ConversationJson, "messages"> {
  messages: PagedMessage[];
  hasMore: boolean;
  nextCursor: string | null;
}

let sluice: InProcessSluice;
let user: ChatUser;
beforeAll(async () => {
  // Echo replies are short whatever the count; the one reply that is not runs 4000 words at 2000/s,
  // long enough to be refused around and cancelled while it generates.
  sluice = await startSluice({ label: "branches", env: { SIMULATED_TOKEN_COUNT: "4000", SIMULATED_TOKENS_PER_SECOND: "2000" } });
  user = await registerUser(sluice.url, "branches");
});
afterAll(async () => {
  await sluice.stop();
});

async function page(conversationId: string, query = ""): Promise<PagedConversation> {
  const got = await user.call<PagedConversation>("GET", `/api/conversations/${conversationId}${query}`);
  expect(got.status, got.text).toBe(200);
  return got.body;
}
const contents = (conversation: PagedConversation) => conversation.messages.map((message) => message.content);

/** Sends and waits for the saved reply. */
async function turn(conversationId: string, content: string): Promise<{ accepted: AcceptedJson; reply: MessageJson }> {
  const accepted = await user.send(conversationId, content);
  return { accepted, reply: await waitForFinalReply(user, conversationId, accepted.taskId) };
}

async function accepted(answer: Promise<{ status: number; text: string; body: unknown }>): Promise<AcceptedJson> {
  const settled = await answer;
  expect(settled.status, settled.text).toBe(202);
  return settled.body as AcceptedJson;
}

describe("branches", () => {
  it("regenerate adds a version beside the old reply, and the client switches between them", async () => {
    const conversation = await user.createConversation();
    const first = await turn(conversation.id, "echo:one");
    const again = await accepted(user.call("POST", `/api/conversations/${conversation.id}/regenerate`, { body: {} }));
    const second = await waitForFinalReply(user, conversation.id, again.taskId);
    expect(second.content).toBe("one");

    const current = await page(conversation.id);
    expect(current.messages.map((message) => message.id)).toEqual([first.accepted.userMessage?.id, second.id]);
    expect(current.messages[1]?.siblings).toEqual({ index: 1, count: 2, ids: [first.reply.id, second.id] });
    expect(current.messages[1]?.parentId).toBe(first.accepted.userMessage?.id);

    const switched = await user.call<PagedConversation>("POST", `/api/conversations/${conversation.id}/branch`, { body: { messageId: first.reply.id } });
    expect(switched.status, switched.text).toBe(200);
    expect(switched.body.messages.map((message) => message.id)).toEqual([first.accepted.userMessage?.id, first.reply.id]);
    expect(switched.body.messages[1]?.siblings.index).toBe(0);
    expect((await page(conversation.id)).messages[1]?.id).toBe(first.reply.id);
  });

  it("an edit is a new version of the question with its own reply; the model sees only that branch", async () => {
    const conversation = await user.createConversation();
    const first = await turn(conversation.id, "echo:first question");
    await turn(conversation.id, "echo:second question");
    const edit = await accepted(
      user.call("POST", `/api/conversations/${conversation.id}/messages/${first.accepted.userMessage?.id}/edit`, { body: { content: "echo:changed" } }),
    );
    expect(edit.userMessage?.content).toBe("echo:changed");
    const editedReply = await waitForFinalReply(user, conversation.id, edit.taskId);

    const current = await page(conversation.id);
    expect(contents(current)).toEqual(["echo:changed", "changed"]);
    expect(current.messages[0]?.siblings).toMatchObject({ index: 1, count: 2 });
    // The prompt was the edited question alone: as many tokens in as the same question in a new conversation.
    const fresh = await user.createConversation();
    const alone = await turn(fresh.id, "echo:changed");
    expect(editedReply.usage?.inputTokens).toBe(alone.reply.usage?.inputTokens);

    // Back to the first version: its whole branch, and the next message continues it.
    const back = await user.call<PagedConversation>("POST", `/api/conversations/${conversation.id}/branch`, { body: { messageId: first.accepted.userMessage?.id } });
    expect(contents(back.body)).toEqual(["echo:first question", "first question", "echo:second question", "second question"]);
    const third = await turn(conversation.id, "echo:third");
    expect(contents(await page(conversation.id))).toEqual(["echo:first question", "first question", "echo:second question", "second question", "echo:third", "third"]);
    expect(third.reply.usage?.inputTokens).toBeGreaterThan(alone.reply.usage?.inputTokens ?? Infinity);
  });

  it("one reply at a time on any branch: no switch, send or regenerate while an edit's reply generates; it can be cancelled and read", async () => {
    const conversation = await user.createConversation();
    const first = await turn(conversation.id, "echo:q");
    const edit = await accepted(
      user.call("POST", `/api/conversations/${conversation.id}/messages/${first.accepted.userMessage?.id}/edit`, { body: { content: "a long one" } }),
    );
    const busy = [
      await user.call("POST", `/api/conversations/${conversation.id}/branch`, { body: { messageId: first.accepted.userMessage?.id } }),
      await user.call("POST", `/api/conversations/${conversation.id}/messages`, { body: { content: "echo:meanwhile" } }),
      await user.call("POST", `/api/conversations/${conversation.id}/regenerate`, { body: { messageId: first.reply.id } }),
    ];
    for (const answer of busy) {
      expect(answer.status, answer.text).toBe(409);
      expectErrorShape(answer, "GENERATION_IN_PROGRESS");
    }
    expect((await page(conversation.id)).activeGeneration?.taskId).toBe(edit.taskId);
    const cancel = await user.call("POST", `/api/stream/${edit.taskId}/cancel`, { body: {} });
    expect(cancel.status, cancel.text).toBeLessThan(300);
    const stream = await user.stream(edit.taskId);
    expectOneEndLast(stream);
    const saved = await waitForFinalReply(user, conversation.id, edit.taskId);
    expect(saved.status).toBe("cancelled");
    const after = await page(conversation.id);
    expect(after.messages.map((message) => message.id)).toEqual([edit.userMessage?.id, edit.assistantMessage.id]);
    expect(after.activeGeneration).toBeNull();
  });

  it("an edit and a regenerate with an Idempotency-Key add one version however often they are sent", async () => {
    const conversation = await user.createConversation();
    const first = await turn(conversation.id, "echo:q");
    const path = `/api/conversations/${conversation.id}/messages/${first.accepted.userMessage?.id}/edit`;
    const headers = { "idempotency-key": "edit-once" };
    const answers = await Promise.all([1, 2, 3].map(() => accepted(user.call("POST", path, { body: { content: "echo:q2" }, headers }))));
    expect(new Set(answers.map((answer) => answer.taskId)).size).toBe(1);
    await waitForFinalReply(user, conversation.id, answers[0]!.taskId);
    const reused = await user.call("POST", path, { body: { content: "echo:other" }, headers });
    expect(reused.status).toBe(422);
    expectErrorShape(reused, "IDEMPOTENCY_KEY_REUSED");
    const regenerateHeaders = { "idempotency-key": "regenerate-once" };
    const regenerated = await Promise.all([1, 2].map(() => accepted(user.call("POST", `/api/conversations/${conversation.id}/regenerate`, { body: {}, headers: regenerateHeaders }))));
    expect(regenerated[1]?.taskId).toBe(regenerated[0]?.taskId);
    await waitForFinalReply(user, conversation.id, regenerated[0]!.taskId);
    const current = await page(conversation.id);
    expect(current.messages[0]?.siblings.count).toBe(2);
    expect(current.messages[1]?.siblings.count).toBe(2);
  });

  it("refuses an edit of a reply (400), and unknown, malformed or foreign messages (404), changing nothing", async () => {
    const conversation = await user.createConversation();
    const first = await turn(conversation.id, "echo:q");
    const other = await user.createConversation();
    const foreign = await turn(other.id, "echo:x");
    const edit = (messageId: string) => user.call("POST", `/api/conversations/${conversation.id}/messages/${messageId}/edit`, { body: { content: "new" } });
    const reply = await edit(first.reply.id);
    expect(reply.status).toBe(400);
    expectErrorShape(reply, "VALIDATION_FAILED");
    for (const messageId of [foreign.accepted.userMessage?.id ?? "", "00000000-0000-4000-8000-000000000000", "not-a-uuid"]) {
      const answer = await edit(messageId);
      expect(answer.status, messageId).toBe(404);
      expectErrorShape(answer, "NOT_FOUND");
      const branch = await user.call("POST", `/api/conversations/${conversation.id}/branch`, { body: { messageId } });
      expect(branch.status, messageId).toBe(404);
      expectErrorShape(branch, "NOT_FOUND");
    }
    const regenerateForeign = await user.call("POST", `/api/conversations/${conversation.id}/regenerate`, { body: { messageId: foreign.reply.id } });
    expect(regenerateForeign.status).toBe(404);
    const stranger = await registerUser(sluice.url, "branches-stranger");
    const theirs = await stranger.call("POST", `/api/conversations/${conversation.id}/messages/${first.accepted.userMessage?.id}/edit`, { body: { content: "x" } });
    expect(theirs.status).toBe(404);
    expect(contents(await page(conversation.id))).toEqual(["echo:q", "q"]);
    expect((await page(conversation.id)).messages.every((message) => message.siblings.count === 1)).toBe(true);
  });
});

describe("GET /api/conversations/:id pages", () => {
  it("newest first by keyset cursor, each page in order, to the first message", async () => {
    const conversation = await user.createConversation();
    for (let index = 1; index <= 6; index += 1) await turn(conversation.id, `echo:m${index}`);
    const newest = await page(conversation.id, "?limit=5");
    expect(contents(newest)).toEqual(["m4", "echo:m5", "m5", "echo:m6", "m6"]);
    expect(newest.hasMore).toBe(true);
    expect(newest.nextCursor).toEqual(expect.any(String));
    const seen = [...newest.messages];
    let cursor = newest.nextCursor;
    while (cursor !== null) {
      const older = await page(conversation.id, `?limit=5&cursor=${cursor}`);
      seen.unshift(...older.messages);
      expect(older.hasMore).toBe(older.nextCursor !== null);
      cursor = older.nextCursor;
    }
    expect(seen.map((message) => message.content)).toEqual(Array.from({ length: 6 }, (_, index) => [`echo:m${index + 1}`, `m${index + 1}`]).flat());
    // Without a limit: the default page (50) holds all twelve, as before paging.
    const whole = await page(conversation.id);
    expect(whole.messages).toHaveLength(12);
    expect(whole).toMatchObject({ hasMore: false, nextCursor: null });
  });

  it("a bad cursor or limit is 400 VALIDATION_FAILED", async () => {
    const conversation = await user.createConversation();
    await turn(conversation.id, "echo:a");
    await turn(conversation.id, "echo:b");
    const other = await user.createConversation();
    await turn(other.id, "echo:c");
    const otherCursor = (await page(other.id, "?limit=1")).nextCursor;
    expect(otherCursor).not.toBeNull();
    const listingCursor = Buffer.from(JSON.stringify(["2026-01-01 00:00:00+00", "00000000-0000-4000-8000-000000000000"])).toString("base64url");
    for (const query of [`?cursor=${otherCursor}`, "?cursor=bm9wZQ", `?cursor=${listingCursor}`, "?cursor=%2B%2B", "?limit=0", "?limit=201", "?limit=x", "?before=1"]) {
      const answer = await user.call("GET", `/api/conversations/${conversation.id}${query}`);
      expect(answer.status, query).toBe(400);
      expectErrorShape(answer, "VALIDATION_FAILED");
    }
    expect((await page(conversation.id, "?limit=200")).messages).toHaveLength(4);
  });

  it("is described in /api/docs: the page size's default and maximum, the cursor, versions, and the branch and edit routes", async () => {
    const document = (await (await fetch(`${sluice.url}/api/docs/json`)).json()) as {
      paths: Record<string, Record<string, { parameters?: Array<{ name: string; in: string; schema: { default?: unknown; maximum?: unknown } }>; description?: string }>>;
    };
    const get = document.paths["/api/conversations/{id}"]?.get;
    const limit = get?.parameters?.find((parameter) => parameter.name === "limit" && parameter.in === "query");
    expect(limit?.schema).toMatchObject({ default: 50, maximum: 200 });
    expect(get?.parameters?.some((parameter) => parameter.name === "cursor")).toBe(true);
    expect(get?.description).toContain("siblings");
    expect(document.paths["/api/conversations/{id}/branch"]?.post).toBeDefined();
    expect(document.paths["/api/conversations/{id}/messages/{messageId}/edit"]?.post).toBeDefined();
  });
});
