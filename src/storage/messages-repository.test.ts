import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/helpers/postgres.ts";
import { createConversationsRepository } from "./conversations-repository.ts";
import { openDatabase, type Database } from "./database.ts";
import { createMessagesRepository, type FinalResult } from "./messages-repository.ts";
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

async function conversationWithTurn(taskId: string, content: string) {
  const user = await createUsersRepository(database.db).create(`${taskId}@example.com`, "x");
  const conversation = await createConversationsRepository(database.db).create(user.id, null);
  const messages = createMessagesRepository(database.db);
  const turn = await messages.insertTurn({ conversationId: conversation.id, userId: user.id, userContent: content, taskId, model: "m" });
  return { user, conversation, messages, turn };
}

describe("messages repository", () => {
  it("puts the new user message in the reply's history even within the same millisecond", async () => {
    const { conversation, messages, turn } = await conversationWithTurn("task_history", "first question");
    expect(await messages.history(conversation.id, turn.assistant.id)).toEqual([{ role: "user", content: "first question" }]);
    const conversations = createConversationsRepository(database.db);
    expect((await conversations.find(turn.assistant.userId, conversation.id))?.title).toBe("first question");
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

  it("allows one active reply per conversation", async () => {
    const { conversation, user, messages } = await conversationWithTurn("task_one", "q");
    await expect(messages.insertTurn({ conversationId: conversation.id, userId: user.id, userContent: "again", taskId: "task_two", model: "m" })).rejects.toThrow();
    expect(await messages.countActiveForUser(user.id)).toBe(1);
  });
});
