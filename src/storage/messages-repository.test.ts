import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/support/servers/test-database.ts";
import { createConversationsRepository } from "./conversations-repository.ts";
import { openDatabase, type Database } from "./database.ts";
import { createMessagesRepository, type FinalResult, type TurnInput } from "./messages-repository.ts";
import { createUsersRepository } from "./users-repository.ts";

let database: Database;
beforeAll(async () => {
  database = await openDatabase({ url: await createTestDatabase("messages"), dataDirectory: "/nonexistent", poolSize: 4, statementTimeoutMs: 5000 });
  await database.migrate();
});
afterAll(async () => database.close());

const result = (content: string, status: FinalResult["status"] = "completed"): FinalResult => ({
  status, content, lastSeq: 9, inputTokens: 1, outputTokens: 2, errorCode: null, errorMessage: null,
});

const models = { defaultModel: "m", allowed: ["m", "other"] };

function turnInput(userId: string, conversationId: string, taskId: string, overrides: Partial<TurnInput> = {}): TurnInput {
  return { conversationId, userId, userContent: "q", taskId, requestedModel: undefined, models, activeLimit: 5, placement: { kind: "append" }, ...overrides };
}

async function conversationWithTurn(taskId: string, content: string) {
  const user = await createUsersRepository(database.db).create(`${taskId}@example.com`, "x");
  const conversation = await createConversationsRepository(database.db).create(user.id, null);
  const messages = createMessagesRepository(database.db);
  const turn = await messages.acceptTurn(turnInput(user.id, conversation.id, taskId, { userContent: content }));
  if (turn.kind !== "accepted") throw new Error(`turn not accepted: ${turn.kind}`);
  return { user, conversation, messages, turn };
}

describe("messages repository", () => {
  it("puts the new user message in the reply's history even within the same millisecond", async () => {
    const { conversation, messages, turn } = await conversationWithTurn("task_history", "first question");
    expect(turn.user?.createdAt.getTime()).toBeLessThanOrEqual(turn.assistant.createdAt.getTime());
    expect((await messages.beginAttempt("task_history", 1))?.history).toEqual([{ role: "user", content: "first question" }]);
    const conversations = createConversationsRepository(database.db);
    expect((await conversations.find(turn.assistant.userId, conversation.id))?.title).toBe("first question");
  });

  it("reads the history only up to the load limit and counts the older turns past it", async () => {
    const { user, conversation, messages } = await conversationWithTurn("task_cap_1", "turn 1");
    await messages.beginAttempt("task_cap_1", 1);
    await messages.finish("task_cap_1", 1, result("reply 1"));
    for (const turn of [2, 3]) {
      const taskId = `task_cap_${turn}`;
      const accepted = await messages.acceptTurn(turnInput(user.id, conversation.id, taskId, { userContent: `turn ${turn}` }));
      expect(accepted.kind).toBe("accepted");
      await messages.beginAttempt(taskId, 1);
      await messages.finish(taskId, 1, result(`reply ${turn}`));
    }
    await messages.acceptTurn(turnInput(user.id, conversation.id, "task_cap_4", { userContent: "turn 4" }));
    const whole = await messages.beginAttempt("task_cap_4", 1);
    expect(whole?.history.map((turn) => turn.content)).toEqual(["turn 1", "reply 1", "turn 2", "reply 2", "turn 3", "reply 3", "turn 4"]);
    expect(whole?.historyTurnsNotLoaded).toBe(0);
    // Three turns read (the newest always; then while fewer than 3 were read), four counted past the cap.
    const byTurns = await messages.beginAttempt("task_cap_4", 2, { maxTurns: 3, maxBytes: 1_000_000 });
    expect(byTurns?.history.map((turn) => turn.content)).toEqual(["turn 3", "reply 3", "turn 4"]);
    expect(byTurns?.historyTurnsNotLoaded).toBe(4);
    // "turn 4" and "reply 3" are 13 bytes, at most 13: "turn 3" is read too (19 bytes), and nothing older.
    const byBytes = await messages.beginAttempt("task_cap_4", 3, { maxTurns: 1_000, maxBytes: 13 });
    expect(byBytes?.history.map((turn) => turn.content)).toEqual(["turn 3", "reply 3", "turn 4"]);
    expect(byBytes?.historyTurnsNotLoaded).toBe(4);
  });

  it("fences the final save by attempt: a stale attempt and a retry never write twice", async () => {
    const { messages } = await conversationWithTurn("task_fence", "q");
    expect(await messages.beginAttempt("task_fence", 1)).toBeDefined();
    expect(await messages.beginAttempt("task_fence", 2)).toBeDefined();
    expect(await messages.beginAttempt("task_fence", 2)).toBeUndefined(); // not newer
    expect(await messages.finish("task_fence", 1, result("zombie text"))).toBe("stale");
    expect(await messages.finish("task_fence", 2, result("real text"))).toBe("saved");
    expect(await messages.finish("task_fence", 2, result("real text"))).toBe("already-final");
    expect(await messages.forceFinish("task_fence", result("", "failed"))).toBe(false);
    const task = await messages.findTask("task_fence");
    expect(task?.status).toBe("completed");
    expect(await messages.beginAttempt("task_fence", 3)).toBeUndefined(); // final rows never restart
  });

  it("allows one active reply per conversation, and writes nothing when refused", async () => {
    const { conversation, user, messages } = await conversationWithTurn("task_one", "q");
    await expect(messages.acceptTurn(turnInput(user.id, conversation.id, "task_two", { userContent: "again" }))).rejects.toThrow();
    expect(await messages.listForConversation(conversation.id)).toHaveLength(2);
  });

  it("refuses a foreign or missing conversation, and the per-user active limit, in the same statement", async () => {
    const { conversation, user, messages } = await conversationWithTurn("task_limit", "q");
    const stranger = await createUsersRepository(database.db).create("stranger@example.com", "x");
    expect(await messages.acceptTurn(turnInput(stranger.id, conversation.id, "task_foreign"))).toEqual({ kind: "conversation-missing" });
    const other = await createConversationsRepository(database.db).create(user.id, null);
    expect(await messages.acceptTurn(turnInput(user.id, other.id, "task_over", { activeLimit: 1 }))).toEqual({ kind: "too-many-generations" });
    expect(await messages.listForConversation(other.id)).toEqual([]);
    expect((await messages.acceptTurn(turnInput(user.id, other.id, "task_under", { activeLimit: 2 }))).kind).toBe("accepted");
  });

  it("picks the requested model, else the user's allowed default, else the configured default", async () => {
    const users = createUsersRepository(database.db);
    const user = await users.create("models@example.com", "x");
    const conversations = createConversationsRepository(database.db);
    const messages = createMessagesRepository(database.db);
    const modelOf = async (taskId: string, requestedModel: string | undefined): Promise<string | null> => {
      const conversation = await conversations.create(user.id, null);
      const turn = await messages.acceptTurn(turnInput(user.id, conversation.id, taskId, { requestedModel }));
      if (turn.kind !== "accepted") throw new Error(turn.kind);
      return turn.assistant.model;
    };
    expect(await modelOf("task_m1", "other")).toBe("other");
    expect(await modelOf("task_m2", undefined)).toBe("m");
    await users.updateSettings(user.id, { defaultModel: "other" });
    expect(await modelOf("task_m3", undefined)).toBe("other");
    await users.updateSettings(user.id, { defaultModel: "retired-model" });
    expect(await modelOf("task_m4", undefined)).toBe("m");
  });

  it("regenerate adds a version beside the last reply and keeps the old one; the new reply's history is its own branch", async () => {
    const { conversation, user, messages, turn } = await conversationWithTurn("task_regen", "question");
    await messages.beginAttempt("task_regen", 1);
    await messages.finish("task_regen", 1, result("first answer"));
    const again = await messages.acceptTurn(turnInput(user.id, conversation.id, "task_regen2", { userContent: undefined, placement: { kind: "regenerate", messageId: undefined } }));
    if (again.kind !== "accepted") throw new Error(again.kind);
    expect(again.assistant.parentId).toBe(turn.user?.id);
    const rows = await messages.listForConversation(conversation.id);
    expect(rows.map((row) => [row.role, row.status, row.taskId, row.parentId])).toEqual([
      ["user", "completed", null, null],
      ["assistant", "completed", "task_regen", turn.user?.id],
      ["assistant", "streaming", "task_regen2", turn.user?.id],
    ]);
    expect((await messages.beginAttempt("task_regen2", 1))?.history).toEqual([{ role: "user", content: "question" }]);
    expect((await createConversationsRepository(database.db).find(user.id, conversation.id))?.activeLeafId).toBe(again.assistant.id);
  });
});
